"""End to end: `python -m study.run` on CPU with real MNIST, read back through independent Optuna and
MLflow clients. Stores go to tmp_path (the CLI runs with tmp_path as its working folder)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.run import main

STUDY = "quick-mlp-mnist"
MLFLOW_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


@pytest.fixture(autouse=True)
def one_thread():
    # The test machine's cores are shared; oversubscribed BLAS threads make tiny MLPs crawl.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def quick(data_root, *extra: str, stages: bool = False) -> list[str]:
    """A quick-preset command; without `stages` it stops after the search (no horizon runs, no report)."""
    return ["--preset", "quick", "--data-root", str(data_root), "--device", "cpu", "--no-progress",
            "--sampler-seed", "0", *([] if stages else ["--confirm-top", "0", "--no-report"]), *extra]


def load(tmp_path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/optuna.db")


def runs(tmp_path, name: str = STUDY):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    return mlflow.search_runs(experiment_names=[name], output_format="list")


def trial_runs(tmp_path, name: str = STUDY) -> dict[int, object]:
    return {int(r.data.tags["trial_number"]): r for r in runs(tmp_path, name) if r.data.tags.get("role") == "trial"}


def finished(study) -> list:
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))


@pytest.mark.slow
def test_quick_study_logs_every_trial_and_resumes_to_the_target(tmp_path, data_root, monkeypatch, capsys):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default stores live in the working folder
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # trials of a second get samples
    assert main(quick(data_root, "--trials", "3")) == 0
    out = capsys.readouterr().out
    assert "top" in out and "mlflow ui --backend-store-uri" in out and "optuna trials --study-name" in out
    assert "#/experiments/1/runs?viewStateShareKey=trials-by-fid&workflowType=machine_learning" in out
    assert (tmp_path / "optuna.db").exists() and (tmp_path / "mlflow.db").exists()

    study = load(tmp_path)
    assert len(study.trials) == len(finished(study)) == 3
    baselines = [t for t in study.trials if t.user_attrs.get("baseline")]
    assert [t.number for t in baselines] == [0] and baselines[0].params["batch_size"] == 200
    assert study.user_attrs["baselines"] == ["mlp-gan-100"] and study.user_attrs["metric"] == "fid"

    all_runs = runs(tmp_path)
    parent = [r for r in all_runs if r.data.tags.get("role") == "study"]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    by_number = trial_runs(tmp_path)
    assert sorted(by_number) == [0, 1, 2]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    # MLflow's monitor samples every 0.2 s here: a trial of a second gets CPU and memory figures
    # (a very short one may end before its first sample).
    assert any("system/cpu_utilization_percentage" in r.data.metrics for r in by_number.values())
    for t in study.trials:
        run = by_number[t.number]
        assert run.info.run_name == f"trial-{t.number:03d}"
        assert run.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
        assert run.data.tags["optuna_state"] == t.state.name and run.info.status == MLFLOW_STATUS[t.state.name]
        assert run.data.tags["baseline"] == t.user_attrs.get("baseline", "")
        # The trial's config, typed, in the study; the same values as strings in MLflow for the UI.
        config = t.user_attrs["config"]
        assert config["lr_g"] == t.params["lr_g"] and isinstance(config["lr_g"], float) and config["epochs"] == 3
        assert run.data.params == {k: str(v) for k, v in config.items()}
        done = max(m.step for m in client.get_metric_history(run.info.run_id, "train/loss_d"))
        # Grouped for the chart view (quality/, train/, speed/); the evaluation's constants are tags.
        assert {k.split("/")[0] for k in run.data.metrics} <= {"quality", "train", "speed", "system"}
        assert "quality/fid" in run.data.metrics and "num_fake" not in run.data.metrics
        assert run.data.tags["num_fake"] == "300" and run.data.tags["feature_dim"] == "128"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_d")] == list(range(1, done + 1))
        for key in ("train/loss_g", "train/d_real", "train/d_fake", "speed/images_per_s"):
            assert len(client.get_metric_history(run.info.run_id, key)) == done
        fids = client.get_metric_history(run.info.run_id, "quality/fid")
        assert [m.step for m in fids] == list(range(1, done + 1))  # --eval-every 1
        assert {m.step: m.value for m in fids} == pytest.approx(t.intermediate_values)
        assert not {"best_epoch", "best_value", "epochs_done"} & set(t.user_attrs)  # derived, not stored
        if t.state == TrialState.COMPLETE:
            assert t.value == pytest.approx(fids[-1].value)  # the value is the metric at the last epoch
        images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
        for step in range(1, done + 1):
            assert any(f"samples+step+{step}+" in p and p.endswith(".png") for p in images)
        assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/best.pt"]

    # An independent client: the optuna CLI reads the same storage.
    optuna_cli = shutil.which("optuna") or pytest.fail("the optuna command is not installed")
    listing = subprocess.run([optuna_cli, "trials", "--study-name", STUDY, "--storage",
                              f"sqlite:///{tmp_path}/optuna.db", "-f", "json"],
                             capture_output=True, text=True, check=True)
    assert listing.stdout.count('"number"') == 3

    # The same command with a higher target adds exactly the missing trials; baselines stay single.
    assert main(quick(data_root, "--trials", "5")) == 0
    study = load(tmp_path)
    assert len(finished(study)) == 5 and len(study.trials) == 5
    assert [t.number for t in study.trials if t.user_attrs.get("baseline")] == [0]
    assert sorted(trial_runs(tmp_path)) == [0, 1, 2, 3, 4]
    assert len([r for r in runs(tmp_path) if r.data.tags.get("role") == "study"]) == 1

    # Already at the target: nothing runs.
    assert main(quick(data_root, "--trials", "5")) == 0
    assert len(load(tmp_path).trials) == 5


@pytest.mark.slow
def test_median_pruner_stops_a_hopeless_trial(tmp_path, data_root):
    name = "prune"
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name=name, storage=storage)
    # Two earlier trials that reached a near-perfect FID at every epoch: any real 1-epoch MLP GAN is
    # far worse than their median, so the median pruner must stop it at its first report.
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(value=1e-3, intermediate_values={1: 1e-3, 2: 1e-3, 3: 1e-3}))
    args = quick(data_root, "--trials", "3", "--study-name", name, "--storage", storage,
                 "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--checkpoints", str(tmp_path / "ck"),
                 "--pruner", "median")
    assert main(args) == 0
    trial = load(tmp_path, name).trials[2]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    assert trial.user_attrs["prune_reason"].startswith("pruned at epoch 1 of 3: fid")
    run = trial_runs(tmp_path, name)[2]
    assert run.info.status == "KILLED" and run.data.tags["optuna_state"] == "PRUNED"
    assert run.data.tags["reason"] == trial.user_attrs["prune_reason"]


@pytest.mark.slow
def test_diverging_trials_are_failed_with_their_reason_and_the_study_completes(tmp_path, data_root, capsys):
    name = "nan"
    space = tmp_path / "space.yaml"
    # Adam moves every weight by about lr per step: at 1e30 the MLP's activations overflow at once.
    space.write_text("lr_g: 1.0e30\nlr_d: 1.0e30\n")
    args = quick(data_root, "--trials", "2", "--study-name", name, "--space", str(space),
                 "--storage", f"sqlite:///{tmp_path}/optuna.db", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                 "--checkpoints", str(tmp_path / "ck"))
    assert main(args) == 0
    assert "failed: loss_" in capsys.readouterr().err
    trials = load(tmp_path, name).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    by_number = trial_runs(tmp_path, name)
    for t in trials:
        assert "became nan" in t.user_attrs["fail_reason"] or "became inf" in t.user_attrs["fail_reason"]
        run = by_number[t.number]
        assert run.info.status == "FAILED" and run.data.tags["optuna_state"] == "FAIL"
        assert run.data.tags["reason"] == t.user_attrs["fail_reason"]


@pytest.mark.slow
def test_one_command_runs_search_horizon_runs_and_report_and_resumes_between_stages(tmp_path, data_root,
                                                                                     monkeypatch, capsys):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    # The search alone, as if the command had been stopped after it ...
    assert main(quick(data_root, "--trials", "2")) == 0
    assert not (tmp_path / f"report-{STUDY}").exists()
    capsys.readouterr()
    # ... then the same command with its stages continues there: no new trial, the horizon runs, the report.
    assert main(quick(data_root, "--trials", "2", stages=True)) == 0
    captured = capsys.readouterr()
    study = load(tmp_path)
    assert len(study.trials) == 2 and study.user_attrs["horizon"] == 6
    horizon = [r for r in runs(tmp_path) if r.data.tags.get("role") == "confirm"]
    sources = {study.trials[0].number} | {t.number for t in study.trials if t.state == TrialState.COMPLETE}
    assert {int(r.data.tags["trial_number"]) for r in horizon} <= sources and horizon
    assert all(r.data.params["epochs"] == r.data.tags["horizon"] == "6" for r in horizon)
    report = tmp_path / f"report-{STUDY}" / "report.md"
    md = report.read_text()
    assert "## Horizon runs: every configuration to 6 epochs" in md
    assert "== horizon runs" in captured.err and "== report" in captured.err
    headline = next(line for line in md.splitlines() if line.startswith("- **"))[4:-2]
    assert headline in captured.out and f"report: report-{STUDY}/report.md" in captured.out
    # Run again: every stage is complete, so nothing is trained and the report is rebuilt.
    n = len(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(["1"], max_results=1000))
    assert main(quick(data_root, "--trials", "2", stages=True)) == 0
    assert len(MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(["1"], max_results=1000)) == n


def test_the_estimate_comes_before_the_work_and_a_long_cpu_study_names_the_cpu_preset(tmp_path, data_root,
                                                                                      monkeypatch, capsys):
    from study import estimate

    monkeypatch.chdir(tmp_path)
    assert main(quick(data_root, "--trials", "1")) == 0
    err = capsys.readouterr().err
    # Measured now, or read from the cache when an earlier test measured the same configuration here.
    assert "estimate on cpu (" in err and re.search(r"measured( earlier on this machine)?\): search up to", err)
    assert "warning: without a GPU" not in err
    assert err.index("estimate on cpu") < err.index("trial 000")
    monkeypatch.setattr(estimate, "CPU_WARN_HOURS", 1e-6)  # as if the study would take hours
    assert main(quick(data_root, "--trials", "2")) == 0
    err = capsys.readouterr().err
    assert "warning: without a GPU this study takes about" in err and "`--preset cpu`" in err
    assert err.index("warning: without a GPU") < err.index("trial 001")
    assert len(load(tmp_path).trials) == 2  # it warned and went on


def test_without_a_preset_the_machine_picks_the_study(monkeypatch):
    import study.run as run

    monkeypatch.setattr(run, "resolve_device", lambda name: torch.device("cpu"))
    args = run.parse_args([])
    assert args.preset == "cpu" and args.machine_preset
    assert run.parse_args(["--preset", "full"]).machine_preset is False
    monkeypatch.setattr(run, "resolve_device", lambda name: torch.device("cuda"))
    assert run.parse_args([]).preset == "full" and run.machine_preset("auto") == "full"


def test_the_estimate_costs_the_seeds_of_a_horizon_configuration_as_one_model(monkeypatch, capsys):
    from types import SimpleNamespace

    from gans.config import TrainConfig
    from study import estimate
    from study.run import announce_estimate

    measured = []

    def measure(config, threads=0, members=1):
        measured.append(members)
        return estimate.Costs(epoch_s=2.0 if members > 1 else 1.0, eval_s=0.5, device="cpu")

    monkeypatch.setattr(estimate, "measure", measure)
    settings = SimpleNamespace(workers=1, ctx=SimpleNamespace(base=TrainConfig(epochs=10, eval_every=5)),
                               horizon=10, horizon_eval_every=5)
    announce_estimate(settings, {}, horizon_configs=2, seeds=5, trials=0, progress=False, together=5)
    # Two groups of 5 seeds: 10 epochs at 2 s, and 5 members x (2 grid + 4 re-scoring evaluations) x 0.5 s.
    assert measured == [1, 5]
    assert "horizon runs 70 s (10 runs of 10 epochs, 5 seeds trained together)" in capsys.readouterr().err
    announce_estimate(settings, {}, horizon_configs=2, seeds=5, trials=0, progress=False, together=1)
    assert "horizon runs 2 min (10 runs of 10 epochs)" in capsys.readouterr().err  # 10 x (10 + 6 x 0.5) s


def test_estimate_arithmetic():
    from study.estimate import Costs, Plan, seconds

    plan = Plan(trials=10, mean_budget=100, eval_every=50, horizon_runs=4, horizon=1000, horizon_eval_every=25,
                rescores=4, workers=2)
    search, horizon = seconds(plan, Costs(epoch_s=0.1, eval_s=1.0, device="cpu"))
    # Evaluated at epochs 50 and 100 (the last epoch is on the grid: not counted twice).
    assert search == pytest.approx(10 * (100 * 0.1 + 2 * 1.0) / 2)
    assert horizon == pytest.approx(4 * (1000 * 0.1 + (40 + 4) * 1.0) / 2)
    five = seconds(dataclasses.replace(plan, horizon_runs=5), Costs(0.1, 1.0, "cpu"))[1]
    assert five == pytest.approx(3 * (1000 * 0.1 + (40 + 4) * 1.0))  # 5 alike runs on 2 workers: 3 rounds
    assert seconds(dataclasses.replace(plan, mean_budget=120), Costs(0.1, 1.0, "cpu"))[0] == pytest.approx(
        10 * (120 * 0.1 + 3 * 1.0) / 2)  # 50, 100 and the last epoch, 120


def test_progress_bars_stay_legible_at_80_columns():
    import io

    from rich.console import Console

    from gans.config import TrainConfig
    from study.console import StudyProgress

    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None, record=True)
    progress = StudyProgress("cpu-mlp-mnist", 24, "fid", console=console)
    progress.trial_started(7, TrainConfig(epochs=1000, batch_size=32), "")
    progress.REFRESH_S = 0.0
    for epoch in (1, 2):
        for step in range(1, 32):
            progress.step(epoch, step, 31)
    progress.counts.update(COMPLETE=12, PRUNED=10, FAIL=1)
    progress.best = 157.345
    progress._refresh()
    console.print(progress.progress.get_renderable())
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    study, trial = lines
    assert "23/24: 12 ok 10 pruned 1 failed, best fid 157.3" in study and "eta" in study
    assert trial.startswith("trial 007") and "ep 2/1000" in trial and "img/s" in trial and "…" not in trial
    task = progress.progress.tasks[-1]
    assert (task.completed, task.total) == (62, 31 * 1000)  # steps within the epoch, not epochs
