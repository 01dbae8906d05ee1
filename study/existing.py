"""Opening a study that already exists, for reading or for adding runs to it (`study.confirm`,
`reports.build`): unlike `study.run`, a missing storage file or study name is the user's mistake and
must not silently create an empty one. Also where a trial's run and config are read back (`trial_run`, `trial_config`).
"""

from __future__ import annotations

from pathlib import Path

from gans.config import TrainConfig, UserError
from gans.urls import SQLITE, mask_url, sqlite_path


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
    import optuna

    from study.engine import open_storage, quiet_libraries, resolve_storage

    quiet_libraries()
    url = resolve_storage(storage, 1)
    check_store_exists(url, "--storage", "Optuna storage")
    backend = open_storage(url)
    names = optuna.get_all_study_names(backend)
    if study_name not in names:
        held = ", ".join(sorted(names)) or "none"
        raise UserError(f"--study-name {study_name}: no such study in {mask_url(url)} (studies there: {held})")
    return optuna.load_study(study_name=study_name, storage=backend), url


# The trial user attribute holding the whole TrainConfig a trial trains, as JSON (typed values), set by
# `study.objective.Objective` before training. The Optuna study is the source of truth for a trial's
# config; the MLflow params are the same values as strings, for the UI.
CONFIG = "config"


def trial_run(trial, runs):
    """The row of `runs` (a `tracking.query.study_runs` frame) holding `trial`'s MLflow run: the run id
    the trial recorded, else (trials of early versions) the latest trial run of its number; None when
    there is none."""
    from tracking.mlflow_log import ROLE, TRIAL_NUMBER

    run_id = trial.user_attrs.get("mlflow_run_id")
    rows = runs[runs["run_id"] == run_id] if run_id and "run_id" in runs else runs.iloc[0:0]
    if rows.empty and {f"tag.{ROLE}", f"tag.{TRIAL_NUMBER}"} <= set(runs.columns):
        rows = runs[(runs[f"tag.{ROLE}"] == "trial") & (runs[f"tag.{TRIAL_NUMBER}"] == trial.number)]
    return rows.iloc[-1] if not rows.empty else None


def trial_config(trial, run) -> TrainConfig | None:
    """The config `trial` (an Optuna trial) trained: its `CONFIG` attribute. Trials of versions before
    that attribute have only the params of their MLflow run `run` (a `trial_run` row; strings) with
    Optuna's sampled values over them. None when neither is there (a trial that never started)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if CONFIG in trial.user_attrs:
        return TrainConfig(**{k: v for k, v in trial.user_attrs[CONFIG].items() if k in fields})
    if run is None:
        return None
    from tracking.query import typed_config

    params = {k[len("param."):]: v for k, v in run.items() if k.startswith("param.") and isinstance(v, str)}
    return TrainConfig(**{**typed_config(params), **trial.params})
