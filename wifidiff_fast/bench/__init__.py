"""Benchmarks: ``python -m wifidiff_fast.bench`` (the engine vs the reference: paper, batch, reuse,
fast), ``ops`` (fused ops), ``pipeline`` (op backends end to end), ``reuse-accuracy``."""
