"""Training: the boost AttUnet and the ε-denoiser jointly, then the correction ResNet.

Stage ``joint`` — each step trains
  * AttUnet on the masked MSE of R̂ against the true map (open pixels only), and
  * the denoiser on the DDPM ε-MSE (T = 1000, linear β), conditioned on (B, S′, M′, R̂) built
    from the current (detached) R̂ exactly as at inference; with probability ``p_uncond`` the
    condition is replaced by the static-only one (buildings only) that midpoint reuse needs.
Stage ``boost`` — the same loop with the AttUnet alone (the denoiser is not touched): a cheap
fine-tune of the boost block, e.g. on BRAT only, that a 2-core CPU can afford.
Stage ``correction`` — generates K candidates per training map with the EMA networks, then
trains the ResNet's α so that a soft arg-min of ``d(k) = L_s(k) + α·D(k)`` picks candidates
with a low true full-map error (DESIGN §1, election).

Everything is resumable: ``state.pt`` in the run directory holds networks, EMA copies,
optimisers, step counters and RNG state, written every ``save_every`` steps and at the end.
Every validation that beats the best so far (boost NMSE on BRAT region 2) also writes the EMA
networks to ``best.pt``; ``export(select="best")`` exports those instead of the last ones.
"""

from __future__ import annotations

import copy
import csv
import math
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.units import P_MAX_DBM, P_MIN_DBM
from ..models.checkpoint import build_networks, save_checkpoint
from ..models.denoiser import predict, predict_eps
from ..models.features import correction_inputs
from ..models.presets import preset
from ..pipeline.boost import boost_condition, rough_map
from ..pipeline.params import PIPELINE_KEYS, BoostParams, PipelineConfig
from ..reference.elect import open_mse, sample_error
from ..sampling.ddim import ddim_sample
from ..sampling.schedules import SchedulerConfig, alphas_cumprod, ddim_table
from .data import BatchSource
from .validation import Validator


@dataclass
class TrainConfig:
    preset: str = "small"
    run_dir: str = "runs/small"
    device: str = "cpu"
    batch: int = 8
    lr: float = 3e-4
    minutes: float = 60.0
    max_steps: int = 10**9
    save_every: int = 200
    val_every: int = 200
    p_uncond: float = 0.1
    p_noboost: float = 0.1
    ema_decay: float = 0.999
    seed: int = 0
    mix: str = "brat:0.5,sim:0.5"
    crop: int | None = None  # train on random crop² windows of the 256² maps (None: whole maps)
    data_dir: str | None = None
    raytrace_dir: str | None = "corpus/raytrace"
    amp: bool = True
    init_from: str | None = None
    reinit: tuple[str, ...] = ()  # networks NOT taken from init_from
    train_denoiser: bool = True  # False: stage "boost" (the AttUnet alone)
    # correction stage
    corr_maps: int = 256
    corr_candidates: int = 16
    corr_steps: int = 10
    corr_epochs: int = 30


def parse_mix(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, _, weight = part.partition(":")
        out[name.strip()] = float(weight or 1.0)
    return out


SOURCE_NAMES = {
    "brat": "BRAT region 1 (region 2 held out for validation)",
    "sim": "wifidiff_fast simulator",
    "raytrace": "Sionna RT corpus",
}


def training_data(mix: str) -> dict:
    """The record's ``data`` (in words) and ``brat_regions`` (what a cross-region check must not
    score) for a ``--mix``; a source with weight 0 was never read."""
    used = [name for name, weight in parse_mix(mix).items() if weight > 0]
    return {
        "data": " + ".join(SOURCE_NAMES.get(name, name) for name in used),
        "brat_regions": [1] if "brat" in used else [],
    }


class Trainer:
    def __init__(self, cfg: TrainConfig, progress=None):
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.run = Path(cfg.run_dir)
        self.run.mkdir(parents=True, exist_ok=True)
        self.nets = build_networks(preset(cfg.preset))
        for m in self.nets.modules().values():
            m.to(self.device)
        self.ema = copy.deepcopy(self.nets)
        for m in self.ema.modules().values():
            m.requires_grad_(False)
        self.opt_boost = torch.optim.AdamW(self.nets.boost.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.opt_den = torch.optim.AdamW(self.nets.denoiser.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.opt_corr = torch.optim.AdamW(self.nets.correction.parameters(), lr=1e-3, weight_decay=1e-4)
        self.sched_cfg = SchedulerConfig()
        self.alpha_bar = alphas_cumprod(self.sched_cfg).float().to(self.device)
        self.boost_params = BoostParams()
        self.step = 0
        self.corr_done = False
        self.elapsed = 0.0
        self.ema_updates = 0
        self.joint_record = {"batch": cfg.batch, "mix": cfg.mix, "lr": cfg.lr}  # of the joint stage
        self.init_config: dict = {}  # the init-from checkpoint's config (its measured settings)
        self.best_val: dict | None = None  # {"step", "nmse", "rmse_db"} of best.pt
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.progress = progress
        self.state_path = self.run / "state.pt"
        self.log_path = self.run / "log.csv"
        if self.state_path.exists():
            self._load()
        elif cfg.init_from:
            self._init_from(cfg.init_from)

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        state = {
            "cfg": self.cfg.__dict__,
            "step": self.step,
            "elapsed": self.elapsed,
            "corr_done": self.corr_done,
            "ema_updates": self.ema_updates,
            "joint_record": self.joint_record,
            "nets": {k: m.state_dict() for k, m in self.nets.modules().items()},
            "ema": {k: m.state_dict() for k, m in self.ema.modules().items()},
            "opt_boost": self.opt_boost.state_dict(),
            "opt_den": self.opt_den.state_dict(),
            "opt_corr": self.opt_corr.state_dict(),
            "gen": self.gen.get_state(),
            "init_config": self.init_config,
            "best_val": self.best_val,
        }
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)  # atomic: a cut-off never leaves a half-written state

    def _load(self) -> None:
        state = torch.load(self.state_path, map_location=self.device, weights_only=False)
        for k, m in self.nets.modules().items():
            m.load_state_dict(state["nets"][k])
        for k, m in self.ema.modules().items():
            m.load_state_dict(state["ema"][k])
        self.opt_boost.load_state_dict(state["opt_boost"])
        self.opt_den.load_state_dict(state["opt_den"])
        self.opt_corr.load_state_dict(state["opt_corr"])
        self.gen.set_state(state["gen"].cpu())
        self.step, self.elapsed, self.corr_done = state["step"], state["elapsed"], state["corr_done"]
        self.ema_updates = state.get("ema_updates", 10**6)
        self.joint_record = state.get("joint_record", self.joint_record)
        self.init_config = state.get("init_config", {})
        self.best_val = state.get("best_val")

    def _init_from(self, directory: str) -> None:
        """Start from an exported checkpoint's (EMA) weights, e.g. to continue on another machine
        where only the checkpoint travelled; optimisers start fresh, the step count carries on."""
        from ..models.checkpoint import load_checkpoint

        nets, config = load_checkpoint(directory, device=self.device)
        for k in ("boost", "denoiser", "correction"):
            if k in self.cfg.reinit:
                self.ema.modules()[k].load_state_dict(self.nets.modules()[k].state_dict())
                continue
            self.nets.modules()[k].load_state_dict(nets.modules()[k].state_dict())
            self.ema.modules()[k].load_state_dict(nets.modules()[k].state_dict())
        self.init_config = config
        record = config.get("training", {})
        # the correction ResNet comes along trained unless it is re-initialised
        self.corr_done = bool(record.get("correction_trained")) and "correction" not in self.cfg.reinit
        self.step = int(record.get("steps", 0))
        self.elapsed = float(record.get("wall_time_s", 0.0))

    def _log(self, row: dict) -> None:
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _ema_update(self) -> None:
        # Warm-up (as diffusers' EMAModel): decay min(d, (1+n)/(10+n)) over this run's updates n.
        # Without it, a short run's EMA kept ~10 % of the random initial weights (0.999^2400) —
        # measured: the first exported x0-denoiser could not even copy a noise-free x_t.
        self.ema_updates += 1
        n = self.ema_updates
        d = min(self.cfg.ema_decay, (1 + n) / (10 + n))
        with torch.no_grad():
            for name in ("boost", "denoiser") if self.cfg.train_denoiser else ("boost",):
                for pe, p in zip(
                    self.ema.modules()[name].parameters(), self.nets.modules()[name].parameters()
                ):
                    pe.lerp_(p, 1 - d)

    def _autocast(self):
        enabled = self.cfg.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # ------------------------------------------------------------------ stage 1
    def train_joint(self) -> None:
        cfg = self.cfg
        self.joint_record = {
            "batch": cfg.batch,
            "mix": cfg.mix,
            "lr": cfg.lr,
            "stage": "joint" if cfg.train_denoiser else "boost",
            "crop": cfg.crop,
        }
        source = BatchSource(
            cfg.device,
            mix=parse_mix(cfg.mix),
            seed=cfg.seed + self.step,
            data_dir=cfg.data_dir,
            raytrace_dir=cfg.raytrace_dir,
            crop=cfg.crop,
        )
        validator = Validator(cfg.device, data_dir=cfg.data_dir)
        deadline = time.time() + cfg.minutes * 60
        t_last = time.time()
        first_step = self.step
        while self.step < cfg.max_steps and time.time() < deadline:
            # warm-up over this sitting's first 200 steps (its optimiser moments may be fresh: a
            # run started with --init-from), then a cosine decay over the sitting's time budget
            frac = min(1.0, (time.time() - (deadline - cfg.minutes * 60)) / max(cfg.minutes * 60, 1e-9))
            warm = min(1.0, (self.step - first_step + 1) / 200)
            lr = cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
            for opt in (self.opt_boost, self.opt_den):
                for g in opt.param_groups:
                    g["lr"] = lr
            batch = source.next(cfg.batch)
            x0, B, S, M = batch["x0"], batch["B"], batch["S"], batch["M"]
            open_ = 1 - B
            with self._autocast():
                R_hat = rough_map(self.nets.boost, B, S, M)
            loss_boost = ((R_hat.float() - x0) ** 2 * open_).sum() / open_.sum().clamp_min(1)
            self.opt_boost.zero_grad(set_to_none=True)
            loss_boost.backward()
            torch.nn.utils.clip_grad_norm_(self.nets.boost.parameters(), 1.0)
            self.opt_boost.step()
            loss_den = self._denoiser_step(x0, B, S, M, R_hat) if cfg.train_denoiser else None
            self._ema_update()
            self.step += 1
            now = time.time()
            self.elapsed += now - t_last
            t_last = now
            losses = {"boost": loss_boost.item(), **({"den": loss_den} if loss_den is not None else {})}
            if self.progress is not None:
                self.progress(self.step, losses)
            row = {
                "step": self.step,
                "elapsed_s": round(self.elapsed, 1),
                "loss_boost": losses["boost"],
                "loss_den": "" if loss_den is None else loss_den,
                "val_nmse_boost": "",
                "val_rmse_db_boost": "",
            }
            if self.step % cfg.val_every == 0:
                val = validator.boost_metrics(self.ema.boost)
                row.update({"val_nmse_boost": val["nmse"], "val_rmse_db_boost": val["rmse_db"]})
                if self.best_val is None or val["nmse"] < self.best_val["nmse"]:
                    self._save_best({"step": self.step, **val})
            if self.step % 10 == 0 or row["val_nmse_boost"] != "":
                self._log(row)
            if self.step % cfg.save_every == 0:
                self._save()
        self._save()

    def _save_best(self, val: dict) -> None:
        self.best_val = val
        tmp = self.run / "best.tmp"
        torch.save({"best_val": val, "ema": {k: m.state_dict() for k, m in self.ema.modules().items()}}, tmp)
        tmp.replace(self.run / "best.pt")

    def _denoiser_step(self, x0, B, S, M, R_hat) -> float:
        """One step of the denoiser on the batch, conditioned on the detached R̂; returns its loss."""
        cfg = self.cfg
        with torch.no_grad():
            cond = boost_condition(R_hat.detach().float(), B, S, M, self.boost_params, self.gen)
        n = x0.shape[0]
        t = torch.randint(0, self.sched_cfg.num_train_timesteps, (n,), generator=self.gen).to(self.device)
        eps = torch.randn(x0.shape, generator=self.gen).to(self.device)
        ab = self.alpha_bar[t].view(-1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        # condition dropout: p_uncond static-only, p_noboost samples without the boost block
        u = torch.rand(n, generator=self.gen).to(self.device)
        has_samples = (u >= cfg.p_uncond).float()
        has_boost = (u >= cfg.p_uncond + cfg.p_noboost).float()
        keep = has_boost.view(-1, 1, 1)
        S_c = keep * cond.S_prime + (1 - keep) * S
        M_c = keep * cond.M_prime + (1 - keep) * M
        with self._autocast():
            out = predict(
                self.nets.denoiser,
                x_t,
                t,
                B,
                S_c,
                M_c,
                cond.R_hat,
                has_samples,
                has_boost,
                self.sched_cfg.prediction_type,
            ).float()
        target = eps if self.sched_cfg.prediction_type == "epsilon" else x0
        loss_den = F.mse_loss(out, target)
        self.opt_den.zero_grad(set_to_none=True)
        loss_den.backward()
        torch.nn.utils.clip_grad_norm_(self.nets.denoiser.parameters(), 1.0)
        self.opt_den.step()
        return loss_den.item()

    # ------------------------------------------------------------------ stage 2
    @torch.no_grad()
    def _candidate_pool(self) -> list[dict]:
        cfg = self.cfg
        source = BatchSource(
            cfg.device,
            mix=parse_mix(cfg.mix),
            seed=cfg.seed + 777,
            data_dir=cfg.data_dir,
            raytrace_dir=cfg.raytrace_dir,
        )
        table, timesteps = ddim_table(self.sched_cfg, cfg.corr_steps, 0.0, device=self.device)
        pool = []
        per = 4
        for _ in range(math.ceil(cfg.corr_maps / per)):
            b = source.next(per)
            x0, B, S, M = b["x0"], b["B"], b["S"], b["M"]
            with self._autocast():
                R_hat = rough_map(self.ema.boost, B, S, M).float()
            cond = boost_condition(R_hat, B, S, M, self.boost_params, self.gen)
            K = cfg.corr_candidates
            rep = lambda z, K=K: z.repeat_interleave(K, 0)  # noqa: E731
            Bk, Sk, Mk, Rk = rep(B), rep(cond.S_prime), rep(cond.M_prime), rep(R_hat)
            ones = torch.ones(Bk.shape[0], device=self.device)

            def eps_fn(x, i, Bk=Bk, Sk=Sk, Mk=Mk, Rk=Rk, ones=ones):  # bound: B023
                with self._autocast():
                    return predict_eps(
                        self.ema.denoiser,
                        x,
                        timesteps[i].expand(x.shape[0]),
                        Bk,
                        Sk,
                        Mk,
                        Rk,
                        ones,
                        ones,
                        self.sched_cfg.prediction_type,
                        table[i, 0],
                        table[i, 1],
                    ).float()

            xT = torch.randn(Bk.shape, generator=self.gen).to(self.device)
            _, cand = ddim_sample(eps_fn, xT, table)
            cand = cand.reshape(per, K, *x0.shape[-2:])
            pool.append({"x0": x0, "B": B, "S": S, "M": M, "R_hat": R_hat, "cand": cand.half()})
        return pool

    def train_correction(self) -> None:
        cfg = self.cfg
        pool = self._candidate_pool()
        db_span = P_MAX_DBM - P_MIN_DBM
        net = self.nets.correction
        for epoch in range(cfg.corr_epochs):
            losses, gains = [], []
            for item in pool:
                x0, B, S, M, R_hat = item["x0"], item["B"], item["S"], item["M"], item["R_hat"]
                cand = item["cand"].float()
                # the election's own data terms (reference/elect.py), and the true error E alike
                L_s, D = sample_error(cand, S, M), open_mse(cand, R_hat, B)
                E = open_mse(cand, x0, B)
                log_alpha = net(correction_inputs(R_hat, S, M, B, db_span))
                d = L_s + log_alpha.exp()[:, None] * D
                temp = d.std(dim=1, keepdim=True).detach().clamp_min(1e-8)
                weights = torch.softmax(-d / temp, dim=1)
                # expected true error of the soft election, relative to the mean candidate
                loss = ((weights * E).sum(1) / E.mean(1).clamp_min(1e-12)).mean()
                self.opt_corr.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_corr.step()
                losses.append(loss.item())
                hard = E.gather(1, d.argmin(1, keepdim=True))[:, 0]
                gains.append(float((hard / E.mean(1)).mean()))
            row = {
                "epoch": epoch,
                "loss": sum(losses) / len(losses),
                "elected_err_over_mean_err": sum(gains) / len(gains),
            }
            new = not (self.run / "correction_log.csv").exists()
            with open(self.run / "correction_log.csv", "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                if new:
                    writer.writeheader()
                writer.writerow(row)
        self.ema.correction.load_state_dict(net.state_dict())
        self.corr_done = True
        self._save()

    # ------------------------------------------------------------------ export
    def export(
        self, directory: str | Path, name: str, hardware: str | None = None, select: str = "last"
    ) -> Path:
        """Write a checkpoint from the EMA networks: the last ones, or (``select="best"``) those of
        the best validation in ``best.pt``. A run started with ``--init-from`` keeps that
        checkpoint's measured inference settings (``boost``, ``pipeline``, ``election``)."""
        if select not in ("last", "best"):
            raise ValueError(f"select must be 'last' or 'best', got {select!r}")
        ema_cpu = copy.deepcopy(self.ema)
        exported_step = self.step
        if select == "best":
            if not (self.run / "best.pt").exists():
                raise FileNotFoundError(f"{self.run / 'best.pt'} does not exist: no validation ran yet")
            best = torch.load(self.run / "best.pt", map_location="cpu", weights_only=False)
            for k, m in ema_cpu.modules().items():
                m.load_state_dict(best["ema"][k])
            exported_step = int(best["best_val"]["step"])
        for m in ema_cpu.modules().values():
            m.cpu()
        record = {
            # the step of the exported weights (best.pt's for select="best"); the run's last step
            "steps": exported_step,
            "run_steps": self.step,
            "wall_time_s": round(self.elapsed, 1),
            "hardware": hardware
            or (
                torch.cuda.get_device_name(0)
                if torch.cuda.is_available()
                else platform.processor() or platform.machine()
            ),
            "torch": torch.__version__,
            **self.joint_record,
            "final_losses": self._final_losses(),
            "correction_trained": self.corr_done,
            "exported": select,
            "best_validation": self.best_val,
            "initialised_from": (
                self.init_config.get("name"),
                self.init_config.get("weights", {}).get("sha256"),
            )
            if self.init_config
            else None,
            "initial_training": self.init_config.get("training"),  # the record of the weights it started from
            **training_data(self.joint_record["mix"]),
        }
        settings = PipelineConfig(
            p_min_dbm=P_MIN_DBM, p_max_dbm=P_MAX_DBM, scheduler=self.sched_cfg, boost=self.boost_params
        )
        if self.init_config:  # the settings measured for the initial weights
            measured = PipelineConfig.from_dict(self.init_config)
            settings = replace(
                settings,
                boost=measured.boost,
                election=measured.election,
                **{key: getattr(measured, key) for key in PIPELINE_KEYS},
            )
        config = {"name": name, "preset": self.cfg.preset, **settings.to_dict(), "training": record}
        if self.init_config.get("physics") is not None:
            # The prior's calibration belongs to the physics, not to the weights: a fine-tune of a
            # physics-mode checkpoint keeps it (else its carried-over mode would have no block).
            config["physics"] = self.init_config["physics"]
        return save_checkpoint(directory, ema_cpu, config)

    def _final_losses(self) -> dict:
        if not self.log_path.exists():
            return {}
        rows = list(csv.DictReader(open(self.log_path)))
        out = {}
        for key in ("loss_boost", "loss_den", "val_nmse_boost", "val_rmse_db_boost"):
            vals = [float(r[key]) for r in rows if r.get(key)]  # log.csv holds numbers or ""
            if vals:
                tail = vals[-20:] if key.startswith("loss") else vals[-1:]
                out[key] = sum(tail) / len(tail)
        return out
