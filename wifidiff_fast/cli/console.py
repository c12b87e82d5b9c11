"""Output for people (rich tables and progress bars on stderr) and for machines (``--json``).

Tables and progress go to stderr when ``--json`` is on, so stdout holds exactly one JSON object.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def print_json(obj) -> None:
    print(json.dumps(_json_safe(obj), indent=1))


def console(stderr: bool = False):
    """A rich console; when the output is a pipe or a file, wide enough that no line wraps (so
    scripts can grep it)."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 200)


def table(title: str, rows: list[tuple], headers: tuple[str, ...] = ("", "")):
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=any(headers))
    for h in headers:
        t.add_column(h)
    for row in rows:
        t.add_row(*[str(c) for c in row])
    return t


@contextmanager
def progress_bar(enabled: bool):
    """Yield ``update(stage, done, total)``; a rich progress bar on stderr when enabled."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=False,
    ) as prog:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(f"{stage} tiles", total=total)
            prog.update(tasks[stage], completed=done)

        yield update


@contextmanager
def spinner(enabled: bool, text: str):
    if not enabled:
        yield
        return
    with console(stderr=True).status(text):
        yield
