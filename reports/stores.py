"""Everything the report knows, read from the two stores into pandas: the Optuna study (trials,
params, user attributes, intermediate values) and the study's MLflow runs (full configs, metric
histories, sample images, confirmation runs). Read-only; the only other input is the data set
itself, read for the grid of real images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gans.config import TrainConfig
from gans.data import load_images, to_unit_range, to_uint8
from gans.errors import UserError
from gans.metric_keys import DIAGNOSTICS, HEADLINE, SAMPLE_COUNTS, base_key
from tracking import query
from tracking.mlflow_log import (BASELINE, GROUP, REASON, ROLE, SOURCE, TRIAL_NUMBER,
                                 resolve_tracking_uri)
from tracking.query import typed_config
from tracking.stores import (FAIL_REASON, GROUP_BASELINE, GROUP_RANDOM, GROUP_SELECTED, GROUPS, HORIZON_OWN_FIELDS,
                             best_of, load_existing_study, trial_config, trial_run)
from tracking.urls import mask_url

CURVE_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")
EVAL_COLUMNS = tuple(f"eval_{k}" for k in SAMPLE_COUNTS)
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


@dataclass
class StudyData:
    study: Any
    """the optuna.Study (for the importance evaluators)"""
    study_name: str
    storage: str
    tracking_uri: str
    metric: str
    minimize: bool
    trials: Any
    """DataFrame, one row per Optuna trial: number, state, value, best_epoch, best_value (derived from
    its reported values), epochs_done (the last epoch of its MLflow loss curves), last_epoch, last_value,
    baseline, reason, duration_s, run_id, run_status, the sample counts of its last evaluation
    (`eval_<key>` for each of `gans.metric_keys.SAMPLE_COUNTS`) and every config field (the
    trial's typed config, `tracking.stores.trial_config`)"""
    history: Any
    """long DataFrame of the trial runs' MLflow metrics: number, run_id, key, step, value"""
    confirm: Any
    """DataFrame, one row per horizon run (role=confirm): run_id, source (trial number, or `random-<i>`
    for a random control), baseline, group (selected | baseline | random, `horizon_group`), horizon,
    steps_per_epoch, seed, status, reason, the sample counts of its evaluations (eval_num_fake, ...)
    and the source trial's config fields (a random control's: its own params) but those a horizon run
    sets itself (epochs, eval_every, seed, device)"""
    confirm_history: Any
    """long DataFrame of the horizon runs' metric histories (fid, kid, is, their re-scorings
    `<metric>_resample_<k>` and, against the training images, `<metric>_train`; beside a held-out
    reference also `DIAGNOSTICS`): run_id, key, step, value"""
    searched: list[str] = field(default_factory=list)
    client: Any = None
    experiment_id: str | None = None
    extractors: dict[str, str] = field(default_factory=dict)
    """name -> weights SHA-256 of the extractor the runs were scored with (at most one; empty for runs
    logged before extractors were recorded)"""

    def trial_row(self, number: int):
        return self.trials.loc[self.trials["number"] == number].iloc[0]


def _counts(run) -> dict[str, Any]:
    """The sample counts a run's evaluations used (tags, `tracking.mlflow_log` sets them once), as `eval_<key>`."""
    return {f"eval_{k}": run.get(f"tag.{k}") if run is not None and pd.notna(run.get(f"tag.{k}")) else None
            for k in SAMPLE_COUNTS}


def one_extractor(runs, study_name: str) -> dict[str, str]:
    """{name: SHA-256} of the extractor that scored `runs` (a DataFrame of MLflow runs); a UserError when
    they were scored with more than one (also by kind, for runs that logged no hash)."""
    def column(key):
        return runs.get(key, pd.Series(index=runs.index, dtype=object))

    found: dict[tuple[str, str], int] = {}
    for name, sha in zip(column("tag.extractor_name"), column("tag.extractor_sha256")):
        if isinstance(sha, str):
            found[(name, sha)] = found.get((name, sha), 0) + 1
    kinds = {k for k in column("param.extractor") if isinstance(k, str)}
    if len(found) > 1 or len(kinds) > 1:
        what = (", ".join(f"{n} ({s[:12]}…, {k} runs)" for (n, s), k in sorted(found.items()))
                if len(found) > 1 else " and ".join(sorted(kinds)))
        raise UserError(f"--study-name {study_name}: its runs were scored with different extractors ({what}); their "
                        "values are on different scales and one report cannot compare them")
    return {name: sha for name, sha in found}


def horizon_group(group: str, baseline: str) -> str:
    """A horizon run's group from its `group` and `baseline` tags: the `group` tag; for runs logged
    before it, `random` for a folklore sitting's `random-<i>` configuration, `baseline` for a
    baseline's trial, else `selected` (a top trial)."""
    if group in GROUPS:
        return group
    return GROUP_RANDOM if baseline.startswith("random-") else GROUP_BASELINE if baseline else GROUP_SELECTED


def load(study_name: str, storage: str | None = None, tracking_uri: str | None = None) -> StudyData:
    """Read the study and its MLflow runs. The tracking URI defaults to the one the study recorded."""
    study, url = load_existing_study(study_name, storage)
    metric = study.user_attrs.get("metric", "fid")
    uri, client, experiment_id = _open_tracking(study, study_name, tracking_uri)
    runs = query.study_runs(client, experiment_id, study_name)
    role = runs.get(f"tag.{ROLE}", pd.Series(index=runs.index, dtype=object))
    extractors = one_extractor(runs[role.isin(["trial", "confirm"])], study_name)
    trials, searched, configs = _trials(study, runs[role == "trial"])
    history = _trial_history(client, trials, metric)
    confirm_runs = runs[role == "confirm"]
    confirm = _confirm(confirm_runs, configs)
    confirm_history = _confirm_history(client, confirm_runs, confirm)
    return StudyData(study=study, study_name=study_name, storage=url, tracking_uri=uri, metric=metric,
                     minimize=study.direction.name == "MINIMIZE", trials=trials, history=history, confirm=confirm,
                     confirm_history=confirm_history, searched=searched, client=client,
                     experiment_id=experiment_id, extractors=extractors)


def _open_tracking(study, study_name: str, tracking_uri: str | None) -> tuple[str, Any, str]:
    """The tracking URI (given, else the study's), its client, and the study's MLflow experiment id."""
    attrs = study.user_attrs
    if tracking_uri is None and "***" in str(attrs.get("tracking_uri", "")):
        raise UserError(f"--tracking-uri: study {study_name!r} recorded {attrs['tracking_uri']} without its "
                        "password; pass the tracking URI")
    uri = resolve_tracking_uri(tracking_uri or attrs.get("tracking_uri"))
    client = query.open_client(uri)
    experiment_id = query.study_experiment_id(client, study_name, attrs.get("mlflow_experiment_id"))
    if experiment_id is None:
        raise UserError(f"--tracking-uri {mask_url(uri)}: no MLflow experiment named {study_name!r}; "
                        "pass the tracking URI the study logged to")
    return uri, client, experiment_id


def _trials(study, trial_runs) -> tuple[Any, list[str], dict[int, TrainConfig | None]]:
    """The trials frame (`StudyData.trials` but epochs_done), the searched params in order of appearance,
    and every trial's config by number."""
    rows, searched, configs = [], [], {}
    for t in study.get_trials(deepcopy=False):
        for p in t.params:
            if p not in searched:
                searched.append(p)
        run = trial_run(t, trial_runs)
        config = configs[t.number] = trial_config(t, run)
        rows.append(_trial_row(t, run, config))
    columns = ["number", "state", "value", "best_epoch", "best_value", "last_epoch", "last_value",
               "baseline", "reason", "duration_s", "run_id", "run_status", *EVAL_COLUMNS, *CONFIG_FIELDS]
    trials = pd.DataFrame(rows, columns=columns)
    for col in ("value", "best_value", "last_value", "duration_s", *EVAL_COLUMNS):
        trials[col] = pd.to_numeric(trials[col], errors="coerce").astype(float)
    return trials, searched, configs


def _trial_row(t, run, config: TrainConfig | None) -> dict[str, Any]:
    """One trial's row of the trials frame, from its Optuna trial, its MLflow run (or None) and config."""
    steps = sorted(t.intermediate_values)
    last_epoch = steps[-1] if steps else None
    best_epoch, best_value = best_of(t.intermediate_values) or (None, None)
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "best_epoch": best_epoch,
        "best_value": best_value,
        "last_epoch": last_epoch,
        "last_value": t.intermediate_values[last_epoch] if steps else None,
        "baseline": t.user_attrs.get("baseline") or "",
        "reason": t.user_attrs.get("prune_reason") or t.user_attrs.get(FAIL_REASON) or "",
        "duration_s": t.duration.total_seconds() if t.duration is not None else None,
        "run_id": run["run_id"] if run is not None else t.user_attrs.get("mlflow_run_id"),
        "run_status": run["status"] if run is not None else None,
        **_counts(run),
        **{k: getattr(config, k) if config is not None else None for k in CONFIG_FIELDS},
    }


def _trial_history(client, trials, metric: str):
    """The trial runs' metric histories (`StudyData.history`); adds epochs_done to `trials`."""
    keys = [metric, *[k for k in HEADLINE if k != metric], *CURVE_KEYS]
    run_ids = [r for r in trials["run_id"] if isinstance(r, str)]
    history = query.metric_histories(client, run_ids, keys)
    number_of = dict(zip(trials["run_id"], trials["number"]))
    history.insert(0, "number", history["run_id"].map(number_of).astype("Int64"))
    trained = history[history["key"].isin(CURVE_KEYS)].groupby("run_id")["step"].max()
    trials.insert(trials.columns.get_loc("last_epoch"), "epochs_done", trials["run_id"].map(trained))
    for col in ("best_epoch", "epochs_done", "last_epoch"):
        trials[col] = pd.to_numeric(trials[col], errors="coerce").astype("Int64")
    return history




def _confirm(confirm_runs, configs: dict[int, TrainConfig | None]):
    """The horizon runs frame (`StudyData.confirm`)."""
    rows = [_confirm_row(r, configs) for _, r in confirm_runs.iterrows()]
    confirm = pd.DataFrame(rows, columns=["run_id", "source", "baseline", "group", "horizon", "steps_per_epoch",
                                          "seed", "status", "reason", *EVAL_COLUMNS,
                                          *(k for k in CONFIG_FIELDS if k not in HORIZON_OWN_FIELDS)])
    for col in EVAL_COLUMNS:
        confirm[col] = pd.to_numeric(confirm[col], errors="coerce").astype(float)
    return confirm


def _confirm_row(r, configs: dict[int, TrainConfig | None]) -> dict[str, Any]:
    """One horizon run's row. A horizon run trains its source trial's config to its own horizon and seed
    (`study.confirm.plan`); a random control has no trial: its config is its own params."""
    def tag(key):
        v = r.get(f"tag.{key}")
        return v if isinstance(v, str) else ""

    source = int(r[f"tag.{TRIAL_NUMBER}"]) if pd.notna(r.get(f"tag.{TRIAL_NUMBER}")) else tag(SOURCE) or None
    config = configs.get(source) if not isinstance(source, str) else _run_config(r)
    return {
        "run_id": r["run_id"], "source": source, "baseline": tag(BASELINE),
        "group": horizon_group(tag(GROUP), tag(BASELINE)),
        "horizon": int(tag("horizon")) if tag("horizon") else None,
        "steps_per_epoch": int(tag("steps_per_epoch")) if tag("steps_per_epoch") else None,
        "seed": int(tag("seed")) if tag("seed") else None,
        "status": r["status"], "reason": tag(REASON),
        **_counts(r),
        **{k: getattr(config, k) if config is not None else None
           for k in CONFIG_FIELDS if k not in HORIZON_OWN_FIELDS},
    }


def _confirm_history(client, confirm_runs, confirm):
    """The horizon runs' metric histories (`StudyData.confirm_history`)."""
    # Every quality metric, its re-scorings on fresh sample sets (`fid_resample_1`, ...) and, beside a
    # held-out reference, its value against the training images (`fid_train`), the training images' own
    # FID against the held-out ones (`fid_floor`) and the diagnostics.
    logged = {c[len("metric."):] for c in confirm_runs.columns if c.startswith("metric.")}
    confirm_keys = [k for k in logged if base_key(k) in HEADLINE or k in DIAGNOSTICS]
    return query.metric_histories(client, list(confirm["run_id"]), sorted(confirm_keys))


def _run_config(run) -> TrainConfig | None:
    """The config an MLflow run logged as params (strings), typed; None when it logged none."""
    params = {k[len("param."):]: v for k, v in run.items() if k.startswith("param.") and isinstance(v, str)}
    return TrainConfig(**typed_config(params)) if params else None


def sample_image(data: StudyData, number: int, epoch: int, dst: Path) -> tuple[Path, int] | None:
    """The sample grid trial `number` logged at `epoch` (or the latest one before it), downloaded into
    `dst`; None when the run logged no grid."""
    row = data.trial_row(number)
    if not isinstance(row["run_id"], str):
        return None
    steps = query.image_steps(data.client, row["run_id"], "samples")
    usable = [s for s in steps if s <= epoch] or list(steps)
    if not usable:
        return None
    step = max(usable)
    return query.download(data.client, row["run_id"], steps[step], dst), step


def real_grid(config: dict[str, Any], n: int = 64):
    """A uint8 C x H x W grid of the first `n` training images of a trial's data set, as the trial saw
    them (same size and limit); raises UserError when the data set cannot be read."""
    import warnings

    from torchvision.utils import make_grid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipped N unreadable files" belongs to training, not the report
        images = load_images(config["data"], data_root=config["data_root"], image_size=int(config["image_size"]),
                             limit=min(n, int(config.get("limit") or 0) or n), split="train")
    x = to_unit_range(images.images[:n])
    grid = make_grid(x, nrow=8, padding=2, pad_value=-1)
    return to_uint8(grid[: x.shape[1]])
