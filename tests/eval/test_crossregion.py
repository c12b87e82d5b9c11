"""The cross-region summary: gains against the better peer, and the learned map's own row."""

import pytest

from wifidiff_fast.eval.crossregion import gain_interval, summarise, to_markdown


def _row(n, freq, idw, kriging, physics, learned=None):
    row = {
        "map": f"w{freq}",
        "n": n,
        "freq_mhz": freq,
        "idw": {"mse": idw, "rmse_db": 1.0, "ms": 1.0},
        "kriging": {"mse": kriging, "rmse_db": 1.0, "ms": 2.0},
        "physics": {"mse": physics, "rmse_db": 1.0, "ms": 3.0, "coverage_2sigma": 0.9, "loc_err_px": [2.0]},
    }
    if learned is not None:
        row["learned"] = {"mse": learned, "rmse_db": 1.0}
    return row


META = {"fit_region": 1, "score_region": 2, "windows": 1, "bands": "all", "calibration": "x"}


def test_gain_is_against_the_better_peer_and_the_learned_map_gets_its_own():
    rows = [_row(10, 5750, 4.0, 2.0, 1.0, learned=4.0), _row(10, 1750, 2.0, 6.0, 1.0, learned=1.0)]
    s = summarise(rows, META)["summary"]
    # mean MSE: IDW 3, kriging 4 -> the better peer is IDW (3); physics 1, learned 2.5
    assert s["all"]["10"]["gain_vs_best_peer"] == pytest.approx(3.0)
    assert s["all"]["10"]["learned_gain_vs_best_peer"] == pytest.approx(3.0 / 2.5)
    assert s["5750"]["10"]["gain_vs_best_peer"] == pytest.approx(2.0)
    assert "1.20×" in to_markdown(summarise(rows, META))


def test_no_learned_row_without_a_learned_map():
    report = summarise([_row(25, 5750, 4.0, 2.0, 1.0)], META)
    assert report["summary"]["all"]["25"]["learned_gain_vs_best_peer"] is None
    assert "| — |" in to_markdown(report)


def test_the_gain_interval_resamples_whole_windows():
    # two windows, each with two bands; window a gains 4x, window b 1x
    rows = [{**_row(10, f, 4.0, 4.0, 1.0), "map": f"brat2w_{f}MHz_r1c1"} for f in (1750, 5750)] + [
        {**_row(10, f, 2.0, 2.0, 2.0), "map": f"brat2w_{f}MHz_r9c9"} for f in (1750, 5750)
    ]
    lo, hi = gain_interval(rows, draws=4000)
    # resampling windows reaches every mix of a and b: all a (4x) and all b (1x) are both drawn
    assert lo == pytest.approx(1.0) and hi == pytest.approx(4.0)
    point = summarise(rows, META)["summary"]["all"]["10"]
    assert lo <= point["gain_vs_best_peer"] <= hi
    # identical windows leave no spread
    same = [{**_row(25, 5750, 3.0, 2.0, 1.0), "map": f"brat2w_5750MHz_r{i}c0"} for i in range(5)]
    assert gain_interval(same) == pytest.approx((2.0, 2.0))
    assert "2.00–2.00×" in to_markdown(summarise(same, META))
