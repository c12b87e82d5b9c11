"""Benchmarks: ``python -m wifidiff_fast.bench ops`` (fused ops) and ``pipeline`` (end to end)."""
