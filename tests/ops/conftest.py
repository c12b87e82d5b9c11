"""Op tests: each ``OpTester`` subclass's ``cases`` parametrise its ``case`` argument."""

from __future__ import annotations


def pytest_generate_tests(metafunc):
    cases = getattr(metafunc.cls, "cases", None)
    if cases is not None and "case" in metafunc.fixturenames:
        metafunc.parametrize("case", list(cases))
