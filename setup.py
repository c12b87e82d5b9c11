"""Kept for the design card's layout and for tools that still call ``setup.py``.

All metadata lives in pyproject.toml. The C++/CUDA extension is not built here: it is compiled
just in time on first use (``wifidiff_fast.ops._native``), so installing never needs a compiler,
never touches a GPU and never pulls a CUDA torch into an isolated build environment.
"""

from setuptools import setup

setup()
