"""Exit codes scripts can trust, and the one place that turns exceptions into them.

  0  success
  1  internal error (a bug or an unexpected failure; ``--debug`` shows the traceback)
  2  bad input (files, options, values): one line on stderr that names the fix
130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys

OK, INTERNAL, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """A bad option combination found after argument parsing."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def exit_code_for(exc: BaseException) -> int:
    # CheckpointError is a ValueError; OSError covers unreadable/unwritable files.
    if isinstance(
        exc,
        (ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError),
    ):
        return BAD_INPUT
    return INTERNAL


def report(prog: str, exc: BaseException, json_mode: bool = False) -> int:
    """Print one line (or a JSON object) on stderr; return the exit code."""
    code = exit_code_for(exc)
    message = first_line(exc)
    if code == INTERNAL:
        message = f"internal error ({type(exc).__name__}): {message} (rerun with --debug for the traceback)"
    if json_mode:
        import json

        print(json.dumps({"ok": False, "exit_code": code, "error": message}), file=sys.stderr)
    else:
        print(f"{prog}: error: {message}", file=sys.stderr)
    return code
