"""How long a study will take, measured before it is spent: a few optimizer steps and one small
evaluation of a mid-space configuration on this device, scaled by the work the study plans (search
budgets, evaluations, horizon runs) and divided among its workers. A measurement is kept in the
cache per machine (CPU model, torch version, device, threads) and configuration, so running the same
command again measures nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass

import torch

from gans.cache import cache_dir, data_key, read_json, write_json
from gans.config import TrainConfig
from gans.metrics import build_evaluator
from gans.trainer import GRAPH_WARMUP, Trainer, load_train_data, resolve_device

# Above this many hours on a machine without a GPU the console names the `cpu` preset up front.
CPU_WARN_HOURS = float(os.environ.get("GAN_STUDY_CPU_WARN_HOURS", 3))
MEASURE_STEPS = 12
# The steps are timed in this many blocks and the evaluation this many times, and the fastest counts:
# a single timing caught a neighbour's burst once (6.2 s per evaluation on one run, 42 s on the next).
MEASURE_REPEATS = 3
MEASURE_SAMPLES = 200
# Config fields that do not change the cost of a step or an evaluation (the rest key the cache).
COST_FREE = ("seed", "epochs", "eval_every", "lr_g", "lr_d", "beta1", "real_label", "fake_label", "data_root")


@dataclass(frozen=True)
class Costs:
    """Measured on this device: seconds per training epoch and per evaluation."""

    epoch_s: float
    eval_s: float
    device: str
    cached: bool = False
    """read from the cache: measured by an earlier command on this machine"""


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
    no trial is pruned, so it is an upper bound. Horizon runs are alike, so they go in rounds of
    `workers`: 5 on 2 workers take 3 rounds."""
    def run(epochs: float, every: int, extra: int = 0) -> float:
        # The trainer evaluates every `every` epochs and at the last epoch (once when it is on the grid).
        evals = (math.ceil(epochs / every) if every else 1) + extra
        return epochs * costs.epoch_s + evals * costs.eval_s

    k = max(1, plan.workers)
    search = plan.trials * run(plan.mean_budget, plan.eval_every) / k
    horizon = math.ceil(plan.horizon_runs / k) * run(plan.horizon, plan.horizon_eval_every, plan.rescores)
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
    """This machine's costs for `config` (see `measure_now`), from the cache when an earlier command
    measured them."""
    path = cache_dir() / "device-costs" / f"{cost_key(config, threads, members)}.json"
    known = read_json(path)
    if isinstance(known, dict) and {"epoch_s", "eval_s", "device"} <= set(known):
        return Costs(float(known["epoch_s"]), float(known["eval_s"]), str(known["device"]), cached=True)
    costs = measure_now(config, threads, members)
    write_json(path, {k: v for k, v in dataclasses.asdict(costs).items() if k != "cached"})
    return costs


def cost_key(config: TrainConfig, threads: int, members: int) -> str:
    """A file name for the costs of `config` on this machine: a hash of the machine (CPU model and
    count, torch version, the device the config resolves to) and of the config fields that cost time."""
    device = resolve_device(config.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in COST_FREE}
    fields["data"] = data_key(config.data)
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "device": str(device),
               "gpu": gpu, "threads": threads, "members": members}
    text = json.dumps({"machine": machine, "config": fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_now(config: TrainConfig, threads: int = 0, members: int = 1) -> Costs:
    """Time `MEASURE_STEPS` training steps (after two warm-up steps) and one evaluation of
    `MEASURE_SAMPLES` images, scaled to an epoch and to the config's sample count. `members`: the
    step of that many seeds trained together (`gans.trainer`); the evaluation is one run's."""
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
        block = max(1, MEASURE_STEPS // MEASURE_REPEATS)
        step_s = fastest(lambda: [trainer.train_step() for _ in range(block)], sync) / block
        eval_s = 0.0
        if trainer.evaluator is not None:
            trainer.evaluator(trainer)  # the real side's statistics: once per study, not per evaluation
            eval_s = fastest(lambda: trainer.evaluator(trainer), sync) * config.num_samples / small.num_samples
        return Costs(step_s * trainer.steps_per_epoch, eval_s, trainer.device.type)
    finally:
        torch.set_num_threads(before)


def fastest(work, sync, repeats: int = MEASURE_REPEATS) -> float:
    """The shortest of `repeats` timings of `work()` (each ended by `sync()`), in seconds."""
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def hours(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
