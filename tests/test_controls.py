"""Unselected controls among the horizon runs (`study.confirm --random`, `study.run --confirm-random`):
random configurations of the study's space, drawn the same on every call, run beside the top trials
and the seed baselines, each run tagged with its group and read back by `reports.stores`."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest

from gans.config import TrainConfig
from reports.stores import horizon_group, load
from study.confirm import GROUP_BASELINE, GROUP_RANDOM, GROUP_SELECTED, main as confirm_main, plan
from study.presets import PRESETS
from study.run import main as run_main
from study.space import apply_overrides, default_space, sample_config, split_fixed, trial_space
from tracking.stores import CONFIG
from test_reports import STUDY, build_small_study, mlflow_client

HORIZON = 40


def searched_space() -> dict:
    cpu = PRESETS["cpu"]
    return split_fixed(apply_overrides(default_space("mlp"), cpu.space, "--preset cpu"))


def synthetic_study() -> optuna.Study:
    """Four trials of the cpu preset's space (the first a seed baseline), each with its config, no training."""
    searched, fixed_values = searched_space()
    base = TrainConfig(**{**PRESETS["cpu"].config, **fixed_values})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"epochs": 100, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "nz": 100, "hidden": 256,
                         "dropout": 0.3, "real_label": 1.0, "fake_label": 0.0, "augment": "none"},
                        user_attrs={"baseline": "mlp-gan-100"})

    def objective(trial):
        config = sample_config(trial, searched, base)
        trial.set_user_attr(CONFIG, dataclasses.asdict(config))
        return 100.0 - trial.number

    study.optimize(objective, n_trials=4)
    return study


def plan_of(study, runs=None, randoms: int = 2, seeds: int = 2):
    runs = pd.DataFrame({"run_id": pd.Series(dtype=object)}) if runs is None else runs
    return plan(study, runs, top=1, seeds=seeds, horizon=HORIZON, eval_every=10, device=None,
                tracking_uri="sqlite:///mlflow.db", log=lambda line: None, randoms=randoms)


def test_plan_covers_top_trials_baselines_and_random_controls_by_group():
    study = synthetic_study()
    jobs = plan_of(study)
    groups = {}
    for j in jobs:
        groups.setdefault(j.group, set()).add(j.source)
    assert groups == {GROUP_SELECTED: {"trial 3"}, GROUP_BASELINE: {"trial 0"},
                      GROUP_RANDOM: {"random-0", "random-1"}}
    assert len(jobs) == 4 * 2 and all(j.config.epochs == HORIZON and j.config.eval_every == 10 for j in jobs)
    randoms = [j for j in jobs if j.group == GROUP_RANDOM]
    assert all(j.number is None and j.baseline == "" and j.name.startswith(f"horizon-{j.control}-seed-")
               for j in randoms)
    # In the study's space (its trials' distributions), the rest of the config the trials' own.
    space = trial_space(study.trials)
    trial0 = TrainConfig(**study.trials[0].user_attrs[CONFIG])
    for j in randoms:
        assert all(p.contains(getattr(j.config, k)) for k, p in space.items() if k != "epochs")
        own = {k: getattr(trial0, k) for k in (*space, "seed", "eval_every")}
        assert j.config.replace(**own) == trial0
    a, b = (next(j.config for j in randoms if j.control == name) for name in ("random-0", "random-1"))
    assert a.replace(seed=0) != b.replace(seed=0)


def test_random_controls_are_the_same_on_every_call_and_for_more_of_them():
    study = synthetic_study()
    first, again = plan_of(study), plan_of(synthetic_study())
    controls = {(j.control, j.config) for j in first if j.group == GROUP_RANDOM}
    assert controls == {(j.control, j.config) for j in again if j.group == GROUP_RANDOM}
    one = {(j.control, j.config) for j in plan_of(study, randoms=1) if j.group == GROUP_RANDOM}
    assert one == {c for c in controls if c[0] == "random-0"}
    assert not [j for j in plan_of(study, randoms=0) if j.group == GROUP_RANDOM]


def test_a_rerun_skips_finished_random_controls_and_uses_fresh_seeds():
    study = synthetic_study()
    done = [j for j in plan_of(study, seeds=1) if j.control == "random-0"]
    runs = pd.DataFrame({"run_id": ["r1", "r2"], "status": ["FINISHED", "FAILED"],
                         "tag.role": "confirm", "tag.source": ["random-0", "random-1"],
                         "tag.trial_number": pd.array([pd.NA, pd.NA], dtype="Int64"),
                         "tag.group": "random", "tag.horizon": str(HORIZON),
                         "tag.seed": [str(done[0].config.seed), "7"]})
    jobs = plan_of(study, runs, seeds=2)
    assert [j.config.seed for j in jobs if j.control == "random-0"] == [done[0].config.seed + 1]
    assert 7 not in [j.config.seed for j in jobs if j.control == "random-1"]
    assert len([j for j in jobs if j.control == "random-1"]) == 1
    assert len([j for j in jobs if j.number == 3]) == 2  # a random control's runs are not a trial's


def test_old_horizon_runs_get_their_group_from_the_baseline_tag():
    assert horizon_group("", "") == GROUP_SELECTED
    assert horizon_group("", "mlp-gan-100") == GROUP_BASELINE
    assert horizon_group("", "random-1") == GROUP_RANDOM  # a folklore sitting's control
    assert horizon_group("random", "") == GROUP_RANDOM and horizon_group("baseline", "x") == GROUP_BASELINE


def test_confirm_random_must_not_be_negative():
    assert run_main(["--preset", "quick", "--confirm-random", "-1"]) == 2
    assert confirm_main(["--study-name", "x", "--random", "-1"]) == 2
    assert PRESETS["cpu"].confirm_random == 2 and PRESETS["quick"].confirm_random == 0


@pytest.fixture(scope="module")
def controls_study(tmp_path_factory, data_root) -> dict:
    """A copy of the small real study with `--random 2` horizon runs (one seed each) added."""
    import torch

    small = build_small_study(tmp_path_factory.getbasetemp() / "small-study", data_root)
    root = tmp_path_factory.mktemp("controls")
    for name in ("optuna.db", "mlflow.db"):
        shutil.copyfile(Path(small["storage"].removeprefix("sqlite:///")).parent / name, root / name)
    stores = {"storage": f"sqlite:///{root}/optuna.db", "tracking": f"sqlite:///{root}/mlflow.db"}
    args = ["--study-name", STUDY, "--storage", stores["storage"], "--tracking-uri", stores["tracking"],
            "--top", "2", "--seeds", "1", "--random", "2", "--checkpoints", str(root / "ck")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared cores: oversubscribed BLAS threads make tiny MLPs crawl
    try:
        assert confirm_main(args) == 0
    finally:
        torch.set_num_threads(threads)
    return {**stores, "args": args, "root": root}


@pytest.mark.slow
def test_random_controls_are_trained_tagged_read_back_and_resumed(controls_study):
    client = mlflow_client(controls_study)
    exp = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([exp.experiment_id], "tags.role = 'confirm'")
    controls = [r for r in runs if r.data.tags.get("group") == "random"]
    assert sorted(r.data.tags["source"] for r in controls) == ["random-0", "random-1"]
    assert all("trial_number" not in r.data.tags and r.info.status == "FINISHED" for r in controls)
    # The small study's earlier runs were logged with --random 0 by this version: every one has its group.
    assert {r.data.tags["group"] for r in runs} == {"selected", "baseline", "random"}

    data = load(STUDY, controls_study["storage"], controls_study["tracking"])
    c = data.confirm
    assert set(c["group"]) == {"selected", "baseline", "random"}
    assert (c.loc[c["baseline"] != "", "group"] == "baseline").all()
    randoms = c[c["group"] == "random"].set_index("source")
    for r in controls:
        row = randoms.loc[r.data.tags["source"]]
        assert str(row["lr_g"]) == r.data.params["lr_g"] and str(row["hidden"]) == r.data.params["hidden"]

    assert confirm_main(controls_study["args"]) == 0  # resumed: every configuration holds its run
    assert len(client.search_runs([exp.experiment_id], "tags.role = 'confirm'")) == len(runs)


@pytest.mark.slow
def test_a_report_with_random_controls_names_them(controls_study):
    from reports.build import main as build_main

    out = controls_study["root"] / "report"
    assert build_main(["--study-name", STUDY, "--storage", controls_study["storage"],
                       "--tracking-uri", controls_study["tracking"], "--out", str(out)]) == 0
    assert "random-0" in (out / "report.md").read_text()
