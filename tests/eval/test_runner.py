"""Runner, method registry and CLI — with fake methods and a fake estimator, never the real one."""

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from wifidiff_fast.data.protocol import draw_samples, map_seed
from wifidiff_fast.data.scene import Scene
from wifidiff_fast.eval import datasets as ds_mod, methods as methods_mod, metrics, runner
from wifidiff_fast.eval.cli import main
from wifidiff_fast.eval.methods import EstimatorOptions, register_method, resolve_methods
from wifidiff_fast.eval.report import to_markdown
from wifidiff_fast.eval.runner import EvaluationError, evaluate

ROOT = Path(__file__).resolve().parents[2]


def _tiny_scenes(k=3, size=24):
    out = []
    for i in range(k):
        rng = np.random.default_rng(i)
        b = np.zeros((size, size), np.uint8)
        b[5:9, 6 + i : 12 + i] = 1
        rr, cc = np.mgrid[0:size, 0:size]
        rss = -50.0 - 0.8 * np.hypot(rr - 3, cc - 4) + rng.normal(0, 0.5, (size, size))
        out.append(Scene(f"tiny{i}", rss, b))
    return out


@pytest.fixture
def registry():
    """Register test methods and remove them afterwards."""
    added = []

    def add(name, *a, **k):
        register_method(name, *a, **k)
        added.append(name)

    yield add
    for name in added:
        methods_mod.unregister_method(name)
    methods_mod._ESTIMATORS.clear()


def test_every_method_sees_the_same_samples(registry):
    seen = {"a": [], "b": []}

    def make(tag):
        def fn(buildings, samples):
            seen[tag].append(samples.copy())
            return np.where(buildings == 1, np.nan, samples[:, 2].mean()).astype(np.float32)

        return fn

    registry("fake-a", make("a"))
    registry("fake-b", make("b"))
    scenes = _tiny_scenes()
    methods = resolve_methods(["fake-a", "fake-b"])
    rep = evaluate({"tiny": scenes}, methods, ns=[3, 7], seed=11, progress=False)
    assert len(seen["a"]) == len(seen["b"]) == 6
    k = 0
    for i, sc in enumerate(scenes):
        for n in (3, 7):
            expected = draw_samples(sc.rss_dbm, sc.buildings, n, map_seed(11, i, n))
            np.testing.assert_array_equal(seen["a"][k], expected)
            np.testing.assert_array_equal(seen["b"][k], expected)
            k += 1
    # report structure and values
    cell = rep["tiny"]["methods"]["fake-a"]["by_n"]["7"]
    assert rep["tiny"]["maps"] == ["tiny0", "tiny1", "tiny2"]
    assert len(cell["per_map"]["nmse"]) == 3 and len(cell["per_map"]["ms"]) == 3
    sc = scenes[1]
    s = draw_samples(sc.rss_dbm, sc.buildings, 7, map_seed(11, 1, 7))
    pred = np.where(sc.buildings == 1, np.nan, s[:, 2].mean())
    assert cell["per_map"]["nmse"][1] == pytest.approx(metrics.nmse(pred, sc.rss_dbm, sc.buildings == 0))
    assert cell["mean"]["rmse_db"] == pytest.approx(np.mean(cell["per_map"]["rmse_db"]))
    assert rep["tiny"]["methods"]["fake-a"]["median_ms"] >= 0
    md = to_markdown({"config": {"seed": 11}, "datasets": rep})
    assert "| fake-a |" in md and "N=3" in md and "RMSE in dB" in md and "PSNR" in md


def test_target_is_passed_only_to_methods_that_want_it(registry):
    got = []

    def oracle(buildings, samples, target):
        got.append(target)
        return target

    registry("fake-oracle", oracle, wants_target=True)
    scenes = _tiny_scenes(k=1)
    rep = evaluate({"t": scenes}, resolve_methods(["fake-oracle", "idw"]), ns=[5], progress=False)
    assert len(got) == 1 and np.array_equal(got[0], scenes[0].rss_dbm, equal_nan=True)
    assert rep["t"]["methods"]["fake-oracle"]["by_n"]["5"]["mean"]["mse"] == 0.0


def test_failing_method_names_the_map(registry):
    registry("fake-nan", lambda b, s: np.full(b.shape, np.nan, np.float32))
    registry("fake-shape", lambda b, s: np.zeros((3, 3), np.float32))
    for name in ("fake-nan", "fake-shape"):
        with pytest.raises(EvaluationError, match=f"{name} failed on t map 0 \\(tiny0\\) at N=5"):
            evaluate({"t": _tiny_scenes(k=1)}, resolve_methods([name]), ns=[5], progress=False)


def test_reuse_expansion(registry):
    built = []

    def factory(options):
        built.append(options.reuse)
        return lambda b, s: np.zeros(b.shape, np.float32)

    registry("fake-est", factory=factory, reusable=True)
    ms = resolve_methods(["idw", "fake-est"], EstimatorOptions(), reuse=[0.0, 0.3, 0.5])
    assert [m.name for m in ms] == ["idw", "fake-est", "fake-est@R=0.3", "fake-est@R=0.5"]
    assert built == [0.0, 0.3, 0.5]
    ms = resolve_methods(["fake-est@R=0.7"])
    assert [m.name for m in ms] == ["fake-est@R=0.7"] and built[-1] == 0.7
    for bad, msg in (
        (["idw@R=0.3"], "no reuse"),
        (["fake-est@R=1.0"], r"\[0, 1\)"),
        (["fake-est@R=x"], "not a number"),
        (["fake-est@T=1"], "suffix"),
        (["nope"], "unknown method"),
    ):
        with pytest.raises(ValueError, match=msg):
            resolve_methods(bad)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        resolve_methods(["fake-est"], reuse=[-0.1])


class _FakeResult:
    def __init__(self, rss, cands, rhat):
        self.rss_dbm, self.candidates_dbm, self.R_hat_dbm = rss, cands, rhat
        self.timings_ms = {}


class _FakeEstimator:
    """Stands in for RadioMapEstimator: records calls; candidate k is the truth + k dB."""

    created = []
    calls = []
    truth = None

    @classmethod
    def from_pretrained(cls, checkpoint, device="cpu", progress=None):
        cls.created.append((checkpoint, device, progress))
        return cls()

    def estimate(self, buildings, samples, **kw):
        type(self).calls.append(kw)
        t = np.asarray(type(self).truth, np.float32)
        cands = np.stack([t + k for k in (3.0, 1.0, 2.0)]) if kw.get("return_candidates") else None
        return _FakeResult(t + 5.0, cands, t + 9.0)


@pytest.fixture
def fake_estimator(monkeypatch):
    mod = types.ModuleType("wifidiff_fast.pipeline.estimator")
    mod.RadioMapEstimator = _FakeEstimator
    monkeypatch.setitem(sys.modules, "wifidiff_fast.pipeline.estimator", mod)
    _FakeEstimator.created, _FakeEstimator.calls = [], []
    methods_mod._ESTIMATORS.clear()
    yield _FakeEstimator
    methods_mod._ESTIMATORS.clear()


def test_estimator_methods_wiring(fake_estimator):
    sc = _tiny_scenes(k=1)[0]
    fake_estimator.truth = sc.rss_dbm
    opts = EstimatorOptions(checkpoint="tiny-ckpt", candidates=3, steps=4, device="cpu", seed=7)
    names = [
        "wifidiff",
        "wifidiff-noboost",
        "wifidiff-noelect",
        "wifidiff-neither",
        "boost-only",
        "wifidiff-oracle",
    ]
    ms = {m.name: m for m in resolve_methods(names, opts, reuse=[0.0, 0.5])}
    # built once per process, its own per-request bar off (the runner's bar counts maps)
    assert fake_estimator.created == [("tiny-ckpt", "cpu", False)]
    assert "boost-only@R=0.5" not in ms and "wifidiff-oracle@R=0.5" in ms
    s = draw_samples(sc.rss_dbm, sc.buildings, 5, 0)
    out = ms["wifidiff@R=0.5"](sc.buildings, s, target=sc.rss_dbm)
    np.testing.assert_allclose(out, sc.rss_dbm + 5.0)
    kw = fake_estimator.calls[-1]
    assert kw["reuse"] == 0.5 and kw["candidates"] == 3 and kw["steps"] == 4 and kw["seed"] == 7
    assert kw["boost"] and kw["elect"] and not kw["return_candidates"]
    for name, boost, elect in (
        ("wifidiff-noboost", False, True),
        ("wifidiff-noelect", True, False),
        ("wifidiff-neither", False, False),
    ):
        ms[name](sc.buildings, s)
        kw = fake_estimator.calls[-1]
        assert (kw["boost"], kw["elect"], kw["reuse"]) == (boost, elect, 0.0), name
    np.testing.assert_allclose(ms["boost-only"](sc.buildings, s), sc.rss_dbm + 9.0)
    # the oracle keeps the candidate closest to the truth (+1 dB), and needs the target
    assert ms["wifidiff-oracle"].wants_target
    best = ms["wifidiff-oracle"](sc.buildings, s, target=sc.rss_dbm)
    np.testing.assert_allclose(best, sc.rss_dbm + 1.0)
    assert fake_estimator.calls[-1]["return_candidates"]


def test_physics_methods_pass_the_carrier_and_the_antenna(fake_estimator):
    """``physics`` keeps the checkpoint's antenna (None), ``physics-omni`` asks for omni sites."""
    sc = _tiny_scenes(k=1)[0]
    fake_estimator.truth = sc.rss_dbm
    ms = {m.name: m for m in resolve_methods(["physics", "physics-omni"], EstimatorOptions(seed=3))}
    s = draw_samples(sc.rss_dbm, sc.buildings, 5, 0)
    for name, antenna in (("physics", None), ("physics-omni", "omni")):
        assert ms[name].wants_freq
        np.testing.assert_allclose(ms[name](sc.buildings, s, freq_mhz=2750.0), sc.rss_dbm + 5.0)
        kw = fake_estimator.calls[-1]
        assert kw["mode"] == "physics" and kw["antenna"] == antenna, name
        assert kw["freq_mhz"] == 2750.0 and kw["seed"] == 3


def test_import_of_eval_does_not_load_the_estimator():
    code = (
        "import sys, wifidiff_fast.eval, wifidiff_fast.eval.runner, wifidiff_fast.eval.cli; "
        "assert 'wifidiff_fast.pipeline.estimator' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def tiny_dataset(monkeypatch):
    monkeypatch.setitem(ds_mod.DATASETS, "tiny", lambda d: _tiny_scenes())


def _one_line_error(capsys, argv, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("wifidiff_fast.eval: error:"), err
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cli_bad_inputs(capsys, tmp_path, monkeypatch, tiny_dataset):
    monkeypatch.setitem(sys.modules, "wifidiff_fast.pipeline.estimator", None)  # import fails
    methods_mod._ESTIMATORS.clear()
    cases = [
        (["--dataset", "nope"], "unknown dataset"),
        (["--dataset", "tiny", "--methods", "magic"], "unknown method"),
        (["--dataset", "tiny", "--n", "0"], "--n"),
        (["--dataset", "tiny", "--n", "ten"], "--n"),
        (["--dataset", "tiny", "--limit", "0"], "--limit"),
        (["--dataset", "tiny", "--seed", "x"], "--seed"),
        (["--dataset", "tiny", "--reuse", "1.5", "--methods", "wifidiff"], r"[0, 1)"),
        (["--dataset", "tiny", "--candidates", "-3"], "--candidates"),
        (["--dataset", "tiny", "--methods", ""], "--methods"),
        (["--dataset", "tiny", "--out", str(tmp_path / "no" / "r.json")], "does not exist"),
        (["--dataset", "tiny", "--out", str(tmp_path)], "is a folder"),
        (["--dataset", "brat-val", "--data-dir", str(tmp_path)], "not found"),
        (["--dataset", "brat-val", "--data-dir", str(tmp_path / "missing")], "not a folder"),
        (["--dataset", "tiny", "--methods", "wifidiff"], "estimator"),
        (["--dataset", "tiny", "--n", "100000"], "open pixels"),
        (["--frobnicate"], "unrecognized"),
    ]
    for argv, msg in cases:
        err = _one_line_error(capsys, argv + ["--no-progress"])
        assert msg in err, (argv, err)


def test_cli_method_failure_exits_1(capsys, registry, tiny_dataset):
    registry("fake-broken", lambda b, s: 1 / 0)
    err = _one_line_error(
        capsys, ["--dataset", "tiny", "--methods", "fake-broken", "--n", "5", "--no-progress"], code=1
    )
    assert "fake-broken failed" in err and "ZeroDivisionError" in err


def test_cli_debug_reraises(registry, tiny_dataset):
    registry("fake-broken", lambda b, s: 1 / 0)
    with pytest.raises(EvaluationError):
        main(["--dataset", "tiny", "--methods", "fake-broken", "--n", "5", "--no-progress", "--debug"])


def test_cli_unexpected_error_is_one_line(capsys, monkeypatch, tiny_dataset):
    def boom(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(runner, "evaluate", boom)
    err = _one_line_error(capsys, ["--dataset", "tiny", "--no-progress"], code=1)
    assert "unexpected OSError: disk on fire" in err


def test_cli_run_writes_json_and_markdown(capsys, tmp_path, tiny_dataset):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    argv = [
        "--dataset",
        "tiny",
        "--methods",
        "idw,rbf",
        "--n",
        "5,10",
        "--limit",
        "2",
        "--out",
        str(out),
        "--markdown",
        str(md),
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "### tiny — 2 maps" in printed
    rep = json.loads(out.read_text())
    assert rep["argv"] == argv and rep["command"].startswith("python -m wifidiff_fast.eval --dataset tiny")
    assert rep["machine"]["cpu_count"] >= 1 and rep["versions"]["torch"]
    assert rep["config"]["n"] == [5, 10] and rep["config"]["methods"] == ["idw", "rbf"]
    m = rep["datasets"]["tiny"]["methods"]["rbf"]
    assert len(m["by_n"]["10"]["per_map"]["nmse"]) == 2
    assert set(m["by_n"]["5"]["mean"]) == {"mse", "rmse", "nmse", "psnr", "ssim", "rmse_db"}
    assert md.read_text().strip() == printed.strip()


def test_cli_progress_bar_only_on_a_terminal_or_when_forced(capsys, monkeypatch, registry, tiny_dataset):
    registry("fake-const", lambda b, s: np.where(b == 1, np.nan, -60.0).astype(np.float32))
    argv = ["--dataset", "tiny", "--methods", "fake-const", "--n", "5", "--limit", "1"]
    monkeypatch.delenv("WIFIDIFF_PROGRESS", raising=False)
    assert main(argv) == 0  # capsys's stderr is not a TTY: no bar by default
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("WIFIDIFF_PROGRESS", "1")
    assert main(argv) == 0
    assert "tiny fake-const N=5" in capsys.readouterr().err
    for flag in ("--quiet", "--no-progress"):  # the flag beats the environment
        assert main(argv + [flag]) == 0
        assert capsys.readouterr().err == "", flag


def test_cli_subprocess_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "wifidiff_fast.eval", "--dataset", "nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown dataset 'nope'" in proc.stderr
