"""MLflow logging of studies and trainings: one experiment per study, one parent run per study, one
nested run per training, with per-epoch metrics (`step=epoch`), sample grids and the best checkpoint.

Everything goes through an explicit `MlflowClient(tracking_uri)` (no fluent API, no global active
run), so a trial, a confirmation run or a worker process logs the same way. The only things this
module knows about a training are its config and the records `gans.trainer.Trainer.run()` yields.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from gans.errors import first_line
from gans.metric_keys import DIAGNOSTICS, EVAL_CONSTANTS, METRICS, QUALITY_KEYS, RESAMPLE, STUDY_METRICS
from tracking.urls import SQLITE, absolute_sqlite, safe_name, sqlite_path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

# Tag keys, shared with the study layer and the report builder.
ROLE, STUDY_NAME, TRIAL_NUMBER, OPTUNA_STATE, BASELINE, REASON = (
    "role", "study_name", "trial_number", "optuna_state", "baseline", "reason")
# A horizon run's group (selected | baseline | random) and, for a random control, which one (random-<i>).
GROUP, SOURCE = "group", "source"

# Outcome of a training -> MLflow run status (a pruned trial was stopped on purpose: KILLED).
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED", "running": "RUNNING"}

# `members`: how many runs trained together that epoch, tagged once as `members_together`.
NOT_METRICS = {"epoch", "evaluated", "members"}

# MLflow's chart view groups metrics into sections by the prefix before "/", in alphabetical order:
# the sample-quality metrics (the study metric among them; beside a held-out reference also against
# the training images, and the real-versus-real floor) first, then the diagnostics (logged beside a
# held-out reference only), the training curves, then speed. The evaluation's keys: `gans.metric_keys`.
METRIC_GROUPS = {
    "quality": QUALITY_KEYS,
    "diagnostics": DIAGNOSTICS,
    "train": ("loss_d", "loss_g", "d_real", "d_fake"),
    "speed": ("seconds", "images_per_s", "eval_seconds"),
}


def metric_name(key: str) -> str:
    """The MLflow name of a record key: `fid` -> `quality/fid` (also `fid_resample_1`), `loss_d` ->
    `train/loss_d`, `seconds` -> `speed/seconds`, `overfit_rt` -> `diagnostics/overfit_rt`; anything
    else unchanged."""
    base = key.split(RESAMPLE)[0]
    for group, names in METRIC_GROUPS.items():
        if base in names:
            return f"{group}/{key}"
    return key


def record_key(name: str) -> str:
    """The record key of an MLflow metric name: `quality/fid` -> `fid`; a name outside the sections unchanged."""
    group, _, key = name.partition("/")
    return key if key and group in METRIC_GROUPS else name


def quiet() -> None:
    """Silence MLflow's INFO chatter (database creation, migrations)."""
    import mlflow  # noqa: F401  (importing it configures its loggers, which would undo the levels below)

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def resolve_tracking_uri(uri: str | None) -> str:
    """`uri` (default `sqlite:///mlflow.db`) with a relative SQLite path made absolute, so that
    worker processes and printed commands point at the same database from any folder."""
    uri = uri or DEFAULT_TRACKING_URI
    if uri.startswith(SQLITE):
        return absolute_sqlite(uri)
    if "://" not in uri:  # a bare folder is MLflow's file store
        return Path(uri).resolve().as_uri()
    return uri


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite-tracked experiment live beside the database (`mlruns/<experiment>`);
    other stores (servers, file stores) choose their own location."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return None
    return (db.parent / "mlruns" / safe_name(experiment)).resolve().as_uri()


def connect(tracking_uri: str | None):
    """An MlflowClient for `tracking_uri` (the database is created on first use)."""
    quiet()
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(SQLITE):
        sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


# The experiment's kind: a model-training experiment, not a GenAI one. MLflow 3.x's UIs before the
# GenAI/Model-training switch open an experiment by it; 3.17's goes by `workflowType` (see `ui_url`).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}

# The trials table, as a saved view of the experiment's runs table. MLflow 3.17's UI keeps no column
# choice in its URLs, only in the browser or in a "saved view": an experiment tag
# `mlflow.sharedViewState.<key>` whose JSON envelope {name, createdAt, state} holds the table's search
# facets (`searchFilter`, `orderByKey`, `orderByAsc`, ...) and UI state (`selectedColumns`, ...), opened
# by `?viewStateShareKey=<key>` and listed under the table's saved views. Sorted by a metric (any key
# but the start time) the table lists every run flat, so the trials are rows of their own instead of
# children of the collapsed study run; runs without the metric (the study's own run) come last.
SHARED_VIEW = "mlflow.sharedViewState."
VIEW_COLUMNS = (*(f"metrics.`{metric_name(k)}`" for m in STUDY_METRICS for k in METRICS[m].outputs),
                f"tags.`{OPTUNA_STATE}`", "tags.`best_epoch`", f"tags.`{ROLE}`")


def view_key(metric: str) -> str:
    """The saved view listing the runs by `metric`, best first."""
    return f"trials-by-{metric}"


def view_tags(created_ms: int = 0) -> dict[str, str]:
    """The experiment tags of the saved views `view_key(m)` for every study metric `m`."""
    import json

    tags = {}
    for m in STUDY_METRICS:
        state = {"searchFilter": "", "orderByKey": f"metrics.`{metric_name(m)}`", "orderByAsc": METRICS[m].minimize,
                 "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [],
                 "modelVersionFilter": "All Runs", "selectedColumns": list(VIEW_COLUMNS)}
        tags[SHARED_VIEW + view_key(m)] = json.dumps(
            {"name": f"trials by {METRICS[m].label}", "createdAt": created_ms, "state": json.dumps(state)})
    return tags


def ui_url(server: str, experiment_id: str, metric: str = "fid") -> str:
    """The experiment's runs table in the MLflow UI at `server`: every run a row, best `metric` first,
    with the quality columns (the saved view `view_key(metric)`), in the model-training layout. MLflow
    3.x's UI picks its GenAI or model-training layout from `workflowType` (else from what the browser
    last chose, GenAI at first), not from the experiment's kind tag."""
    view = view_key(metric if metric in STUDY_METRICS else STUDY_METRICS[0])
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={view}&workflowType=machine_learning"


def ensure_experiment(client, name: str) -> str:
    """Id of the experiment `name` (a model-training experiment with the saved views of `ui_url`),
    created (or restored from the trash) when needed."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri, name),
                                            tags={**EXPERIMENT_KIND, **view_tags(int(time.time() * 1000))})
        except Exception:  # another machine's command created it a moment ago
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    views = view_tags(int(time.time() * 1000))
    for key, value in {**EXPERIMENT_KIND, **views}.items():
        if key in views and key in exp.tags and _view_state(exp.tags[key]) == _view_state(value):
            continue  # the same view, saved earlier
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def _view_state(tag: str):
    import json

    try:
        return json.loads(tag).get("state")
    except (ValueError, AttributeError):
        return None


def attach_report(client, run_id: str, folder: str | Path, note: str) -> None:
    """The study's answer on its parent run: `note` as the run's description (the note the UI shows)
    and the report's files as the run's artifacts under `report/`."""
    set_tags(client, run_id, {"mlflow.note.content": note})
    client.log_artifacts(run_id, str(folder), artifact_path="report")


STUDY_RUN_SETTLE_S = 1.0


def study_run(client, experiment_id: str, study_name: str, tags: Mapping[str, Any]) -> str:
    """Id of the study's parent run: the existing one when a study is resumed, else a new one."""
    from mlflow.entities import RunStatus

    def oldest():
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.{ROLE} = 'study' and tags.{STUDY_NAME} = '{quote_filter(study_name)}'",
            max_results=1, order_by=["attributes.start_time ASC", "attributes.run_id ASC"],
        )
        return found[0].info.run_id if found else None

    run_id = oldest()
    if run_id is None:
        mine = client.create_run(experiment_id, run_name=study_name,
                                 tags={ROLE: "study", STUDY_NAME: study_name}).info.run_id
        # Commands on two machines started together: keep one parent run. Start times come from the
        # clients' clocks, so a run created later can be "older"; look once both have landed.
        time.sleep(STUDY_RUN_SETTLE_S)
        run_id = oldest()
        if run_id != mine:
            client.delete_run(mine)
    client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
    set_tags(client, run_id, tags)
    return run_id


def quote_filter(s: str) -> str:
    """`s` as a quoted value inside an MLflow search filter string."""
    return s.replace("\\", "\\\\").replace("'", "\\'")


def set_tags(client, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    if tags:
        client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def finish(client, run_id: str, state: str) -> None:
    """End a run with the status matching `state` (complete | pruned | failed)."""
    client.set_terminated(run_id, STATUS[state])


def log_metrics(client, run_id: str, values: Mapping[str, float], step: int) -> None:
    from mlflow.entities import Metric

    ts = int(time.time() * 1000)
    metrics = [Metric(k, float(v), ts, step) for k, v in values.items()]
    if metrics:
        client.log_batch(run_id, metrics=metrics)


def record_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of an epoch record that change over a run (losses, D outputs, speed,
    metrics), under their MLflow names."""
    return {metric_name(k): float(v) for k, v in record.items()
            if k not in NOT_METRICS and k not in EVAL_CONSTANTS and isinstance(v, (int, float))
            and not isinstance(v, bool)}


BATCH = 1000
"""values per `log_batch` request: MLflow's limit"""


class TrackingError(RuntimeError):
    """Writing to the tracking store failed (disk full, server gone): the training's run is lost,
    not the study."""


def _tracking_call(method):
    @functools.wraps(method)
    def wrapper(self, *a, **kw):
        try:
            return method(self, *a, **kw)
        except Exception as e:  # MlflowException, OSError (ENOSPC), requests errors
            raise TrackingError(f"tracking store: {type(e).__name__}: {first_line(e)}"[:500]) from e

    return wrapper


def copy_history(client, src_run: str, dst_run: str, last_step: int) -> None:
    """Copy `src_run`'s metric histories up to `last_step` into `dst_run` (a resumed training goes on
    where the stopped one left off)."""
    from mlflow.entities import Metric

    for key in client.get_run(src_run).data.metrics:
        history = [m for m in client.get_metric_history(src_run, key) if m.step <= last_step]
        for i in range(0, len(history), 500):  # log_batch takes at most 1000 entries
            client.log_batch(dst_run, metrics=[Metric(m.key, m.value, m.timestamp, m.step) for m in history[i:i + 500]])


def fail_run(client, run_id: str, reason: str, tags: Mapping[str, Any] | None = None) -> None:
    """End a run left RUNNING by a process that died, as FAILED with `reason`."""
    set_tags(client, run_id, {**(tags or {}), REASON: reason[:4000]})
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, STATUS["failed"])


class RunLogger:
    """One training logged as one MLflow run (nested under `parent_run_id` when given)."""

    def __init__(self, client, experiment_id: str, run_name: str, *, parent_run_id: str | None = None,
                 tags: Mapping[str, Any] | None = None, system_metrics: bool = False):
        all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        self.client = client
        self.run_id: str = client.create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id
        self._constants: dict[str, Any] = {}
        self._system = system_metrics and self._start_system_metrics()

    def _start_system_metrics(self) -> bool:
        """MLflow's own monitor (CPU, memory, and GPU utilisation and memory where pynvml sees one) logs
        `system/...` metrics for this run every $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds (10). Its
        public switch is the fluent API's, so the run is also made this process's active run until
        `finish`."""
        import mlflow

        if mlflow.active_run() is not None:  # one per process: a worker trains one run at a time
            return False
        mlflow.set_tracking_uri(self.client.tracking_uri)
        mlflow.start_run(run_id=self.run_id, log_system_metrics=True)
        return True

    @_tracking_call
    def log_config(self, config) -> None:
        """Every config field as a param, by its own name."""
        from mlflow.entities import Param

        params = [Param(k, str(v)) for k, v in dataclasses.asdict(config).items()]
        self.client.log_batch(self.run_id, params=params)

    @_tracking_call
    def log_record(self, record: Mapping[str, Any]) -> None:
        """One epoch record's numbers as metrics at `step=epoch` (NaN/inf are kept: MLflow stores them);
        its evaluation constants (sample counts, feature dimension) as tags, once."""
        log_metrics(self.client, self.run_id, record_metrics(record), step=int(record["epoch"]))
        constants = {k: record[k] for k in EVAL_CONSTANTS if k in record}
        if constants and constants != self._constants:
            set_tags(self.client, self.run_id, constants)
            self._constants = constants

    @_tracking_call
    def log_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Many epoch records at once (a run trained elsewhere, imported): the same metrics and tags as
        `log_record` for each, in requests of at most `BATCH` values instead of one request per epoch."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        metrics = [Metric(k, v, ts, int(r["epoch"])) for r in records for k, v in record_metrics(r).items()]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH])
        for r in records:
            constants = {k: r[k] for k in EVAL_CONSTANTS if k in r}
            if constants and constants != self._constants:
                set_tags(self.client, self.run_id, constants)
                self._constants = constants

    @_tracking_call
    def log_grid(self, grid_uint8, epoch: int) -> None:
        """A uint8 C x H x W sample grid as the step-tracked image `samples` at `step=epoch`."""
        arr = grid_uint8.permute(1, 2, 0).cpu().numpy()
        self.client.log_image(self.run_id, arr, key="samples", step=int(epoch))

    @_tracking_call
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    @_tracking_call
    def set_tags(self, tags: Mapping[str, Any]) -> None:
        set_tags(self.client, self.run_id, tags)

    @_tracking_call
    def finish(self, state: str, reason: str | None = None, tags: Mapping[str, Any] | None = None) -> None:
        """End the run: status from `state` (complete | pruned | failed), reason and extra tags."""
        extra = dict(tags or {})
        if reason:
            extra[REASON] = reason[:4000]
        self.set_tags(extra)
        if self._system:
            import mlflow

            self._system = False
            mlflow.end_run(STATUS[state])  # stops the monitor after its last sample
        finish(self.client, self.run_id, state)

