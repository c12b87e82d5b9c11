"""wifidiff-fast (also: python -m wifidiff_fast): estimate, evaluate, train, bench, info, simulate.

Exit codes: 0 ok, 2 bad input, 1 internal error, 130 interrupted. --json prints one JSON object
on stdout (errors as JSON on stderr); without it, tables for people. Every subcommand has --help.
"""

from __future__ import annotations

import argparse
import sys

from . import errors, passthrough

PROG = "wifidiff-fast"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and appends "(default: X)" to options whose help does not
    already say their default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, argparse.SUPPRESS)
            or action.required
            or isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction))
        ):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    from . import estimate, simulate

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--json", action="store_true", help="machine output: one JSON object on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    estimate.add_parser(sub, HelpFormatter)
    info = sub.add_parser(
        "info",
        help="versions, op backends and why not, checkpoints, optional extras",
        formatter_class=HelpFormatter,
    )
    info.add_argument("--no-build", action="store_true", help="do not compile the native extension")
    simulate.add_parser(sub, HelpFormatter)
    for name, (module, help_text) in passthrough.COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            add_help=False,
            description=f"runs {module}.main; `{PROG} {name} --help` lists its options",
        )
        p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _split_global(argv: list[str]) -> tuple[list[str], list[str]]:
    """(global flags, the rest). Global flags may also follow an own subcommand (``estimate ...
    --json``); a pass-through command keeps every argument after its name."""
    flags = {"--json", "--quiet", "--debug"}
    i = 0
    while i < len(argv) and argv[i] in flags:
        i += 1
    if i < len(argv) and argv[i] in passthrough.COMMANDS:
        return argv[:i], argv[i:]
    return [a for a in argv if a in flags], [a for a in argv if a not in flags]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    lead, rest = _split_global(argv)
    json_mode, debug = "--json" in lead, "--debug" in lead
    if rest and rest[0] in passthrough.COMMANDS:
        try:
            return passthrough.run(rest[0], rest[1:])
        except KeyboardInterrupt:
            return errors.INTERRUPTED
        except Exception as exc:
            if debug:
                raise
            return errors.report(PROG, exc, json_mode)
    parser = build_parser()
    try:
        args = parser.parse_args(lead + rest)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    from ..runtime.progress import for_cli

    quiet = not for_cli(args.quiet or args.json)  # the package-wide rule (runtime.progress)
    try:
        from . import console

        if args.command == "estimate":
            from . import estimate

            summary = estimate.run(args, quiet=quiet)
            if args.json:
                console.print_json(summary)
            elif not args.quiet:
                estimate.show(summary)
        elif args.command == "info":
            from . import info

            announce = None if args.json else (lambda text: print(text, file=sys.stderr, flush=True))
            data = info.collect(build=not args.no_build, announce=announce)
            if args.json:
                console.print_json(data)
            else:
                info.show(data, build=not args.no_build)
        elif args.command == "simulate":
            from . import simulate

            summary = simulate.run(args)
            if args.json:
                console.print_json(summary)
            elif not args.quiet:
                rows = [
                    (
                        s["name"],
                        f"{s['freq_mhz']:.0f} MHz",
                        s["prefix"] + "_{buildings.png,samples.csv,truth.npy,sites.csv}",
                    )
                    for s in summary["scenes"]
                ]
                console.console().print(
                    console.table("wifidiff-fast simulate", rows, ("scene", "carrier", "files"))
                )
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return errors.INTERRUPTED
    except Exception as exc:
        if debug:
            raise
        return errors.report(PROG, exc, args.json)
    return errors.OK
