"""The one place gan-study uses Optuna beyond its public API, and why.

A study holds exactly `--trials` slots, queued as WAITING trials; a worker must take a waiting trial
atomically and must never create one. Optuna's public `Study.ask()` pops the oldest waiting trial,
but creates a new trial when the queue is empty: with several workers racing for the last waiting
trial, every loser would add a trial beyond the target. So a waiting trial is claimed the way
`ask()` pops it: the storage's `set_trial_state_values(trial_id, state=RUNNING)`, atomic in every
Optuna storage (it refuses a trial that is no longer WAITING), then wrapped in `optuna.Trial` as
`ask()` does. Failing a dead process's RUNNING trial uses the same switch, and the heartbeat thread
needs the trial's storage id. `tests/test_optuna_adapter.py` pins each behaviour relied on here, so
an Optuna release that changes one fails there first.
"""

from __future__ import annotations


def storage_of(study):
    """The storage object behind `study`."""
    return study._storage


def trial_id(trial) -> int:
    """Storage id of an `optuna.Trial` or `FrozenTrial`."""
    return trial._trial_id


def claim_waiting(study, first=None):
    """The oldest waiting trial of `study` (among those `first(frozen_trial)` is true of, when any
    are), switched to RUNNING by this process, or None when none waits. Two processes never get the
    same trial, and no trial is created."""
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = storage_of(study)
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    for t in sorted(waiting, key=lambda t: not first(t)) if first is not None else waiting:
        try:
            if not storage.set_trial_state_values(trial_id(t), state=TrialState.RUNNING):
                continue  # another process claimed it first
        except UpdateFinishedTrialError:
            continue
        return optuna.Trial(study, trial_id(t))
    return None


def fail_running(study, frozen):
    """Switch another process's RUNNING trial to FAIL; the failed FrozenTrial, or None when some
    process finished it first."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = storage_of(study)
    try:
        if not storage.set_trial_state_values(trial_id(frozen), state=TrialState.FAIL):
            return None
    except UpdateFinishedTrialError:
        return None
    return storage.get_trial(trial_id(frozen))
