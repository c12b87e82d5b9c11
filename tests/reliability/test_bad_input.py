"""Every bad input of issue #10, through the API and the CLI: a clear message naming the problem,
a non-zero exit (2), no traceback from deep inside, and no output file left behind.

Out-of-range RSS is **rejected** (the policy in ``wifidiff_fast.data.validate``); the CLI's
``--clip-rss`` is the explicit opt-in to clipping, with a warning. The API cases fail in
validation, before any network runs, so they are fast; the few that estimate use
``mode="diffusion", candidates=0`` (one AttUnet pass) on 32-pixel grids.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from wifidiff_fast import RadioMapEstimator
from wifidiff_fast.cli import main
from wifidiff_fast.data.protocol import draw_samples
from wifidiff_fast.models.checkpoint import CheckpointError
from wifidiff_fast.models.presets import preset
from wifidiff_fast.pipeline.estimator import CHECKPOINTS_DIR

FAST = dict(mode="diffusion", candidates=0)


@pytest.fixture(scope="module")
def est():
    return RadioMapEstimator.from_pretrained("small")


def grid(h=32, w=32):
    b = np.zeros((h, w), np.uint8)
    b[4:10, 4:14] = 1
    return b


S = np.array([[20, 20, -60.0], [2, 30, -70.0], [30, 2, -80.0]])


@pytest.mark.parametrize(
    "buildings, samples, error, message",
    [
        (np.zeros((2, 32, 32)), S, ValueError, "2-D"),
        (np.array([["a"] * 32] * 32), S, TypeError, "must hold numbers"),
        ("layout.png", S, TypeError, "must be an array"),
        (grid() * 2, S, ValueError, "binary"),
        (np.where(grid() == 1, 0.5, 0.0), S, ValueError, "binary"),
        (np.ones((32, 32), np.uint8), S, ValueError, "no open pixel"),
        (np.zeros((1, 1), np.uint8), S[:0], ValueError, "at least 4x4"),
        (np.zeros((16, 16), np.uint8), S[:1] * [0.5, 0.5, 1], ValueError, "at least 32x32"),
        (grid(), S[:, :2], ValueError, "[N, 3]"),
        (grid(), np.zeros((0, 3)), ValueError, "N >= 1"),
        (grid(), np.vstack([S, [32, 3, -60.0]]), ValueError, "outside the 32x32 grid"),
        (grid(), np.vstack([S, [-1, 3, -60.0]]), ValueError, "outside the 32x32 grid"),
        (grid(), np.vstack([S, [5, 5, -60.0]]), ValueError, "on a building"),
        (grid(), np.vstack([S, [1, 1, np.nan]]), ValueError, "NaN or inf"),
        (grid(), np.vstack([S, [1, 1, np.inf]]), ValueError, "NaN or inf"),
        (grid(), np.vstack([S, [1.5, 1, -60.0]]), ValueError, "integer pixel"),
        (
            grid(),
            np.vstack([S, [1, 1, 60.0]]),
            ValueError,
            "outside the checkpoint's RSS range -130..-10 dBm",
        ),
        (grid(), np.vstack([S, [1, 1, -150.0]]), ValueError, "-130..-10 dBm"),
    ],
)
def test_api_rejects_bad_input_with_a_clear_message(est, buildings, samples, error, message):
    with pytest.raises(error, match=None) as info:
        est.estimate(buildings, samples)
    assert message in str(info.value)


def test_api_options_and_checkpoints(est, tmp_path):
    b = grid()
    for kwargs, message in (
        (dict(mode="magic"), "mode must be one of"),
        (dict(freq_mhz=5.0), "freq_mhz"),
        (dict(mode="diffusion", candidates=-1), "candidates"),
        (dict(mode="diffusion", reuse=1.0), "reuse"),
    ):
        with pytest.raises(ValueError, match=message):
            est.estimate(b, S, **kwargs)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        RadioMapEstimator.from_pretrained("no-such-checkpoint")
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    bad = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINTS_DIR / "small", bad)
    weights = bad / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated download
    with pytest.raises(CheckpointError, match="corrupted"):
        RadioMapEstimator.from_pretrained(bad)
    (bad / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        RadioMapEstimator.from_pretrained(bad)


def test_duplicates_are_averaged_and_more_samples_than_free_pixels_work(est):
    b = np.ones((32, 40), np.uint8)
    b[10:12, 10:12] = 0  # 4 free pixels
    free = np.argwhere(b == 0)
    samples = np.array([[r, c, -60.0 - k] for k in range(3) for r, c in free])  # N = 12 > 4 free pixels
    res = est.estimate(b, samples, **FAST)
    assert res.rss_dbm.shape == (32, 40)
    assert np.allclose(res.rss_dbm[b == 0], -61.0) and np.isnan(res.rss_dbm[b == 1]).all()
    with pytest.raises(ValueError, match="only 4 open pixels"):
        draw_samples(np.zeros((32, 40)), b, 5, 0)


def test_non_square_maps(est):
    b = grid(32, 77)
    res = est.estimate(b, np.vstack([S, [31, 76, -90.0]]), **FAST)
    assert res.rss_dbm.shape == (32, 77) and np.isfinite(res.rss_dbm[b == 0]).all()


# ------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def files(tmp_path):
    b = grid(40, 36)
    Image.fromarray(b * 255).save(tmp_path / "b.png")
    np.save(tmp_path / "b.npy", b)
    (tmp_path / "s.csv").write_text("row,col,rss_dbm\n20,20,-60\n2,30,-70\n30,2,-80\n")
    return tmp_path


def _write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _cases(tmp):
    png = (tmp / "b.png").read_bytes()
    npy = (tmp / "b.npy").read_bytes()
    rgba = np.zeros((40, 36, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp / "alpha.png")
    with rasterio.open(
        tmp / "nocrs.tif",
        "w",
        driver="GTiff",
        height=40,
        width=36,
        count=1,
        dtype="uint8",
        transform=Affine(2.0, 0, 100.0, 0, -2.0, 500.0),
    ) as dst:
        dst.write(grid(40, 36), 1)
    tif = (tmp / "nocrs.tif").read_bytes()
    Image.fromarray(np.full((40, 36), 255, np.uint8)).save(tmp / "allbuild.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp / "one.png")
    np.save(tmp / "nonbinary.npy", grid(40, 36) * 3)
    bad_ckpt = tmp / "ckpt"
    shutil.copytree(CHECKPOINTS_DIR / "small", bad_ckpt)
    _write(bad_ckpt / "weights.safetensors", b"\0" * 100)
    b, s = ["--buildings", str(tmp / "b.png")], ["--samples", str(tmp / "s.csv")]
    return {
        "missing file": (["--buildings", str(tmp / "nope.png"), *s], "does not exist"),
        "unreadable png": (
            ["--buildings", str(_write(tmp / "junk.png", b"not an image")), *s],
            "could not read",
        ),
        "truncated png": (
            ["--buildings", str(_write(tmp / "cut.png", png[: len(png) // 2])), *s],
            "could not read",
        ),
        "truncated npy": (["--buildings", str(_write(tmp / "cut.npy", npy[:60])), *s], "could not read"),
        "truncated tif": (["--buildings", str(_write(tmp / "cut.tif", tif[:200])), *s], "could not read"),
        "png with alpha": (["--buildings", str(tmp / "alpha.png"), *s], "transparent"),
        "unknown format": (["--buildings", str(_write(tmp / "b.xyz", b"1")), *s], "unsupported type"),
        "non-binary npy": (["--buildings", str(tmp / "nonbinary.npy"), *s], "binary"),
        "all buildings": (["--buildings", str(tmp / "allbuild.png"), *s], "no open pixel"),
        "1x1 map": (["--buildings", str(tmp / "one.png"), *s], "at least 4x4"),
        "wrong header": (
            [*b, "--samples", str(_write(tmp / "h.csv", "r,c,v\n1,1,-60\n"))],
            "header must name",
        ),
        "no samples": (
            [*b, "--samples", str(_write(tmp / "n0.csv", "row,col,rss_dbm\n"))],
            "holds no samples",
        ),
        "binary csv": ([*b, "--samples", str(_write(tmp / "bin.csv", b"\xff\xfe\x00\x81"))], "not a UTF-8"),
        "off the grid": (
            [*b, "--samples", str(_write(tmp / "o.csv", "row,col,rss_dbm\n40,1,-60\n"))],
            "outside",
        ),
        "on a building": (
            [*b, "--samples", str(_write(tmp / "ob.csv", "row,col,rss_dbm\n5,5,-60\n"))],
            "building",
        ),
        "nan rss": (
            [*b, "--samples", str(_write(tmp / "nan.csv", "row,col,rss_dbm\n1,1,nan\n"))],
            "NaN or inf",
        ),
        "+60 dBm": (
            [*b, "--samples", str(_write(tmp / "hot.csv", "row,col,rss_dbm\n1,1,60\n"))],
            "-130..-10 dBm",
        ),
        "x,y without crs": (
            [
                "--buildings",
                str(tmp / "nocrs.tif"),
                "--samples",
                str(_write(tmp / "xy.csv", "x,y,rss_dbm\n110,480,-60\n")),
            ],
            "no CRS",
        ),
        "corrupted checkpoint": ([*b, *s, "--checkpoint", str(bad_ckpt)], "corrupted"),
        "unknown checkpoint": ([*b, *s, "--checkpoint", "no-such-checkpoint"], "no checkpoint"),
        "bad mode": ([*b, *s, "--mode", "magic"], "invalid choice"),
    }


def test_cli_bad_input_exit_2_one_line_no_output(files, capsys):
    outputs = [files / "m.npy", files / "m.tif", files / "m.png"]
    flags = ["--out", str(outputs[0]), "--geotiff", str(outputs[1]), "--figure", str(outputs[2])]
    before = set(files.iterdir())
    failures = []
    for name, (argv, message) in _cases(files).items():
        created = set(files.iterdir())
        rc = main(
            ["estimate", *argv, *flags, "--mode", "diffusion", "--candidates", "0"]
            if name != "bad mode"
            else ["estimate", *argv, *flags]
        )
        err = capsys.readouterr().err
        left = [
            p.name
            for p in set(files.iterdir()) - created
            if p.suffix in (".npy", ".tif", ".png") and p.name.startswith(("m.", ".m."))
        ]
        if rc != 2 or message not in err or "Traceback" in err or left:
            failures.append(f"{name}: rc={rc} left={left} err={err.strip()[:200]!r}")
    assert not failures, "\n".join(failures)
    assert not any(p.name.startswith(("m.", ".m.")) for p in files.iterdir()), before


def test_cli_clip_rss_is_an_explicit_opt_in_with_a_warning(files, capsys):
    (files / "hot.csv").write_text("row,col,rss_dbm\n1,1,60\n20,20,-60\n")
    rc = main(
        [
            "estimate",
            "--buildings",
            str(files / "b.png"),
            "--samples",
            str(files / "hot.csv"),
            "--out",
            str(files / "m.npy"),
            "--clip-rss",
            "--mode",
            "diffusion",
            "--candidates",
            "0",
            "--quiet",
        ]
    )
    assert rc == 0 and "clipped 1 sample(s)" in capsys.readouterr().err
    assert np.load(files / "m.npy")[1, 1] == pytest.approx(-10.0)


def test_cli_unknown_preset_is_exit_2(capsys):
    assert main(["train", "--preset", "huge"]) == 2
    assert "invalid choice" in capsys.readouterr().err
