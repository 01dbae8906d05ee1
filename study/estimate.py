"""How long a study will take, measured before it is spent: a few optimizer steps and one small
evaluation of a mid-space configuration on this device, scaled by the work the study plans (search
budgets, evaluations, horizon runs) and divided among its workers.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from gans.config import TrainConfig

# Above this many hours on a machine without a GPU the console names the `cpu` preset up front.
CPU_WARN_HOURS = float(os.environ.get("GAN_STUDY_CPU_WARN_HOURS", 3))
MEASURE_STEPS = 12
MEASURE_SAMPLES = 200


@dataclass(frozen=True)
class Costs:
    """Measured on this device: seconds per training epoch and per evaluation."""

    epoch_s: float
    eval_s: float
    device: str


@dataclass(frozen=True)
class Plan:
    """The work a study still has to do."""

    trials: int
    mean_budget: float
    """mean epoch budget of a trial (the middle of the searched range)"""
    eval_every: int
    horizon_runs: int
    horizon: int
    horizon_eval_every: int
    rescores: int = 4
    workers: int = 1


def seconds(plan: Plan, costs: Costs) -> tuple[float, float]:
    """(search seconds, horizon-run seconds) on `plan.workers` parallel workers; the search assumes
    no trial is pruned, so it is an upper bound."""
    def run(epochs: float, every: int, extra: int = 0) -> float:
        evals = (epochs // every if every else 0) + 1 + extra
        return epochs * costs.epoch_s + evals * costs.eval_s

    k = max(1, plan.workers)
    search = plan.trials * run(plan.mean_budget, plan.eval_every) / k
    horizon = plan.horizon_runs * run(plan.horizon, plan.horizon_eval_every, plan.rescores) / min(
        k, max(1, plan.horizon_runs))
    return search, horizon


def middle(space: dict, base: TrainConfig) -> TrainConfig:
    """`base` with each searched field at the middle of its range or list of choices."""
    values = {}
    for name, p in space.items():
        if p.kind == "categorical":
            values[name] = p.choices[len(p.choices) // 2]
        elif p.kind in ("int", "float"):
            mid = math.sqrt(p.low * p.high) if p.log else (p.low + p.high) / 2
            values[name] = int(round(mid)) if p.kind == "int" else mid
    return base.replace(**values)


def measure(config: TrainConfig, threads: int = 0, members: int = 1) -> Costs:
    """Time `MEASURE_STEPS` training steps (after two warm-up steps) and one evaluation of
    `MEASURE_SAMPLES` images, scaled to an epoch and to the config's sample count. `members`: the
    step of that many seeds trained together (`gans.trainer`); the evaluation is one run's."""
    import torch

    from gans.metrics import build_evaluator
    from gans.trainer import GRAPH_WARMUP, Trainer, load_train_data

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        small = config.replace(num_samples=min(config.num_samples, MEASURE_SAMPLES))
        trainer = Trainer([small.replace(seed=small.seed + i) for i in range(members)], load_train_data(small),
                          evaluator=build_evaluator(small))
        for _ in range(2 + (GRAPH_WARMUP if trainer.use_graph else 0)):  # a CUDA graph is captured in these
            trainer.train_step()
        sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        for _ in range(MEASURE_STEPS):
            trainer.train_step()
        sync()
        epoch_s = (time.perf_counter() - t0) / MEASURE_STEPS * trainer.steps_per_epoch
        eval_s = 0.0
        if trainer.evaluator is not None:
            trainer.evaluator(trainer)  # the real side's statistics: once per study, not per evaluation
            t0 = time.perf_counter()
            trainer.evaluator(trainer)
            eval_s = (time.perf_counter() - t0) * config.num_samples / small.num_samples
        return Costs(epoch_s, eval_s, trainer.device.type)
    finally:
        torch.set_num_threads(before)


def hours(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
