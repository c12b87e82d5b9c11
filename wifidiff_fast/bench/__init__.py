"""Benchmarks: ``python -m wifidiff_fast.bench ops`` (fused ops), ``pipeline`` (end to end), ``reuse``."""
