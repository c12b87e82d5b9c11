"""``python -m wifidiff_fast.bench [WORKLOAD ...] [options]``: benchmarks (tables for people, JSON for machines).

* ``paper``, ``batch``, ``reuse``, ``fast`` — the engine beside the eager fp32 reference
  (:mod:`wifidiff_fast.bench.engine`; ``python -m wifidiff_fast.bench --help``);
* ``ops`` — the fused ops beside their reference and peers (``ops --help``);
* ``pipeline`` — per-stage latency of op backends (the earlier table, kept for its recorded runs);
* ``reuse-accuracy`` — midpoint reuse R: accuracy and generation time on a data set.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "ops": "wifidiff_fast.bench.ops",
    "pipeline": "wifidiff_fast.bench.pipeline",
    "reuse-accuracy": "wifidiff_fast.bench.reuse",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return int(importlib.import_module(COMMANDS[argv[0]]).main(argv[1:]) or 0)
    from .engine import main as engine_main

    return engine_main(argv)


if __name__ == "__main__":
    sys.exit(main())
