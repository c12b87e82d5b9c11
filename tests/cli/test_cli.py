"""``wifidiff-fast``: subcommands, help with defaults, --json, exit codes, the GeoTIFF flow."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from wifidiff_fast.cli import build_parser, main
from wifidiff_fast.io import GEOTIFF_NODATA

UTM = CRS.from_epsg(32633)
TRANSFORM = Affine(2.0, 0.0, 400_000.0, 0.0, -2.0, 6_000_000.0)


@pytest.fixture
def scene(tmp_path):
    b = np.zeros((40, 48), np.uint8)
    b[8:18, 10:24] = 1
    b[28:34, 30:44] = 1
    Image.fromarray(b * 255).save(tmp_path / "b.png")
    with rasterio.open(
        tmp_path / "b.tif",
        "w",
        driver="GTiff",
        height=40,
        width=48,
        count=1,
        dtype="uint8",
        crs=UTM,
        transform=TRANSFORM,
    ) as dst:
        dst.write(b, 1)
    pix = [(2, 3, -52.0), (20, 40, -75.0), (36, 5, -81.0), (25, 25, -66.0), (5, 45, -70.0), (38, 46, -88.0)]
    (tmp_path / "px.csv").write_text("row,col,rss_dbm\n" + "".join(f"{r},{c},{v}\n" for r, c, v in pix))
    # the same samples at their pixel centres in the raster's CRS
    xy = [(400_000.0 + 2 * (c + 0.5), 6_000_000.0 - 2 * (r + 0.5), v) for r, c, v in pix]
    (tmp_path / "xy.csv").write_text("x,y,rss_dbm\n" + "".join(f"{x},{y},{v}\n" for x, y, v in xy))
    return tmp_path, b


def _own_subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub.choices[name] for name in ("estimate", "info", "simulate")}


def test_every_option_has_help_and_says_its_default():
    for name, parser in _own_subparsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = parser._get_formatter()._get_help_string(action) if action.help else ""
            assert text.strip(), f"{name} {action.option_strings} has no help"
            if not action.required and not isinstance(action, argparse._StoreTrueAction):
                assert "default" in text, f"{name} {action.option_strings}: help does not give the default"


def test_module_and_console_script_run_info_as_json():
    for cmd in (
        [sys.executable, "-m", "wifidiff_fast", "info", "--no-build", "--json"],
        [
            str(__import__("pathlib").Path(sys.executable).parent / "wifidiff-fast"),
            "--json",
            "info",
            "--no-build",
        ],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout)
        assert info["checkpoints"] and "cpu" in info["backends"] and info["extras"]["rasterio"] is True


def test_estimate_json_output_and_files(scene, capsys):
    tmp, b = scene
    rc = main(
        [
            "estimate",
            "--buildings",
            str(tmp / "b.png"),
            "--samples",
            str(tmp / "px.csv"),
            "--out",
            str(tmp / "m.npy"),
            "--geotiff",
            str(tmp / "m.tif"),
            "--mode",
            "diffusion",
            "--candidates",
            "0",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    summary = json.loads(out)
    assert summary["ok"] and summary["grid"] == [40, 48] and summary["samples_used"] == 6
    assert "boost map alone" in summary["explanation"]
    rss = np.load(tmp / "m.npy")
    assert rss.dtype == np.float32 and np.isnan(rss[b == 1]).all() and np.isfinite(rss[b == 0]).all()
    with rasterio.open(tmp / "m.tif") as src:  # a PNG brings no georeference: a plain pixel grid
        assert src.crs is None and np.array_equal(src.read(1)[b == 0], rss[b == 0])


def test_geotiff_in_xy_samples_georeferenced_geotiff_and_figure_out(scene, capsys):
    """The README's flow on the physics default: GeoTIFF + x,y CSV → GeoTIFF + figure."""
    tmp, b = scene
    rc = main(
        [
            "estimate",
            "--buildings",
            str(tmp / "b.tif"),
            "--samples",
            str(tmp / "xy.csv"),
            "--geotiff",
            str(tmp / "m.tif"),
            "--figure",
            str(tmp / "m.png"),
            "--json",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "physics" and summary["crs"]
    for site in summary["transmitters"]:  # sites reported in the raster's CRS too
        assert site["x"] == pytest.approx(400_000.0 + 2 * (site["col"] + 0.5))
    with rasterio.open(tmp / "m.tif") as src:
        assert src.crs == UTM and tuple(src.transform)[:6] == tuple(TRANSFORM)[:6]
        band = src.read(1)
        assert np.all(band[b == 1] == GEOTIFF_NODATA) and np.all(band[b == 0] > -130)
        assert band[2, 3] == pytest.approx(-52.0)  # measurements are kept
    assert (tmp / "m.png").stat().st_size > 20_000


def test_passthrough_commands_reach_their_modules(capsys):
    for name in ("evaluate", "train", "bench"):
        assert main([name, "--help"]) == 0, name
    assert "--dataset" in capsys.readouterr().out  # the evaluation's own help


def test_simulate_writes_files_estimate_reads(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--size", "48", "--samples", "12", "--json"]) == 0
    scene = json.loads(capsys.readouterr().out)["scenes"][0]["prefix"]
    assert len(open(f"{scene}_samples.csv").read().splitlines()) == 13
    rc = main(
        [
            "estimate",
            "--buildings",
            f"{scene}_buildings.png",
            "--samples",
            f"{scene}_samples.csv",
            "--out",
            str(tmp_path / "m.npy"),
            "--mode",
            "diffusion",
            "--candidates",
            "0",
            "--quiet",
        ]
    )
    truth = np.load(f"{scene}_truth.npy")
    assert rc == 0 and np.array_equal(np.isnan(np.load(tmp_path / "m.npy")), np.isnan(truth))


def test_internal_error_is_exit_1_with_one_line(scene, capsys, monkeypatch):
    tmp, _ = scene
    from wifidiff_fast.pipeline import estimator

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure deep inside")

    monkeypatch.setattr(estimator.RadioMapEstimator, "estimate", broken)
    rc = main(
        [
            "estimate",
            "--buildings",
            str(tmp / "b.png"),
            "--samples",
            str(tmp / "px.csv"),
            "--out",
            str(tmp / "m.npy"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "internal error" in err and "--debug" in err and "Traceback" not in err
    assert not (tmp / "m.npy").exists()


def test_antenna_reaches_the_estimator(scene, capsys, monkeypatch):
    """``--antenna omni`` is passed to estimate(); an unknown type is a usage error."""
    tmp, _ = scene
    from wifidiff_fast.pipeline import estimator

    seen = {}
    real = estimator.RadioMapEstimator.estimate

    def spy(self, buildings, samples, **kwargs):
        seen.update(kwargs)
        return real(self, buildings, samples, **kwargs)

    monkeypatch.setattr(estimator.RadioMapEstimator, "estimate", spy)
    base = ["estimate", "--buildings", str(tmp / "b.png"), "--samples", str(tmp / "px.csv")]
    assert main(base + ["--out", str(tmp / "m.npy"), "--antenna", "omni", "--quiet"]) == 0
    assert seen["antenna"] == "omni" and seen["transmitters"] is None
    assert np.isfinite(np.load(tmp / "m.npy")).any()
    assert main(base + ["--out", str(tmp / "m.npy"), "--antenna", "dipole"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err
    from wifidiff_fast.pipeline.physics_map import ANTENNAS

    assert all(a in err.split("choose from", 1)[1] for a in ANTENNAS)  # the estimator's types


def test_usage_errors_are_exit_2(scene, capsys):
    tmp, _ = scene
    base = ["estimate", "--buildings", str(tmp / "b.png"), "--samples", str(tmp / "px.csv")]
    cases = [
        (base, "nothing to write"),
        (base + ["--out", str(tmp / "m.txt")], ".npy"),
        (base + ["--out", str(tmp / "nofolder" / "m.npy")], "does not exist"),
        (base + ["--out", str(tmp / "m.npy"), "--transmitters", "1;2"], "R,C;R,C"),
        (base + ["--out", str(tmp / "m.npy"), "--workers", "2"], "--workers needs --ray"),
        (["estimate", "--out", "x.npy"], "required"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, message
    assert main(["no-such-command"]) == 2
