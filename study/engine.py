"""Running a study's trials: samplers and pruners by name, Optuna storages from URLs, and the loop
that one process (the CLI itself or one of `--workers K` processes) runs.

Everything a worker needs travels in one picklable `StudySettings`; each process opens its own
storage, MLflow client, sampler and pruner (Optuna persists none of the latter two).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

from gans.config import UserError
from study.objective import Objective, TrialContext, TrialFailed

DEFAULT_STORAGE = "sqlite:///optuna.db"
# Optuna advises against SQLite for parallel writers; its journal file (with file locks) is safe
# for several processes on one machine and needs no server.
DEFAULT_PARALLEL_STORAGE = "optuna.journal"


@dataclass(frozen=True)
class StudySettings:
    study_name: str
    storage: str
    tracking_uri: str
    metric: str
    sampler: str
    pruner: str
    trials: int
    ctx: TrialContext
    sampler_seed: int | None = None
    pruner_startup: int = 5
    min_resource: int = 1
    """first epoch at which a trial reports (Hyperband's minimum resource)"""
    max_resource: int = 1
    """most epochs a trial can run (Hyperband's maximum resource)"""
    workers: int = 1


# ---------------------------------------------------------------- samplers and pruners

SAMPLERS: dict[str, Callable[[int | None], object]] = {}
PRUNERS: dict[str, Callable[[StudySettings], object]] = {}


def register_sampler(name: str, factory: Callable[[int | None], object]) -> None:
    if not name or name in SAMPLERS or not callable(factory):
        raise ValueError(f"sampler {name!r}: empty-named, already registered or not callable")
    SAMPLERS[name] = factory


def register_pruner(name: str, factory: Callable[[StudySettings], object]) -> None:
    if not name or name in PRUNERS or not callable(factory):
        raise ValueError(f"pruner {name!r}: empty-named, already registered or not callable")
    PRUNERS[name] = factory


def _tpe(seed):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(seed):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed):
    import optuna

    return optuna.samplers.GPSampler(seed=seed)


def _median(s: StudySettings):
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup, n_warmup_steps=0)


def _hyperband(s: StudySettings):
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=s.min_resource,
                                          max_resource=max(s.max_resource, s.min_resource), reduction_factor=3)


def _nop(s: StudySettings):
    import optuna

    return optuna.pruners.NopPruner()


register_sampler("tpe", _tpe)
register_sampler("random", _random)
register_sampler("gp", _gp)
register_pruner("median", _median)
register_pruner("hyperband", _hyperband)
register_pruner("none", _nop)


def make_sampler(s: StudySettings, worker: int = 0, trials_so_far: int = 0):
    """The study's sampler for one process. A fixed `--sampler-seed` is mixed with the worker index
    and the number of trials already in the study: parallel workers, or a resumed study, would
    otherwise replay the very same draws."""
    seed = s.sampler_seed
    if seed is not None:
        seed = random.Random(f"{seed}/{worker}/{trials_so_far}").getrandbits(32)
    return SAMPLERS[s.sampler](seed)


# ---------------------------------------------------------------- storages


def resolve_storage(url: str | None, workers: int) -> str:
    """The storage URL to use: the default for the worker count, relative SQLite paths and journal
    files made absolute (workers and printed commands then agree from any folder)."""
    url = url or (DEFAULT_STORAGE if workers == 1 else DEFAULT_PARALLEL_STORAGE)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(unquote(url[len("sqlite:///"):])).resolve())
    if "://" not in url:
        return str(Path(url).resolve())
    return url


def is_journal_file(url: str) -> bool:
    return "://" not in url


def open_storage(url: str):
    """An Optuna storage for `url`: an SQLAlchemy URL (sqlite, postgresql, mysql), `redis://` (journal
    on Redis), or a file path (journal file, as the `optuna` CLI guesses it)."""
    import optuna

    try:
        if url.startswith("redis://") or url.startswith("rediss://"):
            from optuna.storages.journal import JournalRedisBackend

            return optuna.storages.JournalStorage(JournalRedisBackend(url))
        if is_journal_file(url):
            from optuna.storages.journal import JournalFileBackend

            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(url))
        if url.startswith("sqlite:///"):
            Path(unquote(url[len("sqlite:///"):])).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url)
    except ImportError as e:
        raise UserError(f"--storage {url}: a driver is missing ({e}); pip install it") from None
    except Exception as e:  # sqlalchemy ArgumentError/OperationalError, redis errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"--storage {url}: cannot open ({type(e).__name__}: {first})") from None


def quiet_libraries() -> None:
    """Optuna's per-trial INFO/WARNING lines would tear through the progress bars; the study prints
    its own line per trial. MLflow's database set-up chatter goes too."""
    import optuna

    from tracking.mlflow_log import quiet

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    quiet()


class ParentRunLog:
    """Optuna callback: each finished trial's value and the best so far on the study's parent run."""

    def __init__(self, client, run_id: str | None, metric: str):
        self.client, self.run_id, self.metric = client, run_id, metric

    def __call__(self, study, trial) -> None:
        from tracking.mlflow_log import log_metrics

        if self.client is None or self.run_id is None or trial.state.name != "COMPLETE":
            return
        values = {f"trial_{self.metric}": trial.value}
        try:
            values[f"study_best_{self.metric}"] = study.best_value
        except ValueError:  # no completed trial visible yet
            pass
        log_metrics(self.client, self.run_id, values, step=trial.number)


def run_trials(s: StudySettings, n_trials: int, *, worker: int = 0, progress=None) -> None:
    """Run `n_trials` trials of the (existing) study in this process."""
    import optuna

    from tracking.mlflow_log import connect

    quiet_libraries()
    storage = open_storage(s.storage)
    so_far = len(storage.get_all_trials(storage.get_study_id_from_name(s.study_name), deepcopy=False))
    study = optuna.load_study(study_name=s.study_name, storage=storage,
                              sampler=make_sampler(s, worker, so_far), pruner=PRUNERS[s.pruner](s))
    client = connect(s.tracking_uri)
    callbacks = [ParentRunLog(client, s.ctx.parent_run_id, s.metric)]
    if progress is not None:
        callbacks.append(progress)
    study.optimize(Objective(s.ctx, client, progress=progress), n_trials=n_trials,
                   catch=(TrialFailed,), callbacks=callbacks)


def worker_main(s: StudySettings, worker: int, n_trials: int) -> None:
    """Entry point of one `--workers` process."""
    import torch

    # K processes sharing the cores: oversubscribed BLAS threads make every one of them crawl.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, s.workers)))
    try:
        run_trials(s, n_trials, worker=worker)
    except KeyboardInterrupt:
        pass  # the parent reports the interruption once
