"""The stores' reading rules, shared by the study (`study.*`) and the report (`reports.*`): Optuna
storages from URLs, opening a study that already exists, and what a trial recorded (its config, its
MLflow run, why it failed, the best of its reported values, the group of a horizon run).

Opening an existing study, for reading or for adding runs to it (`study.confirm`, `reports.build`),
differs from `study.run`'s: a missing storage file or study name is the user's mistake and must not
silently create an empty one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Callable, Mapping

from gans.config import TrainConfig
from gans.errors import UserError, first_line
from tracking.mlflow_log import ROLE, TRIAL_NUMBER, quiet
from tracking.query import typed_config
from tracking.urls import SQLITE, absolute_sqlite, mask_text, mask_url, sqlite_path

# RDB storages' heartbeats: a trial whose process has not written one for GRACE_S seconds is taken for
# dead (`study.engine`).
HEARTBEAT_S = int(os.environ.get("GAN_STUDY_HEARTBEAT_S", 10))
GRACE_S = int(os.environ.get("GAN_STUDY_GRACE_S", 60))

DEFAULT_STORAGE = "sqlite:///optuna.db"
# Optuna advises against SQLite for parallel writers; its journal file (with file locks) is safe
# for several processes on one machine and needs no server.
DEFAULT_PARALLEL_STORAGE = "optuna.journal"

# The trial user attribute holding the whole TrainConfig a trial trains, as JSON (typed values), set by
# `study.objective.Objective` before training. The Optuna study is the source of truth for a trial's
# config; the MLflow params are the same values as strings, for the UI.
CONFIG = "config"
# The user attribute holding why a trial failed for good; a FAIL without it (Ctrl-C, a crash) is retried.
FAIL_REASON = "fail_reason"

# The config fields a horizon run sets itself rather than taking from its source trial: the rest identify
# its configuration (`reports.stores.load`, `study.sitting`).
HORIZON_OWN_FIELDS = ("epochs", "eval_every", "seed", "device")

# A horizon run's group (tag `group`, `study.confirm`).
GROUP_SELECTED, GROUP_BASELINE, GROUP_RANDOM = "selected", "baseline", "random"
GROUPS = (GROUP_SELECTED, GROUP_BASELINE, GROUP_RANDOM)


# ---------------------------------------------------------------- storages


def resolve_storage(url: str | None, workers: int) -> str:
    """The storage URL to use: the default for the worker count, relative SQLite paths and journal
    files made absolute (workers and printed commands then agree from any folder)."""
    url = url or (DEFAULT_STORAGE if workers == 1 else DEFAULT_PARALLEL_STORAGE)
    if url.startswith(SQLITE):
        return absolute_sqlite(url)
    if "://" not in url:
        return str(Path(url).resolve())
    return url


def is_journal_file(url: str) -> bool:
    return "://" not in url


def open_storage(url: str, on_stale: Callable | None = None, heartbeat_s: int = HEARTBEAT_S,
                 grace_s: int = GRACE_S):
    """An Optuna storage for `url`: an SQLAlchemy URL (sqlite, postgresql, mysql) with heartbeats
    (`on_stale(study, trial)` is called for each trial found dead), `redis://` (journal on Redis),
    or a file path (journal file, as the `optuna` CLI guesses it)."""
    import optuna  # heavy (about a second); importers that only name storages do not pay for it

    try:
        if url.startswith("redis://") or url.startswith("rediss://"):
            from optuna.storages.journal import JournalRedisBackend

            return optuna.storages.JournalStorage(JournalRedisBackend(url))
        if is_journal_file(url):
            from optuna.storages.journal import JournalFileBackend

            Path(url).parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(url))
        import sqlalchemy.exc

        if url.startswith(SQLITE):
            sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                                                      heartbeat_stale_trial_callback=on_stale)
            except (ImportError, sqlalchemy.exc.ArgumentError):  # a missing driver, a malformed URL: no race
                raise
            except Exception:
                # Commands started together on a fresh database race to create its tables; the
                # loser finds them made on a second look.
                if attempt == 2:
                    raise
                time.sleep(1.0 + random.random())
    except ImportError as e:
        raise UserError(f"--storage {mask_url(url)}: a driver is missing ({e}); pip install it") from None
    except Exception as e:  # sqlalchemy ArgumentError/OperationalError, redis errors
        raise UserError(mask_text(f"--storage {url}: cannot open ({type(e).__name__}: {first_line(e)})", url)) from None


def quiet_libraries() -> None:
    """Optuna's per-trial INFO/WARNING lines would tear through the progress bars; the study prints
    its own line per trial. MLflow's database set-up chatter goes too."""
    import optuna  # heavy; see open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    quiet()


def check_store_exists(url: str, flag: str, what: str) -> None:
    """A user error naming `flag` when `url` points at a SQLite or journal file that does not exist."""
    if url.startswith(SQLITE):
        path = sqlite_path(url)
    elif "://" not in url:
        path = Path(url)
    else:
        return
    if not path.is_file():
        raise UserError(f"{flag} {url}: no {what} at {path}")


def load_existing_study(study_name: str, storage: str | None):
    """(the Optuna study `study_name`, its resolved storage URL); `storage` defaults to
    `sqlite:///optuna.db` as in `study.run`."""
    import optuna  # heavy; see open_storage

    quiet_libraries()
    url = resolve_storage(storage, 1)
    check_store_exists(url, "--storage", "Optuna storage")
    backend = open_storage(url)
    names = optuna.get_all_study_names(backend)
    if study_name not in names:
        held = ", ".join(sorted(names)) or "none"
        raise UserError(f"--study-name {study_name}: no such study in {mask_url(url)} (studies there: {held})")
    return optuna.load_study(study_name=study_name, storage=backend), url


# ---------------------------------------------------------------- what a trial recorded


def trial_run(trial, runs):
    """The row of `runs` (a `tracking.query.study_runs` frame) holding `trial`'s MLflow run: the run id
    the trial recorded, else (trials of early versions) the latest trial run of its number; None when
    there is none."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    rows = runs[runs["run_id"] == run_id] if run_id and "run_id" in runs else runs.iloc[0:0]
    if rows.empty and {f"tag.{ROLE}", f"tag.{TRIAL_NUMBER}"} <= set(runs.columns):
        rows = runs[(runs[f"tag.{ROLE}"] == "trial") & (runs[f"tag.{TRIAL_NUMBER}"] == trial.number)]
    return rows.iloc[-1] if not rows.empty else None


def trial_config(trial, run) -> TrainConfig | None:
    """The config `trial` (an Optuna trial) trained: its `CONFIG` attribute. Trials of versions before
    that attribute have only the params of their MLflow run `run` (a `trial_run` row; strings) with
    Optuna's sampled values over them. None when neither is there (a trial that never started)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if CONFIG in trial.user_attrs:
        return TrainConfig(**{k: v for k, v in trial.user_attrs[CONFIG].items() if k in fields})
    if run is None:
        return None
    params = {k[len("param."):]: v for k, v in run.items() if k.startswith("param.") and isinstance(v, str)}
    return TrainConfig(**{**typed_config(params), **trial.params})


def best_of(values: Mapping[int, float]) -> tuple[int, float] | None:
    """(epoch, value) of the lowest finite value among a trial's evaluated epochs (the earliest on
    ties; every study metric is lower-is-better), or None. What a trial found best is derived from its
    reported values, never stored beside them."""
    finite = sorted((epoch, v) for epoch, v in values.items() if v is not None and math.isfinite(v))
    return min(finite, key=lambda ev: ev[1]) if finite else None
