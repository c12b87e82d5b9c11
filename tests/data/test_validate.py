"""Input checks: every bad input is a TypeError/ValueError that names the problem."""

import numpy as np
import pytest
import torch

from wifidiff_fast.data.validate import check_buildings, check_count, check_samples


def _b(h=8, w=10):
    b = np.zeros((h, w), np.uint8)
    b[2:4, 3:6] = 1
    return b


def test_buildings_accepted_forms():
    b = _b()
    for form in (b, b.astype(bool), b.astype(np.float32), b.astype(np.int64), torch.tensor(b)):
        out = check_buildings(form)
        assert out.dtype == np.uint8 and np.array_equal(out, b)


@pytest.mark.parametrize(
    "bad, exc, msg",
    [
        (np.zeros((4, 4, 1)), ValueError, "2-D"),
        (np.zeros(16), ValueError, "2-D"),
        (np.zeros((3, 8)), ValueError, "at least"),
        (np.full((5, 5), 2), ValueError, "binary"),
        (np.full((5, 5), 0.5), ValueError, "binary"),
        (np.full((5, 5), -1), ValueError, "binary"),
        (np.ones((5, 5)), ValueError, "whole grid"),
        (np.array([[np.nan] * 5] * 5), ValueError, "NaN"),
        (np.array([[np.inf] * 5] * 5), ValueError, "NaN"),
        ("city.png", TypeError, "array"),
        (None, TypeError, "array"),
        (np.array([["a"] * 5] * 5), TypeError, "numbers"),
        ([[0, 0], [0]], TypeError, "could not be read"),
    ],
)
def test_buildings_rejected(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        check_buildings(bad)


def test_samples_clean_and_torch():
    b = _b()
    s = [[0, 0, -50], [7, 9, -60.5]]
    out = check_samples(s, b)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, np.array(s, float))
    np.testing.assert_array_equal(check_samples(torch.tensor(s, dtype=torch.float32), b), out)


def test_duplicates_are_averaged():
    b = _b()
    s = np.array([[5, 5, -50.0], [0, 1, -70.0], [5, 5, -60.0], [5, 5, -40.0]])
    out = check_samples(s, b)
    assert out.shape == (2, 3)
    got = {(int(r), int(c)): v for r, c, v in out}
    assert got == {(5, 5): pytest.approx(-50.0), (0, 1): pytest.approx(-70.0)}


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.zeros((3, 2)), r"\[N, 3\]"),
        (np.zeros(3), r"\[N, 3\]"),
        (np.zeros((2, 3, 1)), r"\[N, 3\]"),
        (np.zeros((0, 3)), "empty"),
        ([[0, 0, np.nan]], "NaN"),
        ([[0, 0, np.inf]], "NaN"),
        ([[np.nan, 0, -50]], "NaN"),
        ([[0.5, 0, -50]], "integer"),
        ([[8, 0, -50]], "outside"),
        ([[0, 10, -50]], "outside"),
        ([[-1, 0, -50]], "outside"),
        ([[2, 3, -50]], "building"),
        ([[0, 0, 1000.0]], "dBm"),
    ],
)
def test_samples_rejected(bad, msg):
    with pytest.raises(ValueError, match=msg):
        check_samples(np.asarray(bad, dtype=float), _b())


def test_samples_type_errors():
    with pytest.raises(TypeError):
        check_samples("samples.csv", _b())
    with pytest.raises(TypeError):
        check_samples([["a", "b", "c"]], _b())


def test_check_count():
    assert check_count(3) == 3 and check_count(np.int64(2)) == 2
    for bad, exc in (
        (0, ValueError),
        (-2, ValueError),
        (1.0, TypeError),
        (True, TypeError),
        ("3", TypeError),
    ):
        with pytest.raises(exc):
            check_count(bad)
