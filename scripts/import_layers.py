"""Print which subpackages of wifidiff_fast import which (the layer table of docs/ARCHITECTURE.md).

    python scripts/import_layers.py

For each subpackage: the subpackages it imports at module level (load-time dependencies) and,
separately, those it imports only inside a function (lazy: loaded on first use). Static (ast), so
it imports nothing and runs anywhere.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "wifidiff_fast"


def _target(package: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Subpackages of wifidiff_fast named by one import statement of a module in ``package``."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level == 0:
        names = [node.module or ""]
    else:
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        names = [".".join(base + ([node.module] if node.module else []))]
        if not node.module:  # "from .. import x": x may be a subpackage
            names = [".".join(base + [a.name]) for a in node.names]
    out = []
    for name in names:
        parts = name.split(".")
        if parts[0] == "wifidiff_fast" and len(parts) > 1:
            out.append(parts[1])
    return out


def layers() -> dict[str, tuple[set[str], set[str]]]:
    table: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        package = ".".join(rel.parts[:-1])  # what a level-1 relative import starts from
        if len(rel.parts) < 3:  # top-level modules (estimate.py, demo.py, ...): the "app" layer
            owner = "(top level)"
        else:
            owner = rel.parts[1]
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _target(package, node):
                    if target != owner and (PKG / target).is_dir():
                        table[owner][0 if id(node) in top_level else 1].add(target)
    return table


def main() -> int:
    for owner, (eager, lazy) in sorted(layers().items()):
        lazy_only = sorted(lazy - eager)
        print(
            f"{owner:<14} imports {', '.join(sorted(eager)) or '—'}"
            + (f"   (lazily: {', '.join(lazy_only)})" if lazy_only else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
