"""``python -m wifidiff_fast.estimate`` (now an alias of ``wifidiff-fast estimate``): user files in, a
map out; bad input is one line, exit 2. The diffusion path with 2 candidates keeps these fast; the
physics default runs in tests/cli/test_cli.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wifidiff_fast.estimate import main


@pytest.fixture
def files(tmp_path):
    b = np.zeros((48, 40), dtype=np.uint8)
    b[10:20, 5:15] = 1
    Image.fromarray(b * 255).save(tmp_path / "layout.png")
    (tmp_path / "samples.csv").write_text("row,col,rss_dbm\n2,3,-50.5\n30,30,-70\n40,8,-65\n2,3,-51.5\n")
    return tmp_path


def test_writes_the_map_and_the_picture(files, capsys):
    out, unc, png = files / "map.npy", files / "unc.npy", files / "map.png"
    rc = main(
        [
            "--buildings",
            str(files / "layout.png"),
            "--samples",
            str(files / "samples.csv"),
            "--out",
            str(out),
            "--uncertainty",
            str(unc),
            "--png",
            str(png),
            "--mode",
            "diffusion",
            "--candidates",
            "2",
            "--steps",
            "2",
        ]
    )
    assert rc == 0
    rss = np.load(out)
    assert rss.shape == (48, 40) and rss.dtype == np.float32
    assert np.isnan(rss[10:20, 5:15]).all() and np.isfinite(rss[30:, :]).all()
    assert rss[2, 3] == pytest.approx(-51.0)  # duplicate readings averaged, measurement kept
    assert np.load(unc).shape == (48, 40)
    assert png.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "csv, message",
    [
        ("row,col,rss_dbm\n", "holds no samples"),
        ("row,col,rss_dbm\n1,2\n", "expected 3 columns"),
        ("row,col,rss_dbm\n15,10,-60\n", "lies on a building"),
        ("row,col,rss_dbm\n100,10,-60\n", "outside the 48x40 grid"),
        ("row,col,rss_dbm\n1,2,abc\n", "not a number"),
    ],
)
def test_bad_samples_give_one_line_and_exit_2(files, capsys, csv, message):
    (files / "bad.csv").write_text(csv)
    rc = main(
        [
            "--buildings",
            str(files / "layout.png"),
            "--samples",
            str(files / "bad.csv"),
            "--out",
            str(files / "x.npy"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_or_unreadable_buildings(files, capsys):
    (files / "junk.png").write_bytes(b"not an image")
    for path, message in ((files / "nope.png", "does not exist"), (files / "junk.png", "could not read")):
        rc = main(
            ["--buildings", str(path), "--samples", str(files / "samples.csv"), "--out", str(files / "x.npy")]
        )
        err = capsys.readouterr().err
        assert rc == 2 and message in err
