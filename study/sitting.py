"""`python -m study.sitting`: import a GPU sitting's runs into a study, as horizon runs of a study
with no search, so that `python -m reports.build` reports on them.

A sitting (`benchmarks/gpu_sitting.py`) trains the folklore's configurations (`study.folklore`) on a
lent GPU without Optuna or MLflow and returns `runs.tar.gz`: `runs/<configuration>/seed-<s>/` with
config.json, records.json, run.json and kept sample grids (`--compact` rewrites it as the
`runs.tar.xz` the repository keeps). This module owns turning those folders into the stores' content:

- the Optuna study (created on first import, attributes as `study.run` sets them) with one COMPLETE
  trial per configuration: its typed config (`tracking.stores.CONFIG`), `baseline` = the configuration's
  name, value = the median over its finished seeds of the FID at the horizon, and the per-epoch median
  as intermediate values;
- the MLflow experiment and parent run of the study, and one `role=confirm` run per seed, tagged as
  `study.confirm` tags its runs, with the config as params, the records as metrics (`step=epoch`,
  through `tracking.mlflow_log`) and the grids as the step-tracked image `samples`. A run the
  sitting did not finish, or that diverged, is FAILED with a reason. The extractor that scored the
  runs (run.json's, else `--extractor-weights`) is tagged on each run and becomes the study's.

Several archives (several sittings) add configurations and seeds to one study; a run already there
(same configuration, seed and horizon) is skipped, so importing an archive twice adds nothing. A
trial's value is set when its configuration is first imported (Optuna keeps finished trials as they
are); seeds added later count in the horizon verdict, which reads the runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import statistics
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import torch
from optuna.trial import TrialState, create_trial
from PIL import Image

from gans.cli import Parser, main_guard
from gans.config import TrainConfig
from gans.errors import UserError, first_line
from gans.extractors import build_extractor
from reports.build import build
from study.confirm import HORIZON, ROLE_CONFIRM, Job
from study.pinned_extractor import identity
from tracking import mlflow_log as ml
from tracking import query
from tracking.stores import (CONFIG, FAIL_REASON, HORIZON_OWN_FIELDS, open_storage, quiet_libraries,
                            resolve_storage)
from tracking.urls import mask_text, mask_url

METRIC = "fid"
PRESET = "sitting"
"""the `preset` attribute of a study made by this module: no search, only horizon runs"""
SITTING = "sitting"
"""tag of an imported run, and trial attribute: the archive it came from"""
GRID_FILE = re.compile(r"^epoch_(\d+)\.(png|webp)$")
COMPACT = "runs.tar.xz"
"""a sitting's runs as committed (`--compact`): the grids as WebP, everything xz-compressed"""
GRID_QUALITY = 90
"""WebP quality of the committed grids: 0.74 MB instead of 3.6 for a sitting's 25 grids; they are for
the eye (the report's sample figure, MLflow's images), no metric reads them"""
WEIGHTS_FIELD = {"inception": "inception_weights", "domain": "domain_weights"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m study.sitting", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--runs", required=True, nargs="+", type=Path, metavar="FILE",
                   help="runs.tar.gz (as a sitting returns it, benchmarks/gpu_sitting.py) or runs.tar.xz "
                        "(as --compact leaves it) of one or more sittings")
    p.add_argument("--compact", action="store_true",
                   help=f"first rewrite each runs.tar.gz as {COMPACT} beside it, for the repository (grids as WebP at "
                        f"quality {GRID_QUALITY}, records and all xz-compressed: about 1 MB a sitting instead of 4), and "
                        "remove the .tar.gz once the new file reads back the same runs; then import those")
    p.add_argument("--study-name", required=True, help="the study (and MLflow experiment) to import into; "
                   "created when it does not exist")
    p.add_argument("--storage", metavar="URL", help="Optuna storage (default: sqlite:///optuna.db)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: the one the study recorded, else sqlite:///mlflow.db)")
    p.add_argument("--extractor-weights", type=Path, metavar="FILE",
                   help="the weights file the sitting scored with (e.g. .cache/inception-fid16.pt, kept by python -m "
                        "benchmarks.carry), for runs whose run.json does not record its extractor: its name and SHA-256 "
                        "become their extractor tags and the study's extractor (default: what run.json records, else none)")
    p.add_argument("--report", type=Path, metavar="DIR", help="build the study's report into DIR afterwards")
    return p.parse_args(argv)


# ---------------------------------------------------------------- reading the archives


@dataclass(frozen=True)
class SittingRun:
    """One run a sitting returned (one seed of one configuration)."""

    archive: Path
    configuration: str
    config: TrainConfig
    records: list[dict]
    meta: dict
    """run.json: configuration, source, changed, seed, complete, diverged, trained_with, members,
    graph_state (earlier: graph), device"""
    grids: dict[int, Path]
    """epoch -> the kept sample grid (PNG; WebP once compacted)"""

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def horizon(self) -> int:
        return self.config.epochs

    @property
    def key(self) -> tuple[str, int, int]:
        """A run's identity in a study: configuration, seed, horizon."""
        return self.configuration, self.seed, self.horizon

    @property
    def failure(self) -> str:
        """Why the run cannot count as finished ("" when it can): it diverged, the sitting ran out of
        time, or its last epoch has no finite FID (as `study.objective.train_and_log` fails such runs)."""
        if self.meta.get("diverged"):
            return f"diverged: {self.meta['diverged']}"
        last = self.records[-1] if self.records else {"epoch": 0}
        if not self.meta.get("complete") or last["epoch"] < self.horizon:
            return f"incomplete: the sitting stopped at epoch {last['epoch']} of {self.horizon}"
        value = last.get(METRIC)
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            return f"{METRIC} is {value} at the last epoch"
        return ""


def read_json(path: Path, archive: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--runs {archive}: {path.parent.name}/{path.name} is missing in "
                        f"{path.parent.parent.name}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"--runs {archive}: {path.parent.parent.name}/{path.parent.name}/{path.name}: "
                        f"not JSON ({e})") from None


def read_config(values: dict, archive: Path, where: str) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**{k: v for k, v in values.items() if k in fields})
    except (TypeError, ValueError, UserError) as e:
        raise UserError(f"--runs {archive}: {where}/config.json is not a training config ({first_line(e)})") from None


def read_run(folder: Path, archive: Path) -> SittingRun:
    where = f"{folder.parent.name}/{folder.name}"
    meta = read_json(folder / "run.json", archive)
    config = read_config(read_json(folder / "config.json", archive), archive, where)
    records = read_json(folder / "records.json", archive)
    if meta.get("configuration") != folder.parent.name or meta.get("seed") != config.seed:
        raise UserError(f"--runs {archive}: {where}/run.json names {meta.get('configuration')} seed "
                        f"{meta.get('seed')}, config.json seed {config.seed}")
    grids = {int(m[1]): p for p in sorted((folder / "samples").glob("epoch_*")) if (m := GRID_FILE.match(p.name))}
    return SittingRun(archive, folder.parent.name, config, records, meta, grids)


def read_archive(archive: Path, dst: Path) -> list[SittingRun]:
    """The runs in one runs.tar.gz, unpacked under `dst` (the grids stay there while they are logged)."""
    if not archive.is_file():
        raise UserError(f"--runs {archive}: no such file")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dst, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise UserError(f"--runs {archive}: not a readable tar archive ({first_line(e) or type(e).__name__})") from None
    folders = sorted(p for p in (dst / "runs").glob("*/seed-*") if p.is_dir())
    if not folders:
        raise UserError(f"--runs {archive}: no runs/<configuration>/seed-<s>/ folders "
                        "(not a GPU sitting's runs.tar.gz?)")
    return [read_run(f, archive.resolve()) for f in folders]


def compact_archive(archive: Path) -> Path:
    """`archive` (a sitting's runs.tar.gz) rewritten as `COMPACT` beside it, which is returned; the
    original is removed once the new file reads back the same runs (records, run.json, grid epochs).
    An archive already compact is returned as it is."""
    if archive.name == COMPACT:
        return archive
    dst = archive.with_name(COMPACT)
    with tempfile.TemporaryDirectory(prefix="compact-") as tmp:
        before = read_archive(archive, Path(tmp) / "a")
        for run in before:
            for png in run.grids.values():
                if png.suffix == ".png":
                    with Image.open(png) as im:
                        im.save(png.with_suffix(".webp"), quality=GRID_QUALITY, method=6)
                    png.unlink()
        with tarfile.open(dst, "w:xz", preset=9) as tar:
            tar.add(Path(tmp) / "a" / "runs", arcname="runs")
        after = read_archive(dst, Path(tmp) / "b")
        same = [(r.key, r.records, r.meta, sorted(r.grids)) for r in before] == \
               [(r.key, r.records, r.meta, sorted(r.grids)) for r in after]
    if not same:  # the original stays
        dst.unlink()
        raise RuntimeError(f"{dst} does not read back the runs of {archive}")
    archive.unlink()
    return dst


def read_archives(archives: list[Path], dst: Path) -> list[SittingRun]:
    """Every run of every archive, the first of each identity only, checked for one config per
    configuration name."""
    runs: dict[tuple[str, int, int], SittingRun] = {}
    for i, archive in enumerate(archives):
        for run in read_archive(Path(archive), dst / str(i)):
            runs.setdefault(run.key, run)
    by_name: dict[str, TrainConfig] = {}
    for run in runs.values():
        differ = config_difference(by_name.setdefault(run.configuration, run.config), run.config)
        if differ:
            raise UserError(f"--runs: configuration {run.configuration} trains different configs in "
                            f"{run.archive} and elsewhere ({differ}); one name must mean one configuration")
    return sorted(runs.values(), key=lambda r: r.key)


def config_difference(a: TrainConfig, b: TrainConfig) -> str:
    """The fields but `HORIZON_OWN_FIELDS` in which two configs differ, as `field a/b`; "" when none."""
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return ", ".join(f"{k} {da[k]}/{db[k]}" for k in da if k not in HORIZON_OWN_FIELDS and da[k] != db[k])


def given_extractor(runs: list[SittingRun], weights: Path | None) -> dict[str, Any] | None:
    """{kind, name, sha256, artifact, run_id} of the weights file the user says the sitting scored with,
    as `study.pinned_extractor` records an extractor; None without one."""
    if weights is None:
        return None
    kinds = {r.config.extractor for r in runs}
    if len(kinds) != 1 or next(iter(kinds)) not in WEIGHTS_FIELD:
        raise UserError(f"--extractor-weights {weights}: the runs score with {', '.join(sorted(kinds))}; "
                        f"one of {', '.join(WEIGHTS_FIELD)} is needed")
    kind = kinds.pop()
    if not weights.is_file():
        raise UserError(f"--extractor-weights {weights}: no such file")
    config = runs[0].config.replace(device="cpu", **{WEIGHTS_FIELD[kind]: str(weights)})
    return identity(build_extractor(config, "cpu"))


def run_extractor(run: SittingRun, given: dict | None) -> dict | None:
    """The extractor that scored `run`: what its run.json records (sittings since they record it), else
    the one the user names."""
    return run.meta.get("extractor") or given


def one_extractor(runs: list[SittingRun], given: dict | None) -> dict | None:
    """The extractor identity of the whole import (None when nothing says); a user error when the runs
    were scored with different weights: one study compares FIDs of one extractor only."""
    known = {e["sha256"]: e for e in (run_extractor(r, given) for r in runs) if e}
    if len(known) > 1:
        raise UserError("--runs: the runs were scored with different extractors ("
                        + ", ".join(f"{e['name']} {sha[:12]}…" for sha, e in sorted(known.items()))
                        + "): their FIDs are not comparable; import them into different studies")
    if not known:
        return None
    e = next(iter(known.values()))
    return {"kind": e.get("kind", runs[0].config.extractor), "name": e["name"], "sha256": e["sha256"],
            "artifact": None, "run_id": None}


# ---------------------------------------------------------------- the stores


def open_tracking(tracking_uri: str, study_name: str):
    """(MLflow client, id of the study's experiment), or a user error naming `--tracking-uri`."""
    try:
        client = ml.connect(tracking_uri)
        return client, ml.ensure_experiment(client, study_name)
    except Exception as e:  # OSError, MlflowException, sqlalchemy and requests errors
        raise UserError(mask_text(f"--tracking-uri {tracking_uri}: cannot write there "
                                  f"({first_line(e) or type(e).__name__})", tracking_uri)) from None


def load_or_none(study_name: str, backend):
    """The study `study_name`, or None when the storage holds none of that name."""
    if study_name not in optuna.get_all_study_names(backend):
        return None
    study = optuna.load_study(study_name=study_name, storage=backend)
    searched = [t.number for t in study.get_trials(deepcopy=False) if t.params]
    if searched:
        raise UserError(f"--study-name {study_name}: the study holds search trials ({len(searched)}); a sitting's "
                        "runs go into a study of their own (choose another --study-name)")
    if study.direction != optuna.study.StudyDirection.MINIMIZE or study.user_attrs.get("metric", METRIC) != METRIC:
        raise UserError(f"--study-name {study_name}: the study does not minimise {METRIC}; choose another --study-name")
    return study


def configuration_trials(study) -> dict[str, Any]:
    """Configuration name -> its trial (the trials this module created, by their `baseline`)."""
    if study is None:
        return {}
    return {t.user_attrs["baseline"]: t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline")}


def check_against_study(study, runs: list[SittingRun], extractor: dict | None) -> None:
    """A user error, before anything is written, when the archives disagree with what the study holds:
    another config under a configuration's name, or another extractor."""
    for name, trial in configuration_trials(study).items():
        mine = next((r for r in runs if r.configuration == name), None)
        if mine is not None and CONFIG in trial.user_attrs:
            differ = config_difference(read_config(trial.user_attrs[CONFIG], mine.archive, name), mine.config)
            if differ:
                raise UserError(f"--runs {mine.archive}: configuration {name} differs from the study's trial "
                                f"{trial.number} ({differ}); one name must mean one configuration")
    recorded = study.user_attrs.get("extractor") if study is not None else None
    if recorded and extractor and recorded.get("sha256") != extractor["sha256"]:
        raise UserError(f"--runs: the study scores with {recorded['name']} ({recorded['sha256'][:12]}…), "
                        f"these runs with {extractor['name']} ({extractor['sha256'][:12]}…): their FIDs would not "
                        "be comparable")


def open_stores(study_name: str, storage: str | None, tracking_uri: str | None, runs: list[SittingRun],
                extractor: dict | None):
    """(the study, created when new; its storage URL; MLflow client; the study's experiment id), after
    the checks that must pass before anything is written."""
    url = resolve_storage(storage, 1)
    backend = open_storage(url)
    study = load_or_none(study_name, backend)
    check_against_study(study, runs, extractor)
    uri = ml.resolve_tracking_uri(tracking_uri or (study.user_attrs.get("tracking_uri") if study else None))
    if "***" in uri:
        raise UserError(f"--tracking-uri: study {study_name!r} recorded {uri} without its password; pass it")
    client, experiment_id = open_tracking(uri, study_name)
    if study is None:
        study = optuna.create_study(study_name=study_name, storage=backend, direction="minimize")
    return study, url, client, experiment_id


def present_runs(client, experiment_id: str, study_name: str, log: Callable[[str], None]) -> set[tuple[str, int, int]]:
    """Identities of the horizon runs the study holds. A run an interrupted import left RUNNING is
    deleted, so that this import logs it whole."""
    runs = query.study_runs(client, experiment_id, study_name, role=ROLE_CONFIRM)
    keys = set()
    for _, r in runs.iterrows():
        tags = {k: r.get(f"tag.{k}") for k in (ml.BASELINE, "seed", HORIZON, SITTING)}
        if not all(isinstance(v, str) and v for v in tags.values()):
            continue  # not an imported run
        if r["status"] == "RUNNING":
            client.delete_run(r["run_id"])
            log(f"{tags[ml.BASELINE]} seed {tags['seed']}: deleted the run an interrupted import left")
            continue
        keys.add((tags[ml.BASELINE], int(tags["seed"]), int(tags[HORIZON])))
    return keys


def set_study_attrs(study, runs: list[SittingRun], client, experiment_id: str, parent: str,
                    extractor: dict | None, archives: list[Path]) -> None:
    """The attributes `study.run` gives a study, and what this import adds (horizon, sittings)."""
    first = runs[0].config
    attrs = study.user_attrs
    fresh = "metric" not in attrs
    values = {
        "tracking_uri": mask_url(client.tracking_uri), "mlflow_experiment_id": experiment_id,
        "mlflow_parent_run_id": parent,
        HORIZON: max([int(attrs.get(HORIZON, 0)), *(r.horizon for r in runs)]),
        "horizon_eval_every": int(attrs.get("horizon_eval_every") or first.eval_every),
        "sittings": list(dict.fromkeys([*attrs.get("sittings", []), *(str(a.resolve()) for a in archives)])),
    }
    if fresh:
        values.update({"metric": METRIC, "direction": "minimize", "model": first.model, "data": first.data,
                       "preset": PRESET, "space": {}})
    if extractor and not attrs.get("extractor"):
        values["extractor"] = extractor
    for key, value in values.items():
        study.set_user_attr(key, value)


def median_curve(runs: list[SittingRun]) -> dict[int, float]:
    """Epoch -> the median FID over `runs` at every evaluated epoch."""
    values: dict[int, list[float]] = {}
    for run in runs:
        for r in run.records:
            v = r.get(METRIC)
            if isinstance(v, (int, float)) and math.isfinite(v):
                values.setdefault(int(r["epoch"]), []).append(float(v))
    return {epoch: statistics.median(vs) for epoch, vs in sorted(values.items())}


def add_trial(study, name: str, runs: list[SittingRun]) -> int:
    """One trial for configuration `name` from its runs; returns its number."""
    finished = [r for r in runs if not r.failure]
    first = runs[0]
    attrs = {CONFIG: dataclasses.asdict(first.config.replace(seed=0)), "baseline": name, SITTING: str(first.archive),
             "source": first.meta.get("source", ""), "changed": first.meta.get("changed", ""),
             "seeds": [r.seed for r in runs],
             "value_is": f"median over {len(finished)} finished seeds of {METRIC} at epoch {first.horizon}"}
    if finished:
        curve = median_curve(finished)
        value = statistics.median(float(r.records[-1][METRIC]) for r in finished)
        trial = create_trial(state=TrialState.COMPLETE, value=value, intermediate_values=curve, user_attrs=attrs)
    else:
        attrs[FAIL_REASON] = "every run failed: " + "; ".join(f"seed {r.seed}: {r.failure}" for r in runs)
        trial = create_trial(state=TrialState.FAIL, user_attrs=attrs)
    study.add_trial(trial)
    return max(t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline") == name)


def read_grid(path: Path) -> torch.Tensor:
    """A grid (PNG, or WebP in a compact archive) as the uint8 C x H x W tensor `RunLogger.log_grid` takes."""
    with Image.open(path) as im:
        arr = np.asarray(im if im.mode in ("L", "RGB") else im.convert("RGB"))
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def run_tags(run: SittingRun, study_name: str, number: int, extractor: dict | None) -> dict[str, Any]:
    """The tags `study.confirm` gives a horizon run, and where this one was trained."""
    device = run.meta.get("device") or {}
    n = train_images(run)
    return {ml.ROLE: ROLE_CONFIRM, ml.STUDY_NAME: study_name, ml.TRIAL_NUMBER: number, ml.BASELINE: run.configuration,
            "seed": run.seed, "metric": METRIC, HORIZON: run.horizon,
            **({"train_images": n, "steps_per_epoch": n // run.config.batch_size} if n else {}),
            **({"extractor_name": extractor["name"], "extractor_sha256": extractor["sha256"]} if extractor else {}),
            "device": device.get("name", "?"), "torch": device.get("torch", "?"), SITTING: str(run.archive),
            "trained_with": ",".join(run.meta.get("trained_with", [])), "stacked_members": run.meta.get("members", 1),
            # Sittings before 2026-11-27 recorded only whether the graph was on ("graph": true).
            "cuda_graph": run.meta.get("graph_state", run.meta.get("graph", False))}


def train_images(run: SittingRun) -> int | None:
    """Training photos: the first `limit` of the folder, fewer when it held fewer, which the training
    reference's count shows when it took them all (`num_real` 0)."""
    counted = next((r["num_real_train"] for r in run.records if "num_real_train" in r), None)
    if counted is not None and run.config.num_real == 0:
        return int(counted)
    return run.config.limit or None


def log_run(client, experiment_id: str, parent: str, study_name: str, number: int, run: SittingRun,
            extractor: dict | None) -> str:
    """One sitting run as one horizon run of the study; returns the MLflow run id."""
    job = Job(number, run.configuration, run.config, run.horizon)
    logger = ml.RunLogger(client, experiment_id, job.name, parent_run_id=parent,
                          tags=run_tags(run, study_name, number, extractor))
    logger.log_config(run.config)
    logger.log_records(run.records)
    for rescored in run.meta.get("rescores", []):  # the last epoch scored on fresh sample sets
        logger.log_record(rescored)
    for epoch, path in sorted(run.grids.items()):
        logger.log_grid(read_grid(path), epoch)
    failure = run.failure
    logger.finish("failed" if failure else "complete", failure or None)
    return logger.run_id


# ---------------------------------------------------------------- the import


@dataclass(frozen=True)
class Imported:
    """What one import added."""

    runs: int
    skipped: int
    configurations: list[str]
    """configurations that got their trial in this import"""


def import_sitting(archives: list[Path], study_name: str, storage: str | None = None, tracking_uri: str | None = None,
                   log: Callable[[str], None] = print, extractor_weights: Path | None = None) -> Imported:
    """Import the runs of `archives` (runs.tar.gz of GPU sittings) into the study `study_name`."""
    if not archives:
        raise UserError("--runs: name at least one runs.tar.gz")
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="sitting-") as tmp:
        runs = read_archives([Path(a) for a in archives], Path(tmp))
        given = given_extractor(runs, extractor_weights)
        extractor = one_extractor(runs, given)
        study, url, client, experiment_id = open_stores(study_name, storage, tracking_uri, runs, extractor)
        first = runs[0].config
        parent = ml.study_run(client, experiment_id, study_name, tags={
            "metric": METRIC, "preset": PRESET, "model": first.model, "data": first.data,
            "optuna_storage": mask_url(url)})
        status = "FAILED"
        try:
            set_study_attrs(study, runs, client, experiment_id, parent, extractor, archives)
            done = import_runs(study, runs, client, experiment_id, parent, log, given)
            status = "FINISHED"
        finally:
            client.set_terminated(parent, status)
    return done


def import_runs(study, runs: list[SittingRun], client, experiment_id: str, parent: str, log: Callable[[str], None],
                given: dict | None) -> Imported:
    """The trials of new configurations, then every run the study lacks (`given`: the extractor of runs
    whose run.json records none)."""
    name = study.study_name
    present = present_runs(client, experiment_id, name, log)
    trials = {k: t.number for k, t in configuration_trials(study).items()}
    created = []
    for conf in dict.fromkeys(r.configuration for r in runs):
        if conf not in trials:
            trials[conf] = add_trial(study, conf, [r for r in runs if r.configuration == conf])
            created.append(conf)
            log(f"{conf}: trial {trials[conf]}")
    imported = skipped = 0
    for run in runs:
        what = f"{run.configuration} seed {run.seed} ({run.horizon} epochs)"
        if run.key in present:
            skipped += 1
            log(f"{what}: already in the study, skipped")
            continue
        run_id = log_run(client, experiment_id, parent, name, trials[run.configuration], run,
                         run_extractor(run, given))
        imported += 1
        log(f"{what}: run {run_id}, {len(run.records)} epochs, {len(run.grids)} grids"
            + (f", FAILED ({run.failure})" if run.failure else ""))
    return Imported(imported, skipped, created)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.compact:
        args.runs = [compact_archive(a) for a in args.runs]
        for a in args.runs:
            print(f"{a}: {a.stat().st_size / 1e6:.2f} MB", file=sys.stderr)
    done = import_sitting(args.runs, args.study_name, args.storage, args.tracking_uri, log=log,
                          extractor_weights=args.extractor_weights)
    print(f"{done.runs} runs imported, {done.skipped} already there; {len(done.configurations)} new configurations",
          file=sys.stderr)
    if args.report:
        print(build(args.study_name, args.storage, args.tracking_uri, args.report))
        print(f"report: {args.report / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
