"""Faults and bad input, through the CLI: a study killed with SIGKILL or stopped with SIGTERM resumes
from the trial's last checkpoint; bad flags, stores and space files give one line on stderr and leave
the stores as they were; a data folder deleted mid-study stops it; a full disk fails one trial, not
the study. Counts come from the stores themselves (Optuna storage, MLflow tracking database)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.run import finished_count, main
from test_study_run import STUDY, load, quick, trial_runs

REPO = Path(__file__).resolve().parents[1]


def stores(tmp_path) -> list[str]:
    return ["--storage", f"sqlite:///{tmp_path}/optuna.db", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
            "--checkpoints", str(tmp_path / "ck")]


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_trial(proc: subprocess.Popen, tmp_path, number: int, reached, what: str, timeout: float = 240,
                   poll: float = 0.2):
    """Poll the Optuna storage until `reached(trial)` is truthy for trial `number`; returns its value.
    Fails, killing `proc`, when `proc` ends or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            trials = {t.number: t for t in load(tmp_path).get_trials(deepcopy=False)}
        except Exception:  # the study or its tables may not exist yet
            trials = {}
        got = reached(trials[number]) if number in trials else None
        if got:
            return got
        time.sleep(poll)
    proc.kill()
    pytest.fail(f"trial {number} did not {what} in {timeout} s")


def wait_for_epochs(proc: subprocess.Popen, tmp_path, number: int, epochs: int, timeout: float = 240) -> None:
    """Wait until trial `number` has reported `epochs` values."""
    wait_for_trial(proc, tmp_path, number, lambda t: len(t.intermediate_values) >= epochs,
                   f"reach epoch {epochs}", timeout)


def check_consistent(tmp_path, target: int) -> dict:
    """The stores agree: exactly `target` finished trials, each trial with one MLflow run of the
    matching status, no run left RUNNING. Returns the counts the closing note reports."""
    study = load(tmp_path)
    trials = study.get_trials(deepcopy=False)
    runs = trial_runs(tmp_path)
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}
    assert finished_count(study) == target
    assert sorted(runs) == sorted(t.number for t in trials)  # one run per trial, none twice
    for t in trials:
        assert runs[t.number].info.status == status[t.state.name], t.number
        assert runs[t.number].info.run_id == t.user_attrs["mlflow_run_id"]
    return {"trials": len(trials), "finished": finished_count(study),
            "lost": target - finished_count(study), "duplicated": len(trials) - len(set(t.number for t in trials))}


def epochs_logged(tmp_path, run_id: str) -> list[int]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    return sorted(m.step for m in client.get_metric_history(run_id, "train/loss_d"))


# ---------------------------------------------------------------- crash and resume


def signalled_mid_trial(tmp_path, data_root, sig: int, epochs: int) -> tuple[list[str], subprocess.Popen]:
    """A 2-trial study of 10-epoch trials, sent `sig` once its first trial has reported `epochs`."""
    args = quick(data_root, "--trials", "2", "--epochs", "10", *stores(tmp_path))
    proc = start(args, tmp_path)
    wait_for_epochs(proc, tmp_path, 0, epochs)
    proc.send_signal(sig)
    return args, proc


@pytest.mark.slow
def test_a_study_killed_with_sigkill_resumes_the_trial_from_its_last_checkpoint(tmp_path, data_root):
    args, proc = signalled_mid_trial(tmp_path, data_root, signal.SIGKILL, epochs=3)
    proc.wait()
    killed = load(tmp_path).trials[0]
    assert killed.state == TrialState.RUNNING and trial_runs(tmp_path)[0].info.status == "RUNNING"
    last = tmp_path / "ck" / STUDY / "trial-000" / "last.pt"
    resumable = torch.load(last, weights_only=True)["epoch"]
    assert resumable >= 2  # saved after each epoch's report: 3, or 2 if killed in between

    t0 = time.monotonic()
    out = subprocess.run(proc.args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
                         text=True, capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "trial 0: its worker died" in out.stderr

    study = load(tmp_path)
    trials = {t.number: t for t in study.trials}
    assert trials[0].state == TrialState.FAIL and "fail_reason" not in trials[0].user_attrs
    retry = next(t for t in trials.values() if t.user_attrs.get("retry_of") == 0)
    assert retry.params == trials[0].params and retry.user_attrs["baseline"] == trials[0].user_attrs["baseline"]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_from_epoch"] == resumable
    assert sorted(retry.intermediate_values) == list(range(1, 11))
    # The killed trial's reports up to the checkpoint carry over unchanged.
    assert all(retry.intermediate_values[e] == trials[0].intermediate_values[e] for e in range(1, resumable + 1))

    runs = trial_runs(tmp_path)
    assert runs[0].info.status == "FAILED" and "died" in runs[0].data.tags["reason"]
    assert runs[retry.number].data.tags["resumed_from_epoch"] == str(resumable)
    assert epochs_logged(tmp_path, runs[retry.number].info.run_id) == list(range(1, 11))  # each epoch once
    counts = check_consistent(tmp_path, 2)
    assert counts["lost"] == 0 and counts["duplicated"] == 0
    assert not last.exists()  # the retry finished: nothing left to resume
    print(f"\nkill -9: resumed from epoch {resumable}; {counts}; resume took {time.monotonic() - t0:.0f} s")


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path, data_root):
    from mlflow import MlflowClient

    args, proc = signalled_mid_trial(tmp_path, data_root, signal.SIGTERM, epochs=2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "to resume, run the same command again" in err and "Traceback" not in err

    study = load(tmp_path)
    first, queued = study.trials[0], [t for t in study.trials if t.state == TrialState.WAITING]
    assert first.state == TrialState.FAIL and first.user_attrs["stopped"] == "interrupted"
    assert any(t.user_attrs.get("retry_of") == 0 and t.user_attrs.get("resume_from") for t in queued)
    run = trial_runs(tmp_path)[0]
    assert run.info.status == "FAILED" and run.data.tags["optuna_state"] == "FAIL"

    assert main(args) == 0
    retry = next(t for t in load(tmp_path).trials if t.user_attrs.get("retry_of") == 0)
    assert retry.user_attrs["resumed_from_epoch"] >= 1 and retry.state == TrialState.COMPLETE
    artifacts = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").list_artifacts(retry.user_attrs["mlflow_run_id"],
                                                                              "checkpoints")
    assert [a.path for a in artifacts] == ["checkpoints/best.pt"]
    assert not (tmp_path / "ck" / STUDY / "trial-000").exists()  # the stopped trial's files went with it
    counts = check_consistent(tmp_path, 2)
    assert counts["lost"] == 0 and counts["duplicated"] == 0


def wait_for_checkpoint(proc: subprocess.Popen, tmp_path, number: int, epoch: int, timeout: float = 240) -> int:
    """Wait until trial `number` records a resumable checkpoint at `epoch` or later; returns that epoch."""
    def saved(trial):
        at = trial.user_attrs.get("checkpoint_epoch", 0)
        return at if at >= epoch else None

    return wait_for_trial(proc, tmp_path, number, saved, f"save a checkpoint at epoch {epoch}", timeout, poll=0.05)


def test_a_signal_during_a_checkpoint_write_stays_a_stop_and_keeps_the_old_checkpoint(tmp_path):
    """Seen once under load: SIGTERM landed inside torch.save, whose zip writer then failed on the
    half-written file, and the study took the RuntimeError for a crash (exit 1, not 130)."""
    from gans.cache import atomic_write

    path = tmp_path / "last.pt"
    torch.save({"epoch": 1}, path)

    def cut_short(f):
        f.write(b"half")
        try:
            raise KeyboardInterrupt("SIGTERM")
        finally:
            raise RuntimeError("unexpected pos 1982720 vs 1982672")  # the writer's clean-up failing

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        atomic_write(path, cut_short)
    assert torch.load(path) == {"epoch": 1} and [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    with pytest.raises(RuntimeError, match="disk"):  # other failures stay what they are
        atomic_write(path, lambda f: (_ for _ in ()).throw(RuntimeError("disk full")))


@pytest.mark.slow
def test_ctrl_c_before_the_first_epoch_checkpoint_resumes_that_trial_first(tmp_path, data_root, domain, capsys):
    domain("mnist")  # the study's extractor, trained once per test session (the command finds it cached)
    # Evaluated (and checkpointed by epoch) only at epoch 8; by wall time after every epoch.
    args = quick(data_root, "--trials", "2", "--epochs", "8", "--eval-every", "8", "--batch-size", "200",
                 "--hidden", "256", *stores(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GAN_STUDY_CHECKPOINT_S": "0.01"}
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_checkpoint(proc, tmp_path, 0, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped = load(tmp_path).trials[0]
    saved = stopped.user_attrs["checkpoint_epoch"]
    assert 2 <= saved < 8 and stopped.state == TrialState.FAIL and not stopped.intermediate_values
    # The stop message says what the rerun will do, with the epoch it resumes from.
    assert f"trial 0 resumes from its checkpoint at epoch {saved}, before any new trial" in err, err
    assert "to resume, run the same command again" in err and "Traceback" not in err

    assert main(args) == 0
    err = capsys.readouterr().err
    study = load(tmp_path)
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == 0)
    ran = sorted((t for t in study.trials if t.number > 0), key=lambda t: t.datetime_start)
    assert ran[0].number == retry.number  # the retry ran before the waiting trial 1
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["resumed_from_epoch"] == saved
    assert epochs_logged(tmp_path, retry.user_attrs["mlflow_run_id"]) == list(range(1, 9))
    # The console names it as the trial it continues, before trial 001's line.
    head = f"trial 000 (retry {retry.number:03d}, from epoch {saved}) [mlp-gan-100] done"
    assert head in err and err.index(head) < err.index("trial 001"), err
    counts = check_consistent(tmp_path, 2)
    assert counts["lost"] == 0 and counts["duplicated"] == 0


@pytest.mark.slow
def test_workers_on_a_journal_file_finish_exactly_the_target(tmp_path, data_root):
    args = quick(data_root, "--trials", "5", "--workers", "3", "--storage", str(tmp_path / "optuna.journal"),
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--checkpoints", str(tmp_path / "ck"))
    assert main(args) == 0
    study = optuna.load_study(study_name=STUDY, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))))
    assert finished_count(study) == 5 and len(study.trials) == 5
    runs = trial_runs(tmp_path)
    assert sorted(runs) == list(range(5)) and {r.info.status for r in runs.values()} <= {"FINISHED", "KILLED"}
    assert len({t.user_attrs["pid"] for t in study.trials}) > 1  # shared out, not run by one worker


# ---------------------------------------------------------------- bad input


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


@pytest.mark.parametrize("storage, needle", [
    ("postgresql://gan:pw-secret@127.0.0.1:1/optuna", "cannot open"),
    ("nosuchdb://x/y", "cannot open"),
])
def test_unreachable_or_malformed_storage_is_one_line(tmp_path, data_root, capsys, storage, needle):
    assert main(quick(data_root, "--storage", storage, "--tracking-uri", f"sqlite:///{tmp_path}/m.db")) == 2
    line = one_error_line(capsys, "--storage", needle)
    assert "pw-secret" not in line


def test_a_tracking_uri_that_cannot_be_written_is_one_line_and_touches_no_store(tmp_path, data_root, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    args = quick(data_root, "--storage", f"sqlite:///{tmp_path}/optuna.db",
                 "--tracking-uri", f"sqlite:///{tmp_path}/a-file/mlflow.db")
    assert main(args) == 2
    one_error_line(capsys, "--tracking-uri", "cannot write")
    assert not (tmp_path / "optuna.db").exists()


def test_a_study_made_for_the_other_direction_or_metric_is_refused_and_kept(tmp_path, data_root, capsys):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    other = optuna.create_study(study_name=STUDY, storage=storage, direction="maximize")
    other.add_trial(optuna.trial.create_trial(value=1.0))
    assert main(quick(data_root, *stores(tmp_path))) == 2
    one_error_line(capsys, "--study-name", "maximize")
    assert len(load(tmp_path).trials) == 1 and load(tmp_path).user_attrs == {}

    args = quick(data_root, "--trials", "1", "--epochs", "1", "--study-name", "s", *stores(tmp_path))
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--metric", "kid"]) == 2
    one_error_line(capsys, "--metric kid", "--metric fid")
    assert len(load(tmp_path, "s").trials) == 1


@pytest.mark.parametrize("extra, needle", [
    (["--trials", "0"], "--trials"),
    (["--trials", "-3"], "--trials"),
    (["--trials", "2", "--workers", "3"], "--workers 3"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
])
def test_bad_counts_are_one_line(tmp_path, data_root, capsys, extra, needle):
    assert main(quick(data_root, *extra, *stores(tmp_path))) == 2
    one_error_line(capsys, needle)
    assert not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize("text, needle", [
    ("lr_gee: [1.0e-4, 1.0e-3]\n", "lr_gee"),
    ("epochs: [600, 100]\n", "epochs"),
    ("augment: {choices: []}\n", "augment"),
])
def test_bad_space_files_are_one_line(tmp_path, data_root, capsys, text, needle):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    assert main(quick(data_root, "--space", str(space), *stores(tmp_path))) == 2
    one_error_line(capsys, "space.yaml", needle)
    assert not (tmp_path / "optuna.db").exists()


# ---------------------------------------------------------------- faults while running


@pytest.mark.slow
def test_a_data_folder_deleted_mid_study_fails_the_trial_and_starts_no_other(tmp_path, data_root):
    root = tmp_path / "data"
    shutil.copytree(data_root / "MNIST", root / "MNIST")
    args = quick(root, "--trials", "3", "--epochs", "20", *stores(tmp_path))
    proc = start(args, tmp_path)
    wait_for_epochs(proc, tmp_path, 0, 2)
    shutil.rmtree(root / "MNIST")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("error: --data-root") and "is gone" in err
    study = load(tmp_path)
    first = study.trials[0]
    assert first.state == TrialState.FAIL and "is gone" in first.user_attrs["stopped"]
    assert [t.state for t in study.trials[1:]] == [TrialState.WAITING] * (len(study.trials) - 1)
    runs = trial_runs(tmp_path)
    assert list(runs) == [0] and runs[0].info.status == "FAILED" and "is gone" in runs[0].data.tags["reason"]


def test_a_full_disk_fails_the_trial_and_the_study_goes_on(tmp_path, data_root, capsys, monkeypatch):
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    real = LocalArtifactRepository.log_artifact
    calls = []

    def full_once(self, local_file, artifact_path=None):
        if artifact_path == "checkpoints" and not calls:
            calls.append(local_file)
            raise OSError(errno.ENOSPC, "No space left on device", local_file)
        return real(self, local_file, artifact_path)

    monkeypatch.setattr(LocalArtifactRepository, "log_artifact", full_once)
    assert main(quick(data_root, "--trials", "3", "--epochs", "1", *stores(tmp_path))) == 0
    study = load(tmp_path)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(calls) == 1 and len(failed) == 1 and "No space left on device" in failed[0].user_attrs["fail_reason"]
    assert "No space left on device" in trial_runs(tmp_path)[failed[0].number].data.tags["reason"]
    counts = check_consistent(tmp_path, 3)
    assert counts["lost"] == 0 and counts["duplicated"] == 0


# ---------------------------------------------------------------- security


def test_study_names_cannot_lead_files_out_of_the_checkpoint_folder(tmp_path):
    from study.objective import trial_dir

    for name in ("../../etc", "/abs/path", "a/../../b", "..", "."):
        folder = trial_dir(tmp_path / "ck", name, 7).resolve()
        assert folder.is_relative_to((tmp_path / "ck").resolve()), (name, folder)


def test_passwords_are_masked_in_what_the_tool_prints():
    from tracking.urls import mask_text, mask_url
    from study.run import commands, parse_args, build_settings

    url = "postgresql://gan:pw%40secret@db.example:5432/optuna"
    assert mask_url(url) == "postgresql://gan:***@db.example:5432/optuna"
    assert "secret" not in mask_text(f"could not connect to {url} as gan/pw@secret", url)
    s, _ = build_settings(parse_args(["--preset", "quick", "--storage", url,
                                      "--tracking-uri", "http://u:tok-secret@mlflow.example:5000"]))
    assert not any("secret" in line for line in commands(s).values())


def test_a_trial_without_heartbeat_is_failed_everywhere_and_retried_with_its_params(tmp_path, monkeypatch):
    from optuna.distributions import FloatDistribution

    from study import engine
    from study.objective import TrialContext
    from study.run import build_settings, parse_args
    from tracking import mlflow_log as ml

    monkeypatch.setattr(engine, "HEARTBEAT_S", 1)
    monkeypatch.setattr(engine, "GRACE_S", 1)
    s, searched = build_settings(parse_args(["--preset", "quick"]))
    client = ml.connect(f"sqlite:///{tmp_path}/mlflow.db")
    run = ml.RunLogger(client, ml.ensure_experiment(client, "x"), "trial-000")
    retry = engine.Retry(TrialContext("x", s.ctx.base, searched, "fid", str(tmp_path / "ck")), client)
    storage = engine.open_storage(f"sqlite:///{tmp_path}/optuna.db", on_stale=retry)
    study = optuna.create_study(study_name="x", storage=storage)
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.RUNNING, params={"lr_g": 3e-4}, distributions={"lr_g": FloatDistribution(1e-5, 1e-2)},
        user_attrs={"mlflow_run_id": run.run_id, "host": "another-machine", "pid": 1}))
    storage.record_heartbeat(study.trials[0]._trial_id)
    assert engine.fail_dead_trials(study, retry) == []  # still within its grace period
    time.sleep(2.5)
    assert engine.fail_dead_trials(study, retry) == [0]
    dead, queued = study.trials
    assert dead.state == TrialState.FAIL and queued.state == TrialState.WAITING
    assert queued.params == {} and queued.system_attrs["fixed_params"] == {"lr_g": 3e-4}
    assert queued.user_attrs["retry_of"] == 0 and "heartbeats" in queued.user_attrs["retry_reason"]
    logged = client.get_run(run.run_id)
    assert logged.info.status == "FAILED" and "heartbeats" in logged.data.tags["reason"]
    assert engine.fail_dead_trials(study, retry) == []  # retried once only


def test_parameters_that_keep_killing_their_process_are_given_up(tmp_path):
    import socket

    from study import engine
    from study.objective import TrialContext
    from study.run import build_settings, parse_args

    s, searched = build_settings(parse_args(["--preset", "quick"]))
    retry = engine.Retry(TrialContext("x", s.ctx.base, searched, "fid", str(tmp_path / "ck")))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer exists
    study = optuna.create_study(study_name="x", storage=engine.open_storage(f"sqlite:///{tmp_path}/o.db"))
    for retries in (0, engine.MAX_RETRIES):
        study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={
            "host": socket.gethostname(), "pid": gone.pid, "retries": retries}))
    assert engine.fail_dead_trials(study, retry) == [0, 1]
    again, fresh = study.trials[2:]
    assert again.user_attrs["retry_of"] == 0 and again.user_attrs["retries"] == 1
    assert fresh.user_attrs == {"replaces": 1} and fresh.state == TrialState.WAITING
