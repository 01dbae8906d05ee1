"""The Optuna behaviour `study.optuna_adapter` relies on, pinned on each storage kind a study uses:
claiming takes waiting trials only, once each, oldest first, with their enqueued parameters, and
creates none; failing a RUNNING trial works once, and not on a finished one; the storage id reaches
the heartbeat."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from study.engine import open_storage
from study.optuna_adapter import claim_waiting, fail_running, storage_of, trial_id


@pytest.fixture(params=["sqlite", "journal"])
def study(request, tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db" if request.param == "sqlite" else str(tmp_path / "optuna.journal")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s", storage=open_storage(url))


def test_claim_takes_each_waiting_trial_once_and_creates_none(study):
    study.enqueue_trial({"x": 0.25}, user_attrs={"baseline": "b"})
    study.enqueue_trial({})
    first, second = claim_waiting(study), claim_waiting(study)
    assert (first.number, second.number) == (0, 1)
    assert first.suggest_float("x", 0.0, 1.0) == 0.25 and first.user_attrs == {"baseline": "b"}
    assert 0.0 <= second.suggest_float("x", 0.0, 1.0) <= 1.0  # an empty slot: the sampler fills it
    assert claim_waiting(study) is None
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.RUNNING]
    # A trial already claimed cannot be claimed again: the storage refuses the switch.
    assert storage_of(study).set_trial_state_values(trial_id(first), state=TrialState.RUNNING) is False
    frozen = study.tell(first, 0.5)
    assert frozen.state == TrialState.COMPLETE and trial_id(frozen) == trial_id(first)


def test_fail_running_once_and_never_a_finished_trial(study):
    study.enqueue_trial({})
    study.enqueue_trial({})
    running, done = claim_waiting(study), claim_waiting(study)
    study.tell(done, 1.0)
    frozen = study.get_trials()[running.number]
    failed = fail_running(study, frozen)
    assert failed.state == TrialState.FAIL and failed.number == running.number
    assert fail_running(study, frozen) is None  # another worker got there first
    assert fail_running(study, study.get_trials()[done.number]) is None
    assert study.get_trials()[done.number].state == TrialState.COMPLETE
