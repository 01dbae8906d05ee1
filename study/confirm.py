"""`python -m study.confirm`: horizon runs. Retrains a study's top configurations, every seed
baseline of the study and a few random configurations of its space with fresh seeds, all to the same
horizon (epoch budget) on one evaluation grid, without pruning: the runs the epochs verdict is read from.

A search trial's best epoch can never exceed its sampled budget, so budget-truncated curves cannot
say where a GAN's metric bottoms out. A constant-learning-rate run to H epochs contains every
shorter run of the same seed, so horizon runs see the whole curve. Each run is an MLflow run of the
study tagged `role=confirm`, `horizon=H`, `trial_number=<source trial>`, `baseline`, `seed` and
`group`: `selected` (a top trial), `baseline` (a seed baseline's trial) or `random`;
after training, the generators of its best and last epochs are scored again on fresh sample sets
(`<metric>_resample_<k>`) so the report knows the evaluation's own noise. `--seeds N` is the number
of finished runs each configuration should hold at that horizon: running the command again
continues where it stopped. Lucic et al. (2018) found GAN scores to vary substantially with the
seed alone, hence several seeds per configuration.

The top configurations are the search's best by the metric at the end of their budgets: a
configuration that degrades late is never among them. `--random R` adds unselected controls:
`random-0` ... `random-<R-1>` (tagged `source`, no trial), drawn from the study's searched space
(its trials' distributions, `study.space.trial_space`) by `random.Random(RANDOM_SEED)` over its first
trial's config, the same on every call, so a rerun finds and continues them.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gans.cli import Parser, main_guard
from gans.config import TrainConfig
from gans.errors import UserError
from gans.trainer import worker_threads
from study.objective import train_and_log, train_members_and_log
from study.pinned_extractor import pin
from study.space import random_configs, trial_space
from tracking import mlflow_log as ml
from tracking import query
from tracking.stores import (GROUP_BASELINE, GROUP_RANDOM, GROUP_SELECTED, load_existing_study, trial_config,
                             trial_run)
from tracking.urls import mask_url, safe_name

ROLE_CONFIRM = "confirm"
COUNTED = ("FINISHED", "FAILED")
HORIZON = "horizon"
MIN_HORIZON = 1000
DEFAULT_EVAL_EVERY = 25
RESCORE_SETS = 2
# Seeds trained together by default, at most. Memory grows by one model and its Adam state per member
# (a 64 px DCGAN: ~100 MB; the MLP GAN: ~10 MB), far inside any machine this runs on; throughput
# stops growing first: on an H100 a DCGAN step gave 18.5k images/s at 5 members, 19.5k at 10 and
# 20.3k at 15 (docs/results/gpu-dcgan-cats/sitting-1/timing.md).
MAX_MEMBERS = 16
RANDOM_CONTROLS = 2
RANDOM_SEED = 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m study.confirm", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--study-name", required=True, help="the study whose top trials and baselines are rerun")
    p.add_argument("--storage", metavar="URL", help="Optuna storage of the study (default: sqlite:///optuna.db)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: the one the study recorded, else sqlite:///mlflow.db)")
    p.add_argument("--top", type=int, default=3, help="how many of the best completed trials to rerun (default: 3)")
    p.add_argument("--random", type=int, default=RANDOM_CONTROLS, metavar="R",
                   help=f"random configurations of the study's space rerun as unselected controls (default: "
                        f"{RANDOM_CONTROLS})")
    p.add_argument("--seeds", type=int, default=3,
                   help="finished horizon runs each configuration should hold (default: 3)")
    p.add_argument("--epochs", type=int, metavar="H",
                   help=f"the horizon: epochs of every run (default: the study's, at least {MIN_HORIZON} and at "
                        "least the longest budget its space allowed)")
    p.add_argument("--eval-every", type=int, metavar="E",
                   help=f"evaluation grid in epochs, the same for every run (default: the study's, else "
                        f"{DEFAULT_EVAL_EVERY})")
    p.add_argument("--rescore-sets", type=int, default=RESCORE_SETS,
                   help=f"fresh sample sets scoring the best and last epochs again (default: {RESCORE_SETS})")
    p.add_argument("--workers", type=int, default=1,
                   help="configurations trained at once, in separate processes (default: 1)")
    p.add_argument("--batch-seeds", type=int, metavar="K",
                   help=f"seeds of one configuration trained together as one vectorized model (default: all of "
                        f"them, at most {MAX_MEMBERS}; 1 = one run at a time)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="working folder of the runs' best checkpoints (default: the study's)")
    p.add_argument("--device", help="override the trials' --device (auto | cpu | cuda | cuda:N)")
    return p.parse_args(argv)


def fresh_seeds(used: set[int], n: int) -> list[int]:
    """The `n` smallest non-negative seeds not in `used`."""
    out, s = [], 0
    while len(out) < n:
        if s not in used:
            out.append(s)
        s += 1
    return out


def top_trials(study, k: int):
    """The `k` best completed trials, best first."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction.name == "MAXIMIZE"
    return sorted(done, key=lambda t: (-t.value if reverse else t.value, t.number))[:k]


def default_horizon(study) -> int:
    """The horizon a study's runs go to: the one it recorded, else at least `MIN_HORIZON` epochs and
    at least the longest epoch budget any of its trials had."""
    if "horizon" in study.user_attrs:
        return int(study.user_attrs["horizon"])
    budgets = [int(t.params.get("epochs", 0)) for t in study.get_trials(deepcopy=False)]
    return max([MIN_HORIZON, *budgets])


@dataclass(frozen=True)
class Job:
    """One horizon run to train."""

    number: int | None
    """the source trial; None for a random control"""
    baseline: str
    config: TrainConfig
    horizon: int
    group: str = GROUP_SELECTED
    """one of `tracking.stores.GROUPS`"""
    control: str = ""
    """a random control's name, `random-<i>`"""

    @property
    def source(self) -> str:
        """the configuration, in words: `trial N` or `random-<i>`"""
        return self.control or f"trial {self.number}"

    @property
    def name(self) -> str:
        return f"horizon-{self.control or f'trial-{self.number:03d}'}-seed-{self.config.seed}"


def source_trials(study, top: int) -> list:
    """The trials whose configurations are rerun: the `top` best completed ones, then every seed baseline."""
    sources = list(top_trials(study, top))
    numbers = {t.number for t in sources}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("baseline") and t.number not in numbers and "retry_of" not in t.user_attrs:
            sources.append(t)
            numbers.add(t.number)
    return sources


def random_controls(study, runs, n: int, log: Callable[[str], None]) -> list[tuple[str, TrainConfig]]:
    """`n` (name, config) drawn from the study's searched space but its epoch budget, over its first
    trial's config: `random-0`, `random-1`, ..., the same on every call and for every larger `n`."""
    if n <= 0:
        return []
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    space = {k: p for k, p in trial_space(trials).items() if k != "epochs"}
    base = next((c for t in trials if (c := trial_config(t, trial_run(t, runs))) is not None), None)
    if not space or base is None:
        log(f"random controls: the study {'searched no space' if base else 'recorded no config'}; none run")
        return []
    return [(f"random-{i}", c) for i, c in enumerate(random_configs(space, base, n, RANDOM_SEED))]


def seeded_jobs(job: Job, runs, seeds: int, log: Callable[[str], None]) -> list[Job]:
    """`job`'s runs still to train: `seeds` minus the runs of its configuration that already
    finished at its horizon, each with a seed no run of that configuration has used."""
    import pandas as pd

    def tag(key, dtype=object):
        return runs.get(f"tag.{key}", pd.Series(index=runs.index, dtype=dtype))

    same = tag(ml.SOURCE) == job.control if job.control else tag(ml.TRIAL_NUMBER, "Int64") == job.number
    mine = runs[((tag(ml.ROLE) == ROLE_CONFIRM) & same).fillna(False).astype(bool)]
    used = {job.config.seed} | {int(s) for s in mine.get("tag.seed", pd.Series(dtype=object)).dropna()}
    here = mine[tag(HORIZON).loc[mine.index].astype(str) == str(job.horizon)] if not mine.empty else mine
    have = int(here["status"].isin(COUNTED).sum()) if not here.empty else 0
    todo = max(0, seeds - have)
    what = job.source + (f" (baseline {job.baseline})" if job.baseline else "")
    log(f"{what}: {have} horizon runs to {job.horizon} epochs, {todo} to go")
    return [dataclasses.replace(job, config=job.config.replace(seed=s)) for s in fresh_seeds(used, todo)]


def plan(study, runs, *, top: int, seeds: int, horizon: int, eval_every: int, device: str | None,
         tracking_uri: str, log: Callable[[str], None], randoms: int = 0) -> list[Job]:
    """The runs still to train, by `seeded_jobs`, of each source: the `top` best completed trials
    (group `selected`), every seed baseline of the study (`baseline`, also when among the top: it is
    rerun whatever its rank), then `randoms` random configurations of its space (`random`)."""
    sources = source_trials(study, top)
    if not sources:
        raise UserError(f"--study-name {study.study_name}: the study has no completed trial and no baseline to rerun")

    def at_horizon(config: TrainConfig) -> TrainConfig:
        return config.replace(epochs=horizon, eval_every=eval_every, **({"device": device} if device else {}))

    jobs = []
    for t in sources:
        config = trial_config(t, trial_run(t, runs))
        if config is None:
            log(f"trial {t.number}: no config recorded in the study or in {mask_url(tracking_uri)}; skipped")
            continue
        baseline = t.user_attrs.get("baseline") or ""
        group = GROUP_BASELINE if baseline else GROUP_SELECTED
        jobs += seeded_jobs(Job(t.number, baseline, at_horizon(config), horizon, group), runs, seeds, log)
    for name, config in random_controls(study, runs, randoms, log):
        jobs += seeded_jobs(Job(None, "", at_horizon(config), horizon, GROUP_RANDOM, name), runs, seeds, log)
    return jobs


@dataclass(frozen=True)
class Where:
    """What every horizon run of one study logs to (picklable for worker processes)."""

    study_name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str | None
    metric: str
    checkpoints: str
    rescore_sets: int
    threads: int = 0
    extractor: dict | None = None
    """the study's extractor (`study.pinned_extractor`): a run scoring with other weights refuses"""


def _logger(where: Where, job: Job):
    client = ml.connect(where.tracking_uri)
    source = {ml.SOURCE: job.control} if job.control else {ml.TRIAL_NUMBER: job.number}
    return ml.RunLogger(client, where.experiment_id, job.name, parent_run_id=where.parent_run_id,
                        tags={ml.ROLE: ROLE_CONFIRM, ml.STUDY_NAME: where.study_name, **source,
                              ml.BASELINE: job.baseline, ml.GROUP: job.group, "seed": job.config.seed,
                              "metric": where.metric, HORIZON: job.horizon})


def _checkpoint(where: Where, job: Job) -> Path:
    return Path(where.checkpoints) / safe_name(where.study_name) / job.name / "best.pt"


def _line(where: Where, outcome) -> str:
    if outcome.state == "complete":
        return (f"final {where.metric} {outcome.value:.4g}, best {outcome.best_value:.4g} at epoch "
                f"{outcome.best_epoch}")
    return f"{outcome.state}: {outcome.reason}"


def train_jobs(where: Where, jobs: list[Job]) -> list[tuple[Job, str, str, float]]:
    """Train horizon runs of one configuration, together when there are several; per run (job,
    outcome line, state, seconds of the whole group)."""
    t0 = time.perf_counter()
    if where.threads:
        torch.set_num_threads(where.threads)
    loggers = [_logger(where, job) for job in jobs]
    ckpts = [_checkpoint(where, job) for job in jobs]
    if len(jobs) == 1:
        outcomes = [train_and_log(jobs[0].config, metric=where.metric, logger=loggers[0], checkpoint=ckpts[0],
                                  rescore_sets=where.rescore_sets, study_extractor=where.extractor)]
    else:
        outcomes = train_members_and_log([j.config for j in jobs], metric=where.metric, loggers=loggers,
                                         checkpoints=ckpts, rescore_sets=where.rescore_sets,
                                         study_extractor=where.extractor)
    took = time.perf_counter() - t0
    for ckpt in ckpts:
        if ckpt.parent.is_dir() and not any(ckpt.parent.iterdir()):
            ckpt.parent.rmdir()
    return [(job, _line(where, o), o.state, took) for job, o in zip(jobs, outcomes)]


def batches(jobs: list[Job], batch_seeds: int | None) -> list[list[Job]]:
    """The jobs in groups trained together: runs of one configuration, at most `batch_seeds`
    (default `MAX_MEMBERS`) per group."""
    k = batch_seeds or MAX_MEMBERS
    by_config: dict[str, list[Job]] = {}
    for job in jobs:
        by_config.setdefault(job.source, []).append(job)
    return [runs[i:i + k] for runs in by_config.values() for i in range(0, len(runs), k)]


def _pool_job(arg):
    return train_jobs(*arg)


def run_horizon(study_name: str, storage: str | None = None, tracking_uri: str | None = None, *, top: int = 3,
                seeds: int = 3, epochs: int | None = None, eval_every: int | None = None, workers: int = 1,
                device: str | None = None, checkpoints: str | None = None, rescore_sets: int = RESCORE_SETS,
                batch_seeds: int | None = None, randoms: int = RANDOM_CONTROLS,
                log: Callable[[str], None] | None = None) -> int:
    """Train the horizon runs the study still lacks; returns how many were trained."""
    for flag_name, v, low in (("--top", top, 0), ("--seeds", seeds, 0), ("--workers", workers, 0),
                              ("--random", randoms, -1),
                              ("--rescore-sets", rescore_sets, -1), ("--batch-seeds", batch_seeds or 1, 0)):
        if v <= low:
            raise UserError(f"{flag_name}: must be > {low}, got {v}")
    log = log or (lambda line: print(line, file=sys.stderr))

    study, storage = load_existing_study(study_name, storage)
    attrs = study.user_attrs
    horizon = epochs or default_horizon(study)
    grid = eval_every or int(attrs.get("horizon_eval_every", DEFAULT_EVAL_EVERY))
    if horizon <= 0 or grid <= 0:
        raise UserError(f"--epochs/--eval-every: must be > 0, got {horizon} and {grid}")
    client, experiment_id, runs, parent = _study_runs(study, study_name, tracking_uri)
    jobs = plan(study, runs, top=top, seeds=seeds, horizon=horizon, eval_every=grid, device=device,
                tracking_uri=client.tracking_uri, log=log, randoms=randoms)
    workers = min(workers, len(batches(jobs, batch_seeds))) or 1
    where = Where(study_name, client.tracking_uri, experiment_id, parent, attrs.get("metric", "fid"),
                  str(Path(checkpoints or attrs.get("checkpoints") or "checkpoints").resolve()), rescore_sets,
                  threads=worker_threads(workers))
    if jobs:
        jobs, where = _pin_extractor(study, client, parent, jobs, where)
    _train_batches(where, batches(jobs, batch_seeds), workers, len(jobs), log)
    return len(jobs)


def _study_runs(study, study_name: str, tracking_uri: str | None):
    """The study's tracking client, MLflow experiment id, runs, and parent run (None when the study
    recorded it in another tracking store: the runs are then logged unnested)."""
    attrs = study.user_attrs
    client = query.open_client(tracking_uri or attrs.get("tracking_uri") or ml.DEFAULT_TRACKING_URI)
    experiment_id = query.study_experiment_id(client, study_name, attrs.get("mlflow_experiment_id"))
    if experiment_id is None:
        raise UserError(f"--tracking-uri {mask_url(client.tracking_uri)}: no MLflow experiment named {study_name!r}")
    runs = query.study_runs(client, experiment_id, study_name)
    parent = attrs.get("mlflow_parent_run_id")
    if parent is not None and parent not in set(runs["run_id"]):
        parent = None
    return client, experiment_id, runs, parent


def _pin_extractor(study, client, parent: str | None, jobs: list, where: Where) -> tuple[list, Where]:
    """`jobs` and `where` with the study's extractor, fetched or located once before any worker starts:
    one set of weights."""
    # The trials' logged --domain-weights is a path on the machine that ran them.
    pinned = pin(study, client, parent, jobs[0].config.replace(domain_weights=""))
    jobs = [dataclasses.replace(j, config=j.config.replace(domain_weights=pinned.domain_weights)) for j in jobs]
    return jobs, dataclasses.replace(where, extractor=study.user_attrs.get("extractor"))


def _train_batches(where: Where, groups: list, workers: int, total: int, log: Callable[[str], None]) -> None:
    """Train the groups of jobs, in this process or in a pool of `workers`, logging each run as it ends."""
    done = 0

    def report(results) -> None:
        nonlocal done
        for job, line, _, took in results:
            done += 1
            together = f", {len(results)} seeds together" if len(results) > 1 else ""
            log(f"[{done}/{total}] horizon run {job.source} seed {job.config.seed}: {line} "
                f"({took:.0f} s{together})")

    if workers == 1:
        for group in groups:
            report(train_jobs(where, group))
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            for results in pool.imap_unordered(_pool_job, [(where, group) for group in groups]):
                report(results)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_horizon(args.study_name, args.storage, args.tracking_uri, top=args.top, seeds=args.seeds,
                epochs=args.epochs, eval_every=args.eval_every, workers=args.workers, device=args.device,
                checkpoints=args.checkpoints, rescore_sets=args.rescore_sets, batch_seeds=args.batch_seeds,
                randoms=args.random)
    _, storage = load_existing_study(args.study_name, args.storage)
    print(f"horizon runs are in MLflow experiment {args.study_name!r}; report: python -m reports.build "
          f"--study-name {args.study_name} --storage {mask_url(storage)} --out report-{args.study_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
