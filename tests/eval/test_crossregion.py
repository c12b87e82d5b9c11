"""The cross-region summary: gains against the better peer, and the learned map's own row."""

import pytest

from wifidiff_fast.eval.crossregion import summarise, to_markdown


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
