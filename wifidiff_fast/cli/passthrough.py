"""Subcommands that hand their arguments to another module's ``main(argv)``.

The module is looked up by name when the subcommand runs (not imported with this package): the
CLI starts fast, and those modules stay free to change their internals.
"""

from __future__ import annotations

import importlib

# subcommand -> (module whose main(argv) runs it, one-line help); the ``python -m`` entry modules,
# which stay put when the code behind them moves
COMMANDS = {
    "evaluate": (
        "wifidiff_fast.eval.cli",
        "methods × N × data set → markdown + JSON (--dataset examples works "
        "anywhere; brat-val needs the development data)",
    ),
    "train": ("wifidiff_fast.train.__main__", "train (resumably) and export a checkpoint"),
    "bench": ("wifidiff_fast.bench.__main__", "benchmarks: ops, pipeline, reuse"),
}


def run(command: str, argv: list[str]) -> int:
    module_name = COMMANDS[command][0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeError(f"{command}: could not import {module_name}: {exc}") from None
    entry = getattr(module, "main", None)
    if entry is None:
        raise RuntimeError(f"{command}: {module_name} has no main(argv)")
    try:
        return int(entry(argv) or 0)
    except SystemExit as exc:  # argparse inside the module: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
