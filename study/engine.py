"""Running a study's trials: samplers and pruners by name, Optuna storages from URLs, and the loop
that one process (the CLI itself, one of `--workers K` processes, or a command on another machine)
runs.

A study holds exactly `--trials` slots: trials that finished, run, or wait in Optuna's queue
(`study.run` enqueues the waiting ones). A worker only ever claims a waiting trial, atomically
through the storage, so any number of workers on any number of machines finish exactly the
target between them. A worker that dies leaves its trial RUNNING: the trial is failed in Optuna and
MLflow and a retry with the same parameters, resuming from the trial's last checkpoint, takes its
slot; retries are claimed before any other waiting trial. Death is seen from the storage's heartbeat
(RDB storages) or, on the same machine, from the recorded process id being gone (any storage, and at
once).

Everything a worker needs travels in one picklable `StudySettings`; each process opens its own
storage, MLflow client, sampler and pruner (Optuna persists none of the latter two).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from gans.data import check_source
from gans.errors import UserError, first_line
from gans.trainer import use_worker_threads
from study.objective import CHECKPOINT_EPOCH, Contended, Objective, TrialContext, TrialFailed, trial_dir
from study.optuna_adapter import claim_waiting, fail_running, storage_of, trial_id
from tracking import mlflow_log as ml
from tracking import stores
from tracking.mlflow_log import connect, log_metrics
from tracking.urls import mask_text
# A trial whose process has not written a heartbeat for GRACE_S seconds is taken for dead; names of
# this module, read when called (a test shortens them).
from tracking.stores import GRACE_S, HEARTBEAT_S, quiet_libraries

# Parameters whose trial's process died this often are given up (they may be what kills it): a
# fresh trial takes the slot.
MAX_RETRIES = 3


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
    prune_warmup: int = 0
    """epochs before which no trial is pruned (a GAN's early FID says little about its later one)"""
    horizon: int = 1000
    """epochs of the horizon runs after the search"""
    horizon_eval_every: int = 25


# ---------------------------------------------------------------- samplers and pruners

def _optuna():
    import optuna  # heavy (seconds to import): loaded when a study opens, so `--help` and refusals stay instant

    return optuna


SAMPLERS: dict[str, Callable[[int | None], object]] = {
    "tpe": lambda seed: _optuna().samplers.TPESampler(seed=seed),
    "random": lambda seed: _optuna().samplers.RandomSampler(seed=seed),
    "gp": lambda seed: _optuna().samplers.GPSampler(seed=seed),
}
"""`--sampler` name -> the sampler for a seed"""
PRUNERS: dict[str, Callable[[StudySettings], object]] = {
    "median": lambda s: _optuna().pruners.MedianPruner(n_startup_trials=s.pruner_startup,
                                                      n_warmup_steps=s.prune_warmup),
    "hyperband": lambda s: _optuna().pruners.HyperbandPruner(
        min_resource=min(max(s.min_resource, s.prune_warmup), s.max_resource),
        max_resource=max(s.max_resource, s.min_resource), reduction_factor=3),
    "none": lambda s: _optuna().pruners.NopPruner(),
}
"""`--pruner` name -> the pruner for a study's settings"""


def make_sampler(s: StudySettings, worker: int = 0, trials_so_far: int = 0):
    """The study's sampler for one process. A fixed `--sampler-seed` is mixed with the worker index
    and the number of trials already in the study: parallel workers, or a resumed study, would
    otherwise replay the very same draws."""
    seed = s.sampler_seed
    if seed is not None:
        seed = random.Random(f"{seed}/{worker}/{trials_so_far}").getrandbits(32)
    return SAMPLERS[s.sampler](seed)


# ---------------------------------------------------------------- storages


def open_storage(url: str, on_stale: Callable | None = None):
    """`tracking.stores.open_storage` with this module's heartbeat settings, read when called."""
    return stores.open_storage(url, on_stale, heartbeat_s=HEARTBEAT_S, grace_s=GRACE_S)


class ParentRunLog:
    """Optuna callback: each finished trial's value and the best so far on the study's parent run."""

    def __init__(self, client, run_id: str | None, metric: str):
        self.client, self.run_id, self.metric = client, run_id, metric

    def __call__(self, study, trial) -> None:
        if self.client is None or self.run_id is None or trial.state.name != "COMPLETE":
            return
        values = {f"quality/trial_{self.metric}": trial.value}
        try:
            values[f"quality/study_best_{self.metric}"] = study.best_value
        except ValueError:  # no completed trial visible yet
            pass
        log_metrics(self.client, self.run_id, values, step=trial.number)


# ---------------------------------------------------------------- the worker loop


def claim(study):
    """A waiting trial of `study`, now RUNNING and owned by this process, or None when no trial
    waits. Retries of stopped trials come first, then the queue's order. Atomic in every Optuna
    storage: two workers never get the same trial, and no worker makes a trial beyond the queue (see
    `study.optuna_adapter`)."""
    trial = claim_waiting(study, first=lambda t: "retry_of" in t.user_attrs)
    if trial is not None:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
    return trial


class Heartbeat:
    """While a trial runs, a thread records its heartbeat in the storage (RDB storages only; on the
    others a dead process is recognised by its process id)."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def _beat(self) -> None:
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a storage hiccup must not end the trial; the next beat may pass
                pass
            if self.stop.wait(HEARTBEAT_S):
                return

    def __enter__(self):
        if getattr(self.storage, "get_heartbeat_interval", lambda: None)() is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


class Retry:
    """Ends a trial whose training stopped from outside (its process died, Ctrl-C, its data gone):
    the trial is FAIL in Optuna already; here its MLflow run is ended as FAILED with the reason, and
    a retry with the same parameters is enqueued that resumes from the trial's last checkpoint.
    Doubles as Optuna's heartbeat-stale-trial callback."""

    def __init__(self, ctx: TrialContext, client=None):
        self.ctx, self.client = ctx, client
        self.retried: list[int] = []
        """numbers of the trials handled, in order"""

    def __call__(self, study, trial, reason: str | None = None, died: bool = True) -> None:
        self.retried.append(trial.number)
        reason = reason or f"its worker stopped sending heartbeats (none for {GRACE_S} s)"
        run_id = trial.user_attrs.get("mlflow_run_id")
        if self.client is not None and run_id:
            try:
                ml.fail_run(self.client, run_id, f"stopped: {reason}", {ml.OPTUNA_STATE: "FAIL"})
            except Exception as e:  # the retry matters more than the old run's status
                print(f"warning: could not mark MLflow run {run_id} failed: {e}", file=sys.stderr)
        retries = int(trial.user_attrs.get("retries", 0)) + died
        if retries > MAX_RETRIES:
            print(f"warning: trial {trial.number}'s parameters killed their process {retries} times; "
                  "a fresh trial takes the slot", file=sys.stderr)
            study.enqueue_trial({}, user_attrs={"replaces": trial.number})
            return
        attrs = {"retry_of": trial.number, "origin": trial.user_attrs.get("origin", trial.number),
                 "retries": retries, "retry_reason": reason, "baseline": trial.user_attrs.get("baseline", ""),
                 **self.resume_point(trial)}
        study.enqueue_trial(trial.params, user_attrs=attrs)

    def resume_point(self, trial) -> dict:
        """Where a retry of `trial` resumes: its own last checkpoint, else the one it resumed from
        itself (still on disk until a retry finishes); the epoch when the trial recorded it."""
        attrs = trial.user_attrs
        last = trial_dir(self.ctx.checkpoints, self.ctx.study_name, trial.number) / "last.pt"
        if last.is_file():
            point = {"resume_from": str(last), "resume_trial": trial.number}
            epoch = attrs.get(CHECKPOINT_EPOCH)
        elif attrs.get("resume_from"):
            point = {"resume_from": attrs["resume_from"], "resume_trial": attrs["resume_trial"]}
            epoch = attrs.get("resume_epoch")
        else:
            return {}
        return {**point, **({"resume_epoch": epoch} if epoch is not None else {})}


def stop_note(study) -> str:
    """What happens to the interrupted trials when the command runs again (their retries wait in
    `study`'s queue and run before any other trial)."""
    from optuna.trial import TrialState

    waiting = [t.user_attrs for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if "retry_of" in t.user_attrs]
    if not waiting:
        return "no trial had started"
    parts = []
    for a in waiting:
        name = f"trial {a.get('origin', a['retry_of'])}"
        if not a.get("resume_from"):
            parts.append(f"{name} starts over (no checkpoint yet)")
        else:
            parts.append(f"{name} resumes from its checkpoint" + (
                f" at epoch {a['resume_epoch']}" if a.get("resume_epoch") is not None else ""))
    return "; ".join(parts) + ", before any new trial"


def fail_dead_trials(study, retry: Retry) -> list[int]:
    """Fail the RUNNING trials whose process is gone and enqueue their retries; returns their
    numbers. Heartbeats (RDB storages) find them anywhere after `GRACE_S`; a trial started on this
    machine by a process that no longer exists is found at once, on any storage."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    seen = len(retry.retried)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning on every call
        fail_stale_trials(study)  # calls `retry` (the storage's stale-trial callback) for each
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None or _alive(int(pid)):
            continue
        failed = fail_running(study, t)
        if failed is not None:  # else another worker got there first
            retry(study, failed, f"its process {pid} on {host} died")
    return retry.retried[seen:]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def run_trial(study, trial, objective: Objective, retry: Retry, callbacks=()) -> None:
    """Run one claimed trial and tell Optuna how it ended. A training stopped from outside
    (interrupt, data gone) is failed and retried later; the exception propagates."""
    import optuna  # heavy: see _optuna
    from optuna.trial import TrialState

    try:
        with Heartbeat(storage_of(study), trial_id(trial)):
            value = objective(trial)
        frozen = study.tell(trial, value)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    except TrialFailed:
        frozen = study.tell(trial, state=TrialState.FAIL)
    except Contended as e:
        # Counted like a death (MAX_RETRIES), so a configuration too large for its share ends.
        retry(study, study.tell(trial, state=TrialState.FAIL), str(e), died=True)
        return
    except BaseException as e:
        # Not the configuration's fault (or not known to be): give the slot back as a retry.
        reason = mask_text("interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {first_line(e)}")
        trial.set_user_attr("stopped", reason)
        retry(study, study.tell(trial, state=TrialState.FAIL), reason, died=False)
        raise
    for callback in callbacks:
        callback(study, frozen)


def run_trials(s: StudySettings, *, worker: int = 0, progress=None) -> None:
    """Claim and run waiting trials of the (existing) study in this process until none waits."""
    import optuna  # heavy: see _optuna

    quiet_libraries()
    client = connect(s.tracking_uri)
    retry = Retry(s.ctx, client)
    storage = open_storage(s.storage, on_stale=retry)
    so_far = len(storage.get_all_trials(storage.get_study_id_from_name(s.study_name), deepcopy=False))
    study = optuna.load_study(study_name=s.study_name, storage=storage,
                              sampler=make_sampler(s, worker, so_far), pruner=PRUNERS[s.pruner](s))
    callbacks = [ParentRunLog(client, s.ctx.parent_run_id, s.metric)]
    if progress is not None:
        callbacks.append(progress)
    objective = Objective(s.ctx, client, progress=progress)
    base = s.ctx.base
    while True:
        fail_dead_trials(study, retry)
        check_source(base.data, base.data_root)  # no new trial on data that has gone
        trial = claim(study)
        if trial is None:
            return
        run_trial(study, trial, objective, retry, callbacks)


def stop_on_signals() -> None:
    """SIGTERM (and SIGINT) stop the process like Ctrl-C: the running trial is marked and retried
    later. Further signals are ignored meanwhile, so the clean-up itself is not cut short."""

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cap_gpu_memory(s: StudySettings) -> bool:
    """K workers sharing one GPU: each gets 0.95/K of the study's device, so one large trial runs out
    of memory alone (and is retried, see `Contended`) instead of starving the others. Nothing for a
    CPU study, which must not open a CUDA context at all. Returns whether a cap was set."""
    device = s.ctx.base.device
    if s.workers <= 1 or device == "cpu":
        return False
    if not torch.cuda.is_available():
        return False
    target = torch.device("cuda" if device == "auto" else device)
    torch.cuda.set_per_process_memory_fraction(0.95 / s.workers, target)
    return True


def worker_main(s: StudySettings, worker: int, errors) -> None:
    """Entry point of one `--workers` process; a user error goes to the parent through `errors`."""
    stop_on_signals()
    use_worker_threads(s.workers)
    cap_gpu_memory(s)
    try:
        run_trials(s, worker=worker)
    except KeyboardInterrupt:
        sys.exit(130)  # the parent reports the interruption once
    except UserError as e:
        errors.put(str(e))
        sys.exit(2)
