"""``python -m wifidiff_fast.bench {ops,pipeline,reuse} ...``: benchmarks (tables for people, JSON for machines)."""

from __future__ import annotations

import importlib
import importlib.util
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"ops": "wifidiff_fast.bench.ops", "pipeline": "wifidiff_fast.bench.pipeline",
                "reuse": "wifidiff_fast.bench.reuse"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        available = [c for c, m in commands.items() if importlib.util.find_spec(m) is not None]
        print("usage: python -m wifidiff_fast.bench {" + ",".join(available) + "} [options]\n"
              "  ops       fused ops vs reference and peers (--device, --repeat, --json)\n"
              "  pipeline  end-to-end stages per backend (--device, --candidates, --json)\n"
              "  reuse     midpoint reuse ratio: accuracy and generation time")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name = commands[argv[0]]
    if importlib.util.find_spec(name) is None:
        print(f"{argv[0]}: {name} is not available in this build", file=sys.stderr)
        return 2
    return int(importlib.import_module(name).main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
