"""Pipeline settings: the sampler's checks and the typed checkpoint config (read, written back)."""

from __future__ import annotations

import json

import pytest

from wifidiff_fast.models.checkpoint import CheckpointError
from wifidiff_fast.pipeline.generate import reuse_steps
from wifidiff_fast.pipeline.params import (
    SAMPLER_DEFAULTS,
    BoostParams,
    PipelineConfig,
    SamplerSettings,
)
from wifidiff_fast.reference.elect import ElectionParams

from pipecases import SHIPPED

# ---------------------------------------------------------------------------- SamplerSettings
GOOD = dict(candidates=4, steps=10, reuse=0.5, eta=0.2, seed=3)


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(candidates=-1), ValueError, "candidates must be in 0..1024"),
        (dict(candidates=1025), ValueError, "candidates must be in"),
        (dict(steps=0), ValueError, "steps must be in 1..1000"),
        (dict(steps=1001), ValueError, "steps must be in"),
        (dict(reuse=1.0), ValueError, r"reuse must be in \[0, 1\)"),
        (dict(reuse=-0.1), ValueError, "reuse must be in"),
        (dict(eta=1.5), ValueError, r"eta must be in \[0, 1\]"),
        (dict(eta=float("nan")), ValueError, "eta must be finite"),
        (dict(seed=-1), ValueError, r"seed must be in \[0, 2\*\*63\)"),
        (dict(seed=2**63), ValueError, "seed must be in"),
        (dict(seed=1.5), TypeError, "seed must be an integer, got float"),
        (dict(candidates=True), TypeError, "candidates must be an integer, got bool"),
        (dict(steps="4"), TypeError, "steps must be an integer, got str"),
        (dict(reuse="0.5"), TypeError, "reuse must be a number"),
    ],
)
def test_sampler_settings_refuse_bad_values(change, error, match):
    with pytest.raises(error, match=match):
        SamplerSettings(**{**GOOD, **change})


def test_sampler_settings_coerce_and_derive_the_stage_one_steps():
    import numpy as np

    s = SamplerSettings(np.int64(4), 10, 0, np.float32(0.25), np.uint8(3))
    assert (type(s.candidates), type(s.reuse), type(s.eta), type(s.seed)) == (int, float, float, int)
    for R, S in [(0.0, 10), (0.5, 10), (0.25, 3), (0.75, 4)]:
        assert SamplerSettings(2, S, R).stage1_steps == reuse_steps(R, S)
    with pytest.raises(AttributeError):
        s.steps = 3  # frozen


def test_sampler_settings_resolve_fills_defaults_and_checks_the_schedule():
    defaults = SamplerSettings(8, 5, 0.2, 0.1)
    assert SamplerSettings.resolve(defaults, 1000, seed=7) == SamplerSettings(8, 5, 0.2, 0.1, 7)
    got = SamplerSettings.resolve(defaults, 1000, candidates=0, steps=2, reuse=0.0, eta=0.0)
    assert got == SamplerSettings(0, 2, 0.0, 0.0, 0)
    with pytest.raises(ValueError, match="steps must be in 1..50, got 60"):
        SamplerSettings.resolve(defaults, 50, steps=60)


# ---------------------------------------------------------------------------- PipelineConfig
def _shipped() -> dict:
    return json.loads((SHIPPED / "config.json").read_text())


def test_the_shipped_config_reads_and_writes_back_unchanged():
    config = _shipped()
    cfg = PipelineConfig.from_dict(config)
    assert (cfg.p_min_dbm, cfg.p_max_dbm, cfg.mode, cfg.boost_candidate) == (-130.0, -10.0, "physics", True)
    assert cfg.boost.tta is True and cfg.election.db_span == 120.0
    written = cfg.to_dict()
    for section in ("normalisation", "scheduler", "sampler_defaults", "boost", "election"):
        assert written[section] == config[section], section
    # the pipeline section is written in full: the shipped keys as they were, the rest defaults
    assert {k: written["pipeline"][k] for k in config["pipeline"]} == config["pipeline"]
    assert PipelineConfig.from_dict(json.loads(json.dumps(written))) == cfg


def test_defaults_round_trip_and_absent_sections_take_them():
    cfg = PipelineConfig()
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    assert PipelineConfig.from_dict({}) == cfg
    assert cfg.sampler_defaults == SAMPLER_DEFAULTS and cfg.boost == BoostParams()


def test_the_election_span_follows_the_normalisation():
    config = _shipped()
    config["normalisation"] = {"p_min_dbm": -120.0, "p_max_dbm": -20.0}
    config["election"]["db_span"] = 120.0  # stale
    assert PipelineConfig.from_dict(config).election.db_span == 100.0
    assert (
        PipelineConfig(p_min_dbm=-100.0, p_max_dbm=0.0, election=ElectionParams()).election.db_span == 100.0
    )


@pytest.mark.parametrize(
    "edit,error,match",
    [
        (
            lambda c: c["pipeline"].update(boost_candiate=False),
            CheckpointError,
            r"'pipeline' has unknown key\(s\) \['boost_candiate'\]",
        ),
        (
            lambda c: c["boost"].update(n_crit=3),
            CheckpointError,
            r"'boost' has unknown key\(s\) \['n_crit'\]",
        ),
        (lambda c: c["sampler_defaults"].update(seed=1), CheckpointError, "'sampler_defaults' has unknown"),
        (lambda c: c["scheduler"].update(beta=1), CheckpointError, "'scheduler' has unknown"),
        (lambda c: c["election"].update(lambda_=1), CheckpointError, "'election' has unknown"),
        (lambda c: c.update(boost=[1]), CheckpointError, "'boost' must be an object"),
        (lambda c: c["pipeline"].update(mode="magic"), ValueError, "pipeline.mode must be one of"),
        (lambda c: c["sampler_defaults"].update(candidates=5000), ValueError, "candidates must be in"),
        (lambda c: c["normalisation"].update(p_max_dbm=-200.0), CheckpointError, "p_max_dbm > p_min_dbm"),
    ],
)
def test_bad_configs_are_refused_with_the_key(edit, error, match):
    config = _shipped()
    edit(config)
    with pytest.raises(error, match=match):
        PipelineConfig.from_dict(config)
