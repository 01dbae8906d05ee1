"""The folklore's own experiment: which configurations, seeds, horizon and evaluation it runs.

"500-600 epochs is best, 1000 goes weird" was said of a DCGAN at 64 px on ~960 photos at batch 32
with label targets 0.9/0.1. The experiment trains, without search and without pruning, every
configuration below with `SEEDS` seeds to `HORIZON` epochs,
evaluated every `EVAL_EVERY` epochs against the photos beyond the first `LIMIT` (held out, never
trained on) and against the training photos:

- `dcgan-smooth-600`: the seed notebook's team (label targets 0.9/0.1), at batch 32 instead of its
  64, because the folklore's setting is batch 32 (epochs are only comparable at one batch size);
- `dcgan-paper`: the DCGAN paper's defaults (lr 2e-4 both, beta1 0.5, no smoothing, no augmentation);
- `dcgan-jitter-blur-54`: the other seed notebook (lr_G 3e-4 > lr_D 2e-4, jitter + blur), as it was;
- `random-<i>`: unselected controls, drawn from the DCGAN search space with a fixed seed (batch
  32, epochs = the horizon): nobody chose them for how their curves end.

Configurations whose fields differ only in label targets train together as one stack of members
(`gans.trainer.MEMBER_FIELDS`): the first two share one vectorized model of 2 x SEEDS members.
This module describes the runs and trains a group of them into run folders; `benchmarks/gpu_sitting.py`
(a GPU sitting) and `study.run --preset folklore` call it, and `study.sitting` imports the folders.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from gans.config import TrainConfig
from gans.metric_keys import HEADLINE, resample_key
from gans.run_folder import RunFolder, save_png
from gans.trainer import MEMBER_FIELDS, Trainer
from study.baselines import BASELINES
from study.space import SeededTrial, default_space, sample_config

LIMIT = 960
# Past 1,000 epochs, so that "1000 goes weird" can show. Measured on an H100 (docs/results/gpu-dcgan-cats):
# 5 seeds x 1,200 epochs with evaluations took 420 s, one device command's worth; 1,500 would not
# fit a sitting, and every configuration of one study must share one horizon.
HORIZON = 1200
EVAL_EVERY = 25
SEEDS = 5
RANDOM_CONTROLS = 2
SAMPLER_SEED = 0
BATCH_SIZE = 32
RESCORE_SETS = 2
"""fresh sample sets scoring each run's last epoch again (the evaluation's own noise)"""
NUM_SAMPLES = 1000
"""generated images per evaluation (the held-out photos are 1,040 of the 2,000 cats)"""
GRID_EPOCHS = (100, 300, 550, 1000, 1500)
"""epochs whose sample grids are kept (the report shows them beside real photos)"""
COST_MARGIN = 1.04
"""predicted seconds of a group over steps x step time + evaluations x evaluation time: the grids, the
per-epoch sync, the Python between steps. Measured on an H100 (docs/results/gpu-dcgan-cats): sitting 1
took 420 s where these products gave 422 s, sitting 2 (with the diagnostics) 436 s where they gave 427.
A group of 5 runs fills most of the ~500 s a 540 s budget leaves after start-up, measurements and
packing, so a margin of 10 % would refuse groups that fit."""
GRID_SIZE = 16
"""samples per kept grid: 25 runs x 6 grids must stay a few MB in a sitting's runs.tar.gz"""
PAPER = {"lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "nz": 100, "ngf": 64, "ndf": 64, "real_label": 1.0,
         "fake_label": 0.0, "augment": "none"}


@dataclass(frozen=True)
class Configuration:
    name: str
    config: TrainConfig
    """the configuration with seed 0; its runs differ only in the seed"""
    source: str
    changed: str = ""
    """what was changed from the source, and why"""

    def runs(self, seeds: int) -> list[TrainConfig]:
        return [self.config.replace(seed=s) for s in range(1, seeds + 1)]


def base_config(data: str, **overrides) -> TrainConfig:
    """What every run of the experiment shares (a horizon run of the DCGAN on `data`)."""
    fields = {"model": "dcgan", "data": data, "image_size": 64, "limit": LIMIT, "batch_size": BATCH_SIZE,
              "epochs": HORIZON, "eval_every": EVAL_EVERY, "metrics": "fid,kid", "extractor": "inception",
              "reference": "heldout", "num_samples": NUM_SAMPLES, "num_real": 0, "kid_subset_size": NUM_SAMPLES,
              **PAPER}
    fields.update(overrides)
    return TrainConfig(**fields)


def configurations(base: TrainConfig, randoms: int = RANDOM_CONTROLS,
                   fixed: Mapping[str, Any] | None = None) -> list[Configuration]:
    """The experiment's configurations in the order a sitting runs them; `fixed` (fields the user set
    on the command line) overrides every configuration's own values, and says so."""
    def baseline(name: str, **why) -> TrainConfig:
        params = {k: v for k, v in BASELINES[name].params.items() if k not in ("epochs", "batch_size")}
        return base.replace(**params)

    smooth = BASELINES["dcgan-smooth-600"]
    out = [
        Configuration("dcgan-smooth-600", baseline("dcgan-smooth-600"), smooth.source,
                      f"batch 32 instead of {smooth.params['batch_size']} (the folklore's batch); "
                      f"{base.epochs} epochs instead of 600 (the horizon)"),
        Configuration("dcgan-paper", base, "DCGAN paper defaults (Radford et al. 2016)",
                      f"{base.epochs} epochs (the horizon)"),
        Configuration("dcgan-jitter-blur-54", baseline("dcgan-jitter-blur-54"),
                      BASELINES["dcgan-jitter-blur-54"].source, f"{base.epochs} epochs instead of 54 (the horizon)"),
    ]
    space = {k: p for k, p in default_space("dcgan").items() if k not in ("epochs", "batch_size")}
    rng = random.Random(SAMPLER_SEED)
    for i in range(randoms):
        out.append(Configuration(f"random-{i}", sample_config(SeededTrial(rng), space, base),
                                 f"drawn from the DCGAN search space (sampler seed {SAMPLER_SEED})",
                                 f"batch 32 and {base.epochs} epochs fixed"))
    if fixed:
        note = "; set on the command line: " + ", ".join(f"{k}={v}" for k, v in fixed.items())
        out = [dataclasses.replace(c, config=c.config.replace(**fixed), changed=c.changed + note) for c in out]
    return out


def together(configs: list[Configuration]) -> list[list[Configuration]]:
    """Consecutive configurations that may train as one stack (equal but for `MEMBER_FIELDS`)."""
    groups: list[list[Configuration]] = []
    for c in configs:
        if groups and _shared(groups[-1][0].config) == _shared(c.config):
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


def _shared(config: TrainConfig) -> TrainConfig:
    return dataclasses.replace(config, **{f: getattr(TrainConfig(), f) for f in MEMBER_FIELDS})


# ---------------------------------------------------------------- training the runs


def group_cost(group: list[Configuration], seeds: int, step_s: float, eval_s: float, steps_per_epoch: int) -> float:
    """Predicted seconds to train `group` together: `step_s` per step of all its members, `eval_s`
    per evaluation of one run."""
    c = group[0].config
    evals = (c.epochs // c.eval_every + (c.epochs % c.eval_every != 0) if c.eval_every else 1) + RESCORE_SETS
    return COST_MARGIN * (c.epochs * steps_per_epoch * step_s + evals * len(group) * seeds * eval_s)


def extractor_identity(evaluator) -> dict[str, Any]:
    """What a run's metrics were computed with: the extractor's registered name, kind and weights hash."""
    ext = getattr(evaluator, "extractor", None)
    return {"extractor": {"name": ext.name, "kind": ext.kind, "sha256": ext.sha256}} if ext is not None else {}


def rescore(trainer: Trainer, member: int) -> list[dict[str, Any]]:
    """The last epoch's generator scored again on `RESCORE_SETS` fresh sample sets (seeds 1, 2, ...),
    as `study.confirm` does: records `{epoch, fid_resample_k, kid_resample_k}`, how far two evaluations
    of one model lie apart (the verdict's evaluation noise)."""
    out = []
    for k in range(1, RESCORE_SETS + 1):
        values = trainer.evaluator(trainer, member=member, seed=k)
        out.append({"epoch": trainer.epoch, **{resample_key(m, k): values[m] for m in HEADLINE if m in values}})
    return out


def run_folder(runs_dir: Path, conf: Configuration, seed: int) -> Path:
    return runs_dir / conf.name / f"seed-{seed}"


def train_group(group: list[Configuration], seeds: int, data, evaluator, runs_dir: Path, *, graph: bool | None = None,
                out_of_time: Callable[[], bool] = lambda: False, log: Callable[[str], None] = print,
                device: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Train every seed of the group's configurations together, one folder per run in `runs_dir`
    (`gans.train`'s layout: config.json, records.json, samples/ at `GRID_EPOCHS` and the last epoch,
    plus run.json: configuration, seed, whether it completed). Stops early, leaving the group
    incomplete, when `out_of_time()` says so. Returns the group's timing."""
    members, folders, confs = [], [], []
    for conf in group:
        for c in conf.runs(seeds):
            members.append(c)
            confs.append(conf)
            folders.append(RunFolder(run_folder(runs_dir, conf, c.seed), c))
    trainer = Trainer(members, data, evaluator=evaluator, graph=graph, grid_size=GRID_SIZE)
    t0 = time.perf_counter()
    train_s = eval_s = 0.0
    complete = True
    for records in trainer.run_members():
        for i, r in records.items():
            folders[i].records.append(r)
            if r.get("evaluated") and (r["epoch"] in GRID_EPOCHS or r["epoch"] == members[i].epochs):
                save_png(trainer.grid(i), folders[i].out / "samples" / f"epoch_{r['epoch']:04d}.png")
        first = next(iter(records.values()))
        train_s += first["seconds"]
        eval_s += sum(r.get("eval_seconds", 0.0) for r in records.values())
        if first["epoch"] % 100 == 0:
            fids = [r["fid"] for r in records.values() if "fid" in r]
            log(f"  epoch {first['epoch']}: {first['images_per_s'] * first['members']:.0f} images/s in all"
                + (f", FID {min(fids):.1f}-{max(fids):.1f}" if fids else ""))
        if out_of_time():
            complete = first["epoch"] >= members[0].epochs
            if not complete:
                log(f"  out of time at epoch {first['epoch']}: the group is incomplete")
            break
    rescores = {i: rescore(trainer, i) for i in trainer.alive} if complete and evaluator is not None else {}
    wall = time.perf_counter() - t0
    for i, (conf, folder) in enumerate(zip(confs, folders)):
        # Records and the kept grids only: no checkpoints, no plots (the report draws from the records).
        (folder.out / "records.json").write_text(json.dumps(folder.records))
        meta = {"configuration": conf.name, "source": conf.source, "changed": conf.changed, "seed": members[i].seed,
                "complete": complete and i in trainer.alive, "diverged": trainer.diverged.get(i, ""),
                "trained_with": [c.name for c in group], "members": len(members), "graph_state": trainer.graph_state,
                "device": dict(device or {"name": str(trainer.device)}), **extractor_identity(evaluator),
                "rescores": rescores.get(i, [])}
        (folder.out / "run.json").write_text(json.dumps(meta, indent=1))
    return {"configurations": [c.name for c in group], "members": len(members), "complete": complete,
            "wall_s": wall, "train_s": train_s, "eval_s": eval_s, "graph_state": trainer.graph_state}
