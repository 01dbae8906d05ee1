"""Reading a study's MLflow runs back: runs with their tags and params, metric histories and the
step-tracked sample images, as pandas frames. Read-only: nothing here creates or changes a run.

The report builder and `study.confirm` use it; both go through an explicit `MlflowClient`, like
`tracking.mlflow_log` does for writing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from gans.config import TrainConfig, field_types
from gans.errors import UserError
from tracking.mlflow_log import (ROLE, STUDY_NAME, TRIAL_NUMBER, metric_name, quote_filter, quiet, record_key,
                                 resolve_tracking_uri)
from tracking.urls import sqlite_path

# `client.log_image(key=..., step=...)` names its files `images/<key>+step+<N>+timestamp+<ms>+<uuid>.png`;
# MLflow before 3.x used '%' as the separator, so both are read.
_IMAGE_FILE = re.compile(r"^(?P<key>.+?)[+%]step[+%](?P<step>\d+)[+%]timestamp[+%](?P<ts>\d+)[+%][^+%/]+\.png$")


def open_client(tracking_uri: str, flag: str = "--tracking-uri"):
    """An MlflowClient for an existing store. Unlike `mlflow_log.connect`, a missing SQLite file is a
    user error rather than a new, empty database."""
    uri = resolve_tracking_uri(tracking_uri)
    path = sqlite_path(uri)
    if path is not None:
        if not path.is_file():
            raise UserError(f"{flag} {tracking_uri}: no MLflow database at {path}")
    quiet()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def typed_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """Config fields among `params` (MLflow params: strings), converted to their `TrainConfig` types; read
    back only for trials of versions that did not store their config (`tracking.stores.trial_config`)."""
    types = field_types(TrainConfig)
    out = {}
    for k, v in params.items():
        if k not in types or v is None or (isinstance(v, float) and v != v):
            continue
        t = types[k]
        try:
            out[k] = int(float(v)) if t is int else t(v)
        except (TypeError, ValueError):
            out[k] = v
    return out


def study_experiment_id(client, study_name: str, hint: str | None = None) -> str | None:
    """Id of the study's experiment (named after the study), preferring the id the study recorded."""
    if hint:
        try:
            exp = client.get_experiment(hint)
            if exp is not None and exp.name == study_name:
                return exp.experiment_id
        except Exception:  # a recorded id from another tracking store: fall back to the name
            pass
    exp = client.get_experiment_by_name(study_name)
    return exp.experiment_id if exp is not None else None


def study_runs(client, experiment_id: str, study_name: str, role: str | None = None):
    """The study's runs as a DataFrame, one row per run: run_id, run_name, status, start_time,
    end_time, every tag (as `tag.<key>`), every param (as `param.<name>`) and the latest value of every metric
    (as `metric.<record key>`: `metric.fid` for `quality/fid`), oldest first."""
    import pandas as pd

    flt = f"tags.{STUDY_NAME} = '{quote_filter(study_name)}'"
    if role is not None:
        flt += f" and tags.{ROLE} = '{quote_filter(role)}'"
    rows, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=flt, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        for run in page:
            row = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status,
                   "start_time": run.info.start_time, "end_time": run.info.end_time}
            row.update({f"tag.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
            row.update({f"param.{k}": v for k, v in run.data.params.items()})
            row.update({f"metric.{record_key(k)}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows, columns=None if rows else ["run_id", "run_name", "status", "start_time", "end_time"])
    if f"tag.{TRIAL_NUMBER}" in frame:
        frame[f"tag.{TRIAL_NUMBER}"] = pd.to_numeric(frame[f"tag.{TRIAL_NUMBER}"], errors="coerce").astype("Int64")
    return frame


def metric_histories(client, run_ids: Iterable[str], keys: Iterable[str]):
    """Long DataFrame (run_id, key, step, value) of every logged value of the record keys `keys` in
    `run_ids` (logged under their MLflow names, `tracking.mlflow_log.metric_name`), sorted by run, key
    and step. A metric logged twice at one step keeps its latest value."""
    import pandas as pd

    rows = []
    for run_id in run_ids:
        logged = client.get_run(run_id).data.metrics  # one request, instead of one per name tried
        for key in keys:
            if metric_name(key) not in logged:
                continue
            for m in client.get_metric_history(run_id, metric_name(key)):
                rows.append((run_id, key, int(m.step), float(m.value), int(m.timestamp)))
    frame = pd.DataFrame(rows, columns=["run_id", "key", "step", "value", "timestamp"])
    frame = (frame.sort_values(["run_id", "key", "step", "timestamp"])
             .drop_duplicates(["run_id", "key", "step"], keep="last")
             .drop(columns="timestamp").reset_index(drop=True))
    return frame


def image_steps(client, run_id: str, key: str = "samples") -> dict[int, str]:
    """Step -> artifact path of the full-size images logged with `log_image(key=key, step=...)`
    (the latest one when a step holds several)."""
    found: dict[int, tuple[int, str]] = {}
    for f in client.list_artifacts(run_id, "images"):
        m = _IMAGE_FILE.match(Path(f.path).name)
        if m is None or m["key"].replace("~", "/") != key:
            continue
        step, ts = int(m["step"]), int(m["ts"])
        if step not in found or ts > found[step][0]:
            found[step] = (ts, f.path)
    return {step: path for step, (_, path) in sorted(found.items())}


def download(client, run_id: str, path: str, dst: str | Path) -> Path:
    """Download one artifact of a run into folder `dst`; returns the local file."""
    import os

    Path(dst).mkdir(parents=True, exist_ok=True)
    # MLflow draws a progress bar per download on stderr; one file per call needs none.
    before = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = before
