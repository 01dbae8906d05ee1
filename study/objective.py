"""The objective: one trial = one config trained, evaluated, reported to Optuna and logged to MLflow.

`train_and_log` trains one config and logs it as one MLflow run; it knows nothing of Optuna (a
`should_stop(epoch, value)` callback asks whether to stop), so `study.confirm` can reuse it.
`Objective` is the Optuna side: it draws the config from the trial, reports the metric at evaluated
epochs, lets the pruner stop the trial, and stores the outcome as user attributes.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from gans.config import TrainConfig
from gans.data import check_source
from gans.errors import UserError, first_line
from gans.metric_keys import HEADLINE, resample_key
from gans.metrics import build_evaluator
from gans.trainer import Diverged, Trainer, load_checkpoint, load_train_data
from study.pinned_extractor import check
from study.space import sample_config
from tracking import mlflow_log as ml
from tracking.mlflow_log import TrackingError, copy_history
from tracking.stores import CONFIG, FAIL_REASON, best_of
from tracking.urls import safe_name

# Outcome state -> Optuna trial state name (tagged on the MLflow run as `optuna_state`).
TRIAL_STATE = {"complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}


# A trial saves a resumable checkpoint after the first epoch that ends this many seconds of training
# after its last one (besides its evaluated epochs): Ctrl-C or a killed process loses at most about
# this much training (plus the epoch in progress). `GAN_STUDY_CHECKPOINT_S` sets it (tests: a fraction
# of a second); 0 turns it off.
CHECKPOINT_EVERY_S = float(os.environ.get("GAN_STUDY_CHECKPOINT_S", 120))


# The user attribute holding the epoch of a running trial's last resumable checkpoint.
CHECKPOINT_EPOCH = "checkpoint_epoch"


def takes_a_slot(trial) -> bool:
    """Whether a trial counts towards `--trials`: complete, pruned, or failed with a recorded reason
    (diverged, out of memory). A trial failed by Ctrl-C or a crash has no reason and is run again."""
    state = trial.state.name
    return state in ("COMPLETE", "PRUNED") or (state == "FAIL" and FAIL_REASON in trial.user_attrs)


class TrialFailed(Exception):
    """A trial that cannot give a value (diverged, out of memory); the study goes on."""


@dataclass
class Outcome:
    """How one training ended."""

    state: str
    """complete | pruned | failed"""
    value: float | None = None
    """the metric at the last epoch trained (None if that epoch was not evaluated)"""
    best_value: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    """epochs completed"""
    reason: str | None = None
    run_id: str | None = None


def trial_name(number: int) -> str:
    return f"trial-{number:03d}"


def trial_dir(root: str | Path, study_name: str, number: int) -> Path:
    """Working folder of one trial's checkpoints: `<root>/<study_name>/trial-NNN` (best.pt, last.pt)."""
    return Path(root) / safe_name(study_name) / trial_name(number)


@dataclass(frozen=True)
class Resume:
    """Where a retried training picks up: the trainer state of the last checkpoint its stopped
    predecessor wrote, and what the predecessor had found best by then."""

    state: dict[str, Any]
    best_value: float | None = None
    best_epoch: int | None = None
    best_checkpoint: Path | None = None
    """the predecessor's best.pt, when it was written at or before the resumed epoch"""

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])


# The training images of a config, decoded once per process and shared by its trials.
train_data = load_train_data


def train_and_log(config: TrainConfig, *, metric: str, logger=None,
                  should_stop: Callable[[int, float], str | None] | None = None,
                  checkpoint: str | Path | None = None, last_checkpoint: str | Path | None = None,
                  checkpoint_every: int = 0, checkpoint_every_s: float = 0,
                  on_checkpoint: Callable[[int], None] | None = None, resume: Resume | None = None,
                  on_record: Callable[[dict], None] | None = None,
                  on_step: Callable[[int, int, int], None] | None = None,
                  finish_tags: Callable[[Outcome], Mapping[str, Any]] | None = None, evaluator: Any = "config",
                  rescore_sets: int = 0, study_extractor: Mapping[str, Any] | None = None) -> Outcome:
    """Train `config`, log every epoch record to `logger` (a `tracking.mlflow_log.RunLogger`), and end
    that run with a status matching the outcome.

    At evaluated epochs the sample grid is logged and, when `metric` improved, the trainer is saved to
    `checkpoint`; that best checkpoint becomes the run's artifact `checkpoints/best.pt` at the end.
    `should_stop(epoch, value)` returns a reason to stop early (outcome "pruned"). A loss turning
    NaN/inf, or a tracking store that cannot be written (disk full), gives outcome "failed" with the
    reason. Any other exception ends the run as failed and propagates. `evaluator="config"` builds
    the evaluator `config.metrics` asks for.

    The whole trainer is saved to `last_checkpoint` at evaluated epochs, every `checkpoint_every`
    epochs, and after the first epoch ending `checkpoint_every_s` seconds or more after the last save
    (0: never by time), once the epoch is logged; `on_checkpoint(epoch)` is then called. It outlives an
    interrupted training, so that `resume` (built from it) continues from that epoch, and is removed
    when the training ends.

    `rescore_sets` > 0: once a training completes, the generators of its last and its best epoch are
    scored again on that many fresh sample sets (seeds 1, 2, ...), logged as `<metric>_resample_<k>`
    at those epochs: how far two evaluations of one model lie apart (the evaluation's own noise).

    `study_extractor` (the study's recorded extractor, `study.pinned_extractor`): the run refuses to score
    with other weights. Every run logs its extractor's name and weights hash as tags.
    """
    if metric not in config.metric_names:
        raise UserError(f"--metrics {config.metrics!r}: must include the study metric {metric!r}")
    outcome = Outcome("complete", run_id=getattr(logger, "run_id", None))
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    saves = _Saves(Path(last_checkpoint) if last_checkpoint is not None else None,
                   checkpoint_every, checkpoint_every_s, on_checkpoint)
    try:
        trainer = _trainer(config, evaluator, study_extractor, resume, outcome)
        _start_log(logger, config, trainer, getattr(trainer.evaluator, "extractor", None))
        _prepare_checkpoints(checkpoint, saves.path, resume)
        _train_epochs(trainer, outcome, metric, logger, checkpoint, saves, should_stop, on_record, on_step)
        if rescore_sets > 0 and outcome.state == "complete" and trainer.evaluator is not None:
            _rescore(trainer, outcome, checkpoint, rescore_sets, logger)
    except Diverged as e:
        outcome.state, outcome.reason, outcome.value = "failed", e.reason, None
    except TrackingError as e:
        outcome.state, outcome.reason, outcome.value = "failed", str(e), None
    except BaseException as e:
        _fail_by(outcome, e)
        _finish(logger, outcome, checkpoint, finish_tags, keep=True)  # a retry resumes with it
        raise
    _fail_without_value(outcome, metric)
    if saves.path is not None:
        saves.path.unlink(missing_ok=True)
    _finish(logger, outcome, checkpoint, finish_tags)
    return outcome


def _trainer(config: TrainConfig, evaluator, study_extractor: Mapping[str, Any] | None, resume: Resume | None,
             outcome: Outcome) -> Trainer:
    """The trainer of `config` with its evaluator checked against the study's, carried on from `resume`
    (and `outcome` with it). `evaluator="config"` builds the one `config.metrics` asks for."""
    evaluator = _checked(build_evaluator(config) if evaluator == "config" else evaluator, study_extractor)
    trainer = Trainer(config, train_data(config), evaluator=evaluator)
    if resume is not None:
        trainer.load_state_dict(resume.state)
        outcome.epochs, outcome.best_value, outcome.best_epoch = resume.epoch, resume.best_value, resume.best_epoch
    return trainer


def _prepare_checkpoints(checkpoint: Path | None, last_checkpoint: Path | None, resume: Resume | None) -> None:
    """Make the checkpoints' folders; the best checkpoint starts absent, or as the resumed trial's."""
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.unlink(missing_ok=True)  # a stale file would pass for this run's best
        if resume is not None and resume.best_checkpoint is not None:
            shutil.copyfile(resume.best_checkpoint, checkpoint)
    if last_checkpoint is not None:
        last_checkpoint.parent.mkdir(parents=True, exist_ok=True)


@dataclass
class _Saves:
    """The resumable checkpoint of `train_and_log`: its path (None: none), when it is due, whom to tell."""

    path: Path | None
    every: int
    every_s: float
    on_save: Callable[[int], None] | None
    saved_at: float = 0.0

    def start(self) -> None:
        """Count the seconds to the next save from now."""
        self.saved_at = time.monotonic()

    def after(self, trainer, record: dict) -> None:
        """Save the trainer when the epoch of `record` is due (`_checkpoint_due`), then call `on_save`."""
        if self.path is not None and _checkpoint_due(
                record, self.every, self.every_s, time.monotonic() - self.saved_at):
            trainer.save(self.path)
            self.saved_at = time.monotonic()
            if self.on_save is not None:
                self.on_save(record["epoch"])


def _train_epochs(trainer, outcome: Outcome, metric: str, logger, checkpoint: Path | None, saves: _Saves,
                  should_stop, on_record, on_step) -> None:
    """Train epoch by epoch, accounting and logging each, saving the best and the resumable checkpoint,
    until the last epoch or until `should_stop` gives a reason (outcome "pruned")."""
    records = trainer.run(on_step)
    saves.start()
    try:
        for record in records:
            value = _account(outcome, record, metric)
            if value is not None and value == outcome.best_value and checkpoint is not None:
                trainer.save(checkpoint)
            _log_epoch(logger, record, trainer, 0)
            if on_record is not None:
                on_record(record)
            if value is not None and should_stop is not None:
                reason = should_stop(record["epoch"], value)
                if reason:
                    outcome.state, outcome.reason = "pruned", reason
                    return
            saves.after(trainer, record)
    finally:
        records.close()


def _fail_by(outcome: Outcome, e: BaseException) -> None:
    """Mark `outcome` failed by an exception that propagates (Ctrl-C: "interrupted")."""
    outcome.state = "failed"
    outcome.reason = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"


def _fail_without_value(outcome: Outcome, metric: str) -> None:
    """A completed training fails when its last epoch gave no finite value of `metric`."""
    if outcome.state == "complete" and not (outcome.value is not None and math.isfinite(outcome.value)):
        outcome.state, outcome.reason = "failed", f"{metric} is {outcome.value} at the last epoch"


def _checkpoint_due(record: dict, every: int, every_s: float, since_s: float) -> bool:
    """Whether the epoch of `record` saves a resumable checkpoint: an evaluated epoch, every `every`
    epochs, or `every_s` seconds (> 0) of training after the last save."""
    return bool(record["evaluated"] or (every and record["epoch"] % every == 0) or (0 < every_s <= since_s))


def _account(outcome: Outcome, record: dict, metric: str) -> float | None:
    """Update `outcome` with an epoch record; the metric's value at an evaluated epoch, else None."""
    outcome.epochs = record["epoch"]
    outcome.value = None
    if not record["evaluated"]:
        return None
    value = record.get(metric)
    if value is None:
        raise RuntimeError(f"the evaluator gave no {metric!r} at epoch {record['epoch']}")
    if math.isfinite(value) and (outcome.best_value is None or value < outcome.best_value):
        outcome.best_value, outcome.best_epoch = value, record["epoch"]
    outcome.value = value
    return value


def _log_epoch(logger, record: dict, trainer, member: int) -> None:
    if logger is not None:
        logger.log_record(record)
        if record["evaluated"]:
            logger.log_grid(trainer.grid(member), record["epoch"])
            # Tagged as it stands (captured once the warm-up steps are done): a failed capture trains
            # several times slower, and the tag says why.
            logger.set_tags({"cuda_graph": trainer.graph_state})


def _start_log(logger, config: TrainConfig, trainer, extractor) -> None:
    if logger is not None:
        logger.log_config(config)
        # Epochs translate into steps and images seen only with the data set's size.
        logger.set_tags({"train_images": len(trainer.data), "steps_per_epoch": trainer.steps_per_epoch,
                         "members_together": len(trainer.members),
                         **{f"resolved_{k}": v for k, v in trainer.resolved.items()},
                         **({"extractor_name": extractor.name, "extractor_sha256": extractor.sha256}
                            if extractor is not None else {})})


def _checked(evaluator, study_extractor: Mapping[str, Any] | None):
    """`evaluator`, refused when its extractor is not the study's."""
    extractor = getattr(evaluator, "extractor", None)
    if extractor is not None and study_extractor is not None:
        check(study_extractor, extractor, "this study")
    return evaluator


def train_members_and_log(configs: list[TrainConfig], *, metric: str, loggers: list, checkpoints: list[Path],
                          rescore_sets: int = 0, study_extractor: Mapping[str, Any] | None = None) -> list[Outcome]:
    """Horizon runs of one configuration trained together (`gans.trainer`: seeds as members of one
    vectorized model), each logged as its own MLflow run exactly as `train_and_log` logs one: its
    records and grids, its best checkpoint, its re-scorings, its outcome. No pruning, no resuming:
    an interrupted group is trained again (`study.confirm` counts only finished runs)."""
    evaluator = _checked(build_evaluator(configs[0]), study_extractor)
    outcomes = [Outcome("complete", run_id=getattr(lg, "run_id", None)) for lg in loggers]
    trainer = Trainer(configs, train_data(configs[0]), evaluator=evaluator)
    for config, logger, path in zip(configs, loggers, checkpoints):
        _start_log(logger, config, trainer, getattr(evaluator, "extractor", None))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    try:
        for records in trainer.run_members():
            for i, record in records.items():
                if "diverged" in record:
                    outcomes[i].state, outcomes[i].reason = "failed", record["diverged"]
                    continue
                value = _account(outcomes[i], record, metric)
                if value is not None and value == outcomes[i].best_value:
                    trainer.save(checkpoints[i], member=i)
                _log_epoch(loggers[i], record, trainer, i)
        for i in trainer.alive:
            if rescore_sets > 0 and evaluator is not None:
                alone = Trainer(configs[i], train_data(configs[i]), evaluator=evaluator)
                alone.load_state_dict(trainer.state_dict(i))
                _rescore(alone, outcomes[i], checkpoints[i], rescore_sets, loggers[i])
    except BaseException as e:
        for o, logger, path in zip(outcomes, loggers, checkpoints):
            if o.state == "complete":
                _fail_by(o, e)
            _finish(logger, o, path, None)
        raise
    for o, logger, path in zip(outcomes, loggers, checkpoints):
        _fail_without_value(o, metric)
        _finish(logger, o, path, None)
    return outcomes


def _rescore(trainer, outcome: Outcome, checkpoint: Path | None, sets: int, logger) -> None:
    """Score the last epoch's generator, then the best epoch's (from `checkpoint`), on `sets` fresh
    sample sets each, and log the values as `<metric>_resample_<k>` at those epochs."""
    targets = [(outcome.epochs, None)]
    if outcome.best_epoch is not None and outcome.best_epoch != outcome.epochs and checkpoint is not None \
            and checkpoint.is_file():
        targets.append((outcome.best_epoch, checkpoint))
    for epoch, path in targets:
        if path is not None:
            trainer.load_state_dict(load_checkpoint(path, map_location=trainer.device))
        for k in range(1, sets + 1):
            values = trainer.evaluator(trainer, seed=k)
            numbers = {resample_key(m, k): values[m] for m in HEADLINE if m in values}
            if logger is not None:
                logger.log_record({"epoch": epoch, **numbers})


def _finish(logger, outcome: Outcome, checkpoint: Path | None, finish_tags, keep: bool = False) -> None:
    """Store the best checkpoint as the run's artifact (keeping the file when `keep`) and end the
    run. A store that cannot take the artifact (disk full) fails the training rather than the study."""
    if logger is None:
        return
    try:
        if checkpoint is not None and checkpoint.exists():
            logger.log_artifact(checkpoint, "checkpoints")
            if not keep:  # the artifact store now holds it; a second copy would double the disk use
                checkpoint.unlink()
    except TrackingError as e:
        outcome.state, outcome.reason, outcome.value = "failed", f"storing the best checkpoint: {e}", None
    tags = dict(finish_tags(outcome)) if finish_tags is not None else {}
    if outcome.best_epoch is not None:
        tags["best_epoch"] = outcome.best_epoch  # for the UI's runs table; nothing reads it back
    try:
        logger.finish(outcome.state, outcome.reason, tags)
    except TrackingError:
        if outcome.state != "failed":
            raise
        # The store that failed the training cannot record that either; Optuna still will.


# ---------------------------------------------------------------- the Optuna objective


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study needs besides its sampled values (picklable for workers)."""

    study_name: str
    base: TrainConfig
    space: Mapping[str, Any]
    """searched entries: field name -> study.space.Param"""
    metric: str
    checkpoints: str
    experiment_id: str | None = None
    parent_run_id: str | None = None
    checkpoint_every: int = 0
    """epochs between resumable checkpoints besides the evaluated epochs (0: evaluated epochs only)"""
    checkpoint_every_s: float = CHECKPOINT_EVERY_S
    """seconds of training after which the next epoch also saves a resumable checkpoint (0: never)"""
    memory_capped: bool = False
    """the trial shares its GPU with other workers under a memory cap: running out of memory then says
    more about the neighbours than about the configuration"""
    system_metrics: bool = True
    """log CPU, memory and GPU use of every trial run (MLflow's `system/` metrics)"""


class Contended(Exception):
    """A trial that ran out of memory under a shared GPU's cap: retried, not failed for good."""


class Objective:
    """Callable for `optuna.Study.optimize`: one trial trains one sampled config."""

    def __init__(self, ctx: TrialContext, client=None, *, progress=None):
        self.ctx = ctx
        self.client = client
        self.progress = progress

    def config(self, trial) -> TrainConfig:
        with warnings.catch_warnings():
            if trial.user_attrs.get("baseline"):
                # A baseline may sit between grid points (54 epochs on a 50-epoch grid): intended.
                warnings.filterwarnings("ignore", message="Fixed parameter")
            return sample_config(trial, self.ctx.space, self.ctx.base)

    def __call__(self, trial) -> float:
        """Suggest a config, train it (reporting to Optuna, which may prune it), and return its value."""
        config = self.config(trial)
        trial.set_user_attr(CONFIG, dataclasses.asdict(config))  # the source of truth: typed (JSON), whole
        logger = self.logger(trial)
        resume = self.resume(trial, config, logger)
        folder = trial_dir(self.ctx.checkpoints, self.ctx.study_name, trial.number)
        outcome = self.train(trial, config, logger, resume, folder)
        self.clean_up(trial, resume, folder)
        return self.value(trial, outcome)

    def logger(self, trial) -> ml.RunLogger | None:
        """The MLflow run of this trial (None without a tracking client)."""
        if self.client is None:
            return None
        ctx = self.ctx
        tags = {ml.ROLE: "trial", ml.STUDY_NAME: ctx.study_name, ml.TRIAL_NUMBER: trial.number,
                ml.BASELINE: _baseline(trial), ml.OPTUNA_STATE: "RUNNING",
                "metric": ctx.metric}
        if "retry_of" in trial.user_attrs:
            tags["retry_of_trial"] = trial.user_attrs["retry_of"]
        logger = ml.RunLogger(self.client, ctx.experiment_id, trial_name(trial.number),
                              parent_run_id=ctx.parent_run_id, tags=tags, system_metrics=ctx.system_metrics)
        trial.set_user_attr("mlflow_run_id", logger.run_id)
        return logger

    def train(self, trial, config: TrainConfig, logger, resume: Resume | None, folder: Path) -> Outcome:
        """Train the trial's config, reporting its evaluated epochs to Optuna; running out of memory
        fails the trial (`TrialFailed`), or retries it under a shared GPU's cap (`Contended`)."""
        ctx = self.ctx
        if self.progress is not None:
            self.progress.trial_started(trial.number, config, _baseline(trial), trial.user_attrs)
        # Training runs on a decoded copy; a data folder deleted meanwhile must stop the study (on_record).
        try:
            return train_and_log(
                config, metric=ctx.metric, logger=logger, should_stop=_reporter(trial, config, ctx.metric),
                checkpoint=folder / "best.pt", last_checkpoint=folder / "last.pt",
                checkpoint_every=ctx.checkpoint_every, checkpoint_every_s=ctx.checkpoint_every_s,
                on_checkpoint=lambda epoch: trial.set_user_attr(CHECKPOINT_EPOCH, epoch),
                resume=resume, on_record=lambda record: check_source(config.data, config.data_root),
                on_step=self.progress.step if self.progress is not None else None,
                finish_tags=lambda o: {ml.OPTUNA_STATE: TRIAL_STATE[o.state]},
                study_extractor=trial.study.user_attrs.get("extractor"),
            )
        except _oom_errors() as e:
            reason = f"out of memory: {first_line(e) or type(e).__name__}"
            if ctx.memory_capped:
                raise Contended(f"{reason} (under the 1/K memory cap of --workers)") from None
            trial.set_user_attr(FAIL_REASON, reason)
            _remove_checkpoints(folder)  # this trial will not be resumed
            raise TrialFailed(reason) from None
        finally:
            if self.progress is not None:
                self.progress.trial_ended()

    @staticmethod
    def clean_up(trial, resume: Resume | None, folder: Path) -> None:
        """Remove the working files of a trial done with them, and of the trial it resumed."""
        if resume is not None:
            source = Path(trial.user_attrs["resume_from"]).parent
            _remove_checkpoints(source)
            _remove_if_empty(source)
        _remove_if_empty(folder)

    @staticmethod
    def value(trial, outcome: Outcome) -> float:
        """The trial's value; a pruned trial raises `optuna.TrialPruned`, a failed one `TrialFailed`."""
        import optuna  # heavy; see tracking.stores.open_storage

        if outcome.state == "pruned":
            trial.set_user_attr("prune_reason", outcome.reason)
            raise optuna.TrialPruned(outcome.reason)
        if outcome.state == "failed":
            trial.set_user_attr(FAIL_REASON, outcome.reason)
            raise TrialFailed(outcome.reason)
        return outcome.value

    def resume(self, trial, config: TrainConfig, logger) -> Resume | None:
        """The state a retried trial continues from: the last checkpoint of the trial it retries,
        with that trial's reported values (Optuna) and metric history (MLflow) carried over up to
        the checkpoint's epoch. None when there is nothing (usable) to resume."""
        path = trial.user_attrs.get("resume_from")
        if not path or not Path(path).is_file():
            return None
        state = load_checkpoint(path)
        same = {k: v for k, v in state["config"].items() if k != "device"} == {
            k: v for k, v in dataclasses.asdict(config).items() if k != "device"}
        if not same:
            warnings.warn(f"{path}: written for another configuration; trial {trial.number} starts afresh")
            return None
        epoch = int(state["epoch"])
        source = next((t for t in trial.study.get_trials(deepcopy=False)
                       if t.number == trial.user_attrs.get("resume_trial")), None)
        values = {step: v for step, v in (source.intermediate_values if source else {}).items() if step <= epoch}
        for step in sorted(values):
            trial.report(values[step], step)
        best_epoch, best_value = best_of(values) or (None, None)
        best_file = Path(path).with_name("best.pt")
        if not (best_file.is_file() and int(load_checkpoint(best_file)["epoch"]) <= epoch):
            best_file = None
        run_id = source.user_attrs.get("mlflow_run_id") if source else None
        if logger is not None and run_id:
            copy_history(logger.client, run_id, logger.run_id, epoch)
            logger.set_tags({"resumed_from_epoch": epoch, "resumed_from_run": run_id})
        trial.set_user_attr("resumed_from_epoch", epoch)
        return Resume(state, best_value, best_epoch, best_file)


def _baseline(trial) -> str:
    """The seed baseline a trial trains ("" for a searched trial)."""
    return trial.user_attrs.get("baseline") or ""


def _reporter(trial, config: TrainConfig, metric: str) -> Callable[[int, float], str | None]:
    """`should_stop` for `train_and_log`: report the value to Optuna and ask its pruner."""
    def should_stop(epoch: int, value: float) -> str | None:
        trial.report(value, epoch)
        # A trial at its last epoch has nothing left to save: it completes, whatever the median says.
        if epoch < config.epochs and trial.should_prune():
            return f"pruned at epoch {epoch} of {config.epochs}: {metric} {value:.4g}"
        return None
    return should_stop


def _remove_checkpoints(folder: Path) -> None:
    """Remove a trial's working checkpoints (last.pt, best.pt) from `folder`."""
    for name in ("last.pt", "best.pt"):
        (folder / name).unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _oom_errors() -> tuple[type[BaseException], ...]:
    # torch.OutOfMemoryError exists from torch 2.5 on; its CUDA alias on every supported version.
    return (torch.cuda.OutOfMemoryError,)
