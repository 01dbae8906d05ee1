"""`python -m reports.build` and `python -m study.confirm` on one small real study (quick preset, real
MNIST, CPU), read back through independent Optuna and MLflow clients; plus the verdict's statistics
on known inputs.

The study is built once per test session (`build_small_study`, shared with tests/test_browse.py).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from reports import verdict as V
from reports.build import main as build_main

STUDY = "reports-quick"
CHARTS = ("history.png", "importance.png", "curves.png", "effects.png", "training.png", "samples.png",
          "baselines.png", "horizon_curves.png", "horizon_best.png", "horizon_samples.png")
HORIZON = 6  # the quick preset's


# ---------------------------------------------------------------- the verdict's statistics


def test_bootstrap_median_of_a_known_sample_brackets_the_median_and_is_reproducible():
    # Uniform on 0..99: median 49.5, standard error 1 / (2 f sqrt(n)) = 1 / (2 * 0.01 * 10) = 5,
    # so the 95 % interval is about 49.5 -+ 9.8.
    x = np.arange(100, dtype=float)
    e = V.bootstrap_median(x)
    assert e.value == 49.5 and e.n == 100 and e.has_ci
    assert 37 < e.low < 43 and 56 < e.high < 62
    assert V.bootstrap_median(x) == e  # fixed seed: the same data give the same interval
    y = np.random.default_rng(3).normal(size=50)
    assert V.bootstrap_median(y, resamples=200, seed=1) != V.bootstrap_median(y, resamples=200)  # the seed fixes it


def test_bootstrap_median_edge_cases():
    assert V.bootstrap_median([7, 7, 7]) == V.Estimate(7.0, 7.0, 7.0, 3)
    one = V.bootstrap_median([5, float("nan")])
    assert one.value == 5 and one.n == 1 and not one.has_ci
    with pytest.raises(ValueError):
        V.bootstrap_median([])
    e = V.bootstrap_median([1, 2, 3, 4, 5])
    assert e.value == 3 and e.low in (1, 2, 3) and e.high in (3, 4, 5)


def test_gain_mean_std_and_best_so_far():
    assert V.gain(75.0, 100.0) == (25.0, 25.0)
    assert V.gain(120.0, 100.0, minimize=False) == (20.0, 20.0)
    m, sd, n = V.mean_std([1.0, 2.0, 3.0, float("nan")])
    assert (m, n) == (2.0, 3) and sd == pytest.approx(1.0)
    m, sd, n = V.mean_std([4.0])
    assert m == 4.0 and math.isnan(sd) and n == 1
    b = V.best_so_far([float("nan"), 5.0, 7.0, 3.0])
    assert math.isnan(b[0]) and b[1:].tolist() == [5.0, 5.0, 3.0]


def test_fmt():
    assert [V.fmt(3.0), V.fmt(1234.567), V.fmt(0.000123456), V.fmt(float("nan"))] == ["3", "1235", "0.0001235", "–"]


# ---------------------------------------------------------------- the small real study


def build_small_study(root: Path, data_root: Path) -> dict:
    """A quick-preset study of 4 trials, its horizon runs (the best trial and the seed baseline, one
    seed each, to the preset's 6 epochs), then the second-best trial's horizon run added by
    `study.confirm`; built once per test session (later calls read `root/built.json`)."""
    marker = root / "built.json"
    if marker.exists():
        return json.loads(marker.read_text())
    import torch

    from study.confirm import main as confirm_main
    from study.run import main as run_main

    root.mkdir(parents=True, exist_ok=True)
    stores = {"study": STUDY, "storage": f"sqlite:///{root}/optuna.db", "tracking": f"sqlite:///{root}/mlflow.db"}
    common = ["--study-name", STUDY, "--storage", stores["storage"], "--tracking-uri", stores["tracking"]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared cores: oversubscribed BLAS threads make tiny MLPs crawl
    try:
        assert run_main(["--preset", "quick", "--trials", "4", *common, "--checkpoints", str(root / "ckpt"),
                         "--data-root", str(data_root), "--device", "cpu", "--no-progress",
                         "--sampler-seed", "0", "--no-report"]) == 0
        assert confirm_main([*common, "--top", "2", "--seeds", "1", "--random", "0"]) == 0
    finally:
        torch.set_num_threads(threads)
    marker.write_text(json.dumps(stores))
    return stores


@pytest.fixture(scope="session")
def small_study(tmp_path_factory, data_root) -> dict:
    return build_small_study(tmp_path_factory.getbasetemp() / "small-study", data_root)


@pytest.fixture(scope="session")
def report(small_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    t0 = time.perf_counter()
    assert build_main(["--study-name", STUDY, "--storage", small_study["storage"], "--out", str(out)]) == 0
    print(f"report built in {time.perf_counter() - t0:.1f} s: {out}")
    return out


def links(md: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", md)


def md_table(md: str, first_header: str) -> list[dict[str, str]]:
    """The Markdown table whose header row starts with `first_header`, as dicts."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines[:-1])
                 if line.startswith(f"| {first_header} |") and lines[i + 1].startswith("|---"))
    headers = [h.strip() for h in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(headers, (c.strip() for c in line.strip().strip("|").split("|")))))
    return rows


def mlflow_client(stores):
    from mlflow import MlflowClient

    return MlflowClient(stores["tracking"])


def test_report_contains_every_file_it_links_to(report, small_study):
    from PIL import Image

    md = (report / "report.md").read_text()
    linked = links(md)
    assert set(CHARTS) <= set(linked), f"charts missing from the report: {set(CHARTS) - set(linked)}"
    for name in linked:
        assert (report / name).is_file(), name
        if name.endswith(".png"):
            with Image.open(report / name) as im:
                assert im.width >= 500 and im.height >= 300, name
    assert "_No chart" not in md
    # The study's parent run carries the answer: the headline as its note, the report as artifacts.
    client = mlflow_client(small_study)
    exp = client.get_experiment_by_name(STUDY)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs
    parent = client.search_runs([exp.experiment_id], "tags.role = 'study'")[0]
    first = next(line for line in md.splitlines() if line.startswith("- "))[2:].replace("**", "")
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith(first) and "Best trial:" in note
    attached = {Path(f.path).name for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report.md", "horizon.csv", *CHARTS} <= attached
    csv = pd.read_csv(report / "trials.csv")
    assert len(csv) == 4 and {"number", "state", "value", "best_epoch", "lr_g", "lr_d"} <= set(csv.columns)


def test_report_tables_equal_the_stores(report, small_study):
    md = (report / "report.md").read_text()
    study = optuna.load_study(study_name=STUDY, storage=small_study["storage"])
    client = mlflow_client(small_study)
    exp = client.get_experiment_by_name(STUDY)
    trial_runs = {int(r.data.tags["trial_number"]): r for r in client.search_runs([exp.experiment_id],
                                                                                   "tags.role = 'trial'")}
    rows = {int(r["trial"]): r for r in md_table(md, "trial")}
    assert set(rows) == {t.number for t in study.trials}
    for t in study.trials:
        r = rows[t.number]
        assert r["state"] == t.state.name
        assert r["final FID"] == V.fmt(t.value) if t.value is not None else r["final FID"] == "–"
        fid = sorted(client.get_metric_history(trial_runs[t.number].info.run_id, "quality/fid"), key=lambda m: m.step)
        best = min(fid, key=lambda m: m.value)  # the earliest on ties
        assert r["best epoch"] == V.fmt(float(best.step)) and r["best FID"] == V.fmt(best.value)
        last = fid[-1]
        assert r["last epoch"] == str(last.step)
        if t.state == TrialState.COMPLETE:
            assert r["final FID"] == V.fmt(last.value)  # Optuna's objective is MLflow's last FID

    # The report's trial configs are the trials' own, typed (no string round trip through MLflow).
    from reports.stores import load

    data = load(STUDY, small_study["storage"], small_study["tracking"])
    for t in study.trials:
        row = data.trial_row(t.number)
        config = t.user_attrs["config"]
        assert all(row[k] == v for k, v in config.items()) and row["lr_g"] == t.params["lr_g"]
        assert isinstance(row["lr_g"], float) and isinstance(row["batch_size"], (int, np.integer))
        losses = client.get_metric_history(trial_runs[t.number].info.run_id, "train/loss_d")
        assert row["epochs_done"] == max(m.step for m in losses)
    source = data.confirm.iloc[0]
    assert source["lr_g"] == data.trial_row(int(source["source"]))["lr_g"]

    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = min(done, key=lambda t: t.value)
    assert f"**Best configuration: trial {best.number}**" in md
    assert "The search makes no best-epoch claim" in md
    assert f"Not testable here: the horizon runs end at {HORIZON} epochs" in md

    horizon = client.search_runs([exp.experiment_id], "tags.role = 'confirm'")
    table = {r["configuration"]: r for r in md_table(md, "configuration")}
    by_source: dict[int, list] = {}
    for run in horizon:
        by_source.setdefault(int(run.data.tags["trial_number"]), []).append(run)
    done = sorted(done, key=lambda t: t.value)
    expected = {t.number for t in done[:2]} | {t.number for t in study.trials if t.user_attrs.get("baseline")}
    assert set(by_source) == expected and len(table) == len(expected)  # the two best trials and the baseline
    for n, runs in by_source.items():
        baseline = study.trials[n].user_attrs.get("baseline")
        row = table[f"{baseline} (trial {n})" if baseline else f"trial {n}"]
        bests = [min(m.value for m in client.get_metric_history(r.info.run_id, "quality/fid")) for r in runs]
        assert row["runs"] == str(len(runs))
        assert row["group"] == ("baseline" if baseline else "selected")  # no random control in this study
        assert row["best FID (mean ± std)"].split(" ± ")[0] == V.fmt(float(np.mean(bests)))
    csv = pd.read_csv(report / "horizon.csv")
    assert len(csv) == len(horizon) * HORIZON and set(csv["epoch"]) == set(range(1, HORIZON + 1))
    assert {"run_id", "source", "seed", "epoch", "step", "images_seen", "fid", "kid", "fid_resample_1"} <= set(csv)
    # Steps per epoch follow from the 2,000 images and each run's batch size.
    spe, batch = csv["step"] // csv["epoch"], csv["images_seen"] // csv["step"]
    assert (csv["step"] == spe * csv["epoch"]).all() and (spe == 2000 // batch).all()


@pytest.mark.slow
def test_horizon_runs_of_one_configuration_train_together(small_study, tmp_path):
    """`--batch-seeds 2`: two more seeds per configuration trained as one vectorized model, each still
    its own finished MLflow run with its curve, re-scorings and best checkpoint (on a copy of the stores)."""
    from study.confirm import main as confirm_main

    for name in ("optuna.db", "mlflow.db"):
        shutil.copyfile(Path(small_study["storage"].removeprefix("sqlite:///")).parent / name, tmp_path / name)
    stores = {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking": f"sqlite:///{tmp_path}/mlflow.db"}
    client = mlflow_client(stores)
    exp = client.get_experiment_by_name(STUDY)
    before = client.search_runs([exp.experiment_id], "tags.role = 'confirm'")
    assert confirm_main(["--study-name", STUDY, "--storage", stores["storage"], "--tracking-uri", stores["tracking"],
                         "--top", "2", "--seeds", "3", "--batch-seeds", "2", "--random", "0",
                         "--checkpoints", str(tmp_path / "ck")]) == 0
    runs = client.search_runs([exp.experiment_id], "tags.role = 'confirm'")
    new = [r for r in runs if r.info.run_id not in {b.info.run_id for b in before}]
    assert len(new) == 2 * len(before)
    for r in new:
        assert r.info.status == "FINISHED" and r.data.tags["members_together"] == "2"
        assert r.data.tags["cuda_graph"] == "eager"  # on CUDA: captured, or why not
        fid = client.get_metric_history(r.info.run_id, "quality/fid")
        assert [m.step for m in fid] == list(range(1, HORIZON + 1))
        assert client.get_metric_history(r.info.run_id, "quality/fid_resample_1")
        assert any(a.path == "checkpoints" for a in client.list_artifacts(r.info.run_id))
    seeds = {}
    for r in runs:
        seeds.setdefault(r.data.tags["trial_number"], set()).add(r.data.tags["seed"])
    assert all(len(s) == 3 for s in seeds.values())


def test_horizon_runs_retrain_top_trials_and_baselines_to_one_horizon_and_resume(small_study):
    from study.confirm import main as confirm_main

    study = optuna.load_study(study_name=STUDY, storage=small_study["storage"])
    done = sorted((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    baselines = {t.number for t in study.trials if t.user_attrs.get("baseline")}
    client = mlflow_client(small_study)
    exp = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([exp.experiment_id], "tags.role = 'confirm'")
    assert {int(r.data.tags["trial_number"]) for r in runs} == {t.number for t in done[:2]} | baselines
    for r in runs:
        source = client.search_runs([exp.experiment_id],
                                    f"tags.role = 'trial' and tags.trial_number = '{r.data.tags['trial_number']}'")[0]
        assert r.data.tags["study_name"] == STUDY and r.info.status == "FINISHED"
        assert r.data.tags["horizon"] == r.data.params["epochs"] == str(HORIZON)
        assert r.data.params["eval_every"] == "1"
        assert r.data.params["seed"] == r.data.tags["seed"] != source.data.params["seed"]
        for field in ("lr_g", "lr_d", "batch_size", "augment", "hidden"):
            assert r.data.params[field] == source.data.params[field]
        assert int(r.data.tags["steps_per_epoch"]) == 2000 // int(r.data.params["batch_size"])
        assert r.data.tags.get("mlflow.parentRunId") == source.data.tags.get("mlflow.parentRunId")
        # The last epoch re-scored on two fresh sample sets: the same generator, other values.
        fid = {m.step: m.value for m in client.get_metric_history(r.info.run_id, "quality/fid")}
        again = [client.get_metric_history(r.info.run_id, f"quality/fid_resample_{k}") for k in (1, 2)]
        assert all(HORIZON in {m.step for m in h} for h in again)
        values = [fid[HORIZON], *[next(m.value for m in h if m.step == HORIZON) for h in again]]
        assert len(set(values)) == 3 and max(values) - min(values) < 0.2 * min(values)
    # Each configuration already holds its finished horizon run: nothing more to train.
    assert confirm_main(["--study-name", STUDY, "--storage", small_study["storage"], "--top", "2",
                         "--seeds", "1", "--random", "0"]) == 0
    assert len(client.search_runs([exp.experiment_id], "tags.role = 'confirm'")) == len(runs)


# ---------------------------------------------------------------- stores without a completed trial


def synthetic_study(root: Path, name: str, plan: list[tuple[str, float, int, dict[int, float], str]]) -> dict:
    """A study written through the same Optuna and MLflow calls `study.objective` makes, from `plan`
    entries (state, lr_g, epoch budget, {epoch: fid}, reason); no training, since what the report
    sees is the stores' content. Used for shapes a CPU test cannot train: all trials pruned or
    failed, or a full-length study of up to 1000 epochs."""
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import create_trial

    from gans.config import TrainConfig
    from study.objective import trial_name
    from tracking import mlflow_log as ml

    root.mkdir(parents=True, exist_ok=True)
    stores = {"study": name, "storage": f"sqlite:///{root}/optuna.db", "tracking": f"sqlite:///{root}/mlflow.db"}
    study = optuna.create_study(study_name=name, storage=stores["storage"], direction="minimize")
    for k, v in {"metric": "fid", "model": "mlp", "data": "mnist", "preset": "full",
                 "tracking_uri": stores["tracking"]}.items():
        study.set_user_attr(k, v)
    client = ml.connect(stores["tracking"])
    exp = ml.ensure_experiment(client, name)
    dist = {"lr_g": FloatDistribution(1e-5, 1e-3, log=True), "epochs": IntDistribution(1, 1000)}
    for number, (state, lr, epochs, fids, reason) in enumerate(plan):
        logger = ml.RunLogger(client, exp, trial_name(number), tags={
            ml.ROLE: "trial", ml.STUDY_NAME: name, ml.TRIAL_NUMBER: number, ml.BASELINE: "",
            ml.OPTUNA_STATE: state})
        logger.log_config(TrainConfig(model="mlp", data="mnist", image_size=28, epochs=epochs,
                                      eval_every=min(fids, default=1), metrics="fid", lr_g=lr,
                                      batch_size=32))
        from mlflow.entities import Metric

        metrics = []
        for epoch, fid in fids.items():
            for k, v in {"loss_d": 1.2, "loss_g": 0.8 + epoch / 1000, "d_real": 0.6, "d_fake": 0.4, "fid": fid}.items():
                metrics.append(Metric(ml.metric_name(k), v, 0, epoch))
        if fids:  # the evaluation's sample counts: tags, as the logger sets them
            client.set_tag(logger.run_id, "num_fake", 300)
            client.set_tag(logger.run_id, "num_real", 2000)
        for i in range(0, len(metrics), 900):  # one batch per request, within MLflow's 1000-metric limit
            client.log_batch(logger.run_id, metrics=metrics[i:i + 900])
        logger.finish({"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}[state], reason or None)
        attrs = {"mlflow_run_id": logger.run_id}  # no `config` attribute: read back from the params, as before it
        if state != "COMPLETE":
            attrs["prune_reason" if state == "PRUNED" else "fail_reason"] = reason
        study.add_trial(create_trial(
            state=getattr(TrialState, state), params={"lr_g": lr, "epochs": epochs}, distributions=dist,
            value=fids[max(fids)] if state in ("COMPLETE", "PRUNED") else None,
            intermediate_values=fids, user_attrs=attrs))
    return stores


def stalled_study(root: Path) -> dict:
    return synthetic_study(root, "stalled", [
        ("PRUNED", 2e-4, 3, {1: 310.0, 2: 290.0}, "pruned at epoch 2 of 3: fid 290"),
        ("PRUNED", 5e-4, 3, {1: 420.0}, "pruned at epoch 1 of 3: fid 420"),
        ("FAIL", 9e-4, 3, {}, "loss_d became nan at epoch 1"),
    ])


def falling_search(root: Path) -> dict:
    """The old verdict's trap: 24 completed trials with budgets drawn from 50..1000 over FID curves
    that fall to the end, so each best epoch equals its budget."""
    rng = np.random.default_rng(0)
    plan = []
    for i, budget in enumerate(rng.integers(1, 21, size=24) * 50):
        fids = {int(e): round(20 + 200 * math.exp(-e / 300) + float(rng.normal(0, 0.3)), 3)
                for e in range(50, budget + 1, 50)}
        plan.append(("COMPLETE", 1e-4 * (1 + i % 4), int(budget), fids, ""))
    return synthetic_study(root, "falling", plan)


def add_horizon_runs(stores: dict, curve, *, horizon: int = 1000, sources: tuple[int, ...] = (0, 1, 2),
                     seeds: int = 3, noise: float = 0.5) -> "pd.DataFrame":
    """Horizon runs logged as `study.confirm` logs them (role, horizon, trial_number, seed,
    steps_per_epoch tags; config params; FID every 25 epochs; two re-scorings at the best and last
    epochs, under the grouped names `quality/...`, while the trial runs of `synthetic_study` carry the
    plain names of earlier versions: one report reads both); returns their curves as (run_id, source,
    epoch, value)."""
    from mlflow.entities import Metric

    from gans.config import TrainConfig
    from tracking import mlflow_log as ml

    rng = np.random.default_rng(1)
    client = ml.connect(stores["tracking"])
    exp = client.get_experiment_by_name(stores["study"]).experiment_id
    rows = []
    for n in sources:
        for seed in range(1, seeds + 1):
            logger = ml.RunLogger(client, exp, f"horizon-{n}-{seed}", tags={
                ml.ROLE: "confirm", ml.STUDY_NAME: stores["study"], ml.TRIAL_NUMBER: n, ml.BASELINE: "",
                "seed": seed, "horizon": horizon, "steps_per_epoch": 31})
            logger.log_config(TrainConfig(epochs=horizon, eval_every=25, metrics="fid", batch_size=32, seed=seed,
                                          limit=1000))
            epochs = np.arange(25, horizon + 1, 25)
            values = curve(epochs) + n + rng.normal(0, noise, epochs.size)
            best = int(epochs[np.argmin(values)])
            metrics = [Metric("quality/fid", float(v), 0, int(e)) for e, v in zip(epochs, values)]
            for k in (1, 2):
                for e in {best, horizon}:
                    metrics.append(Metric(f"quality/fid_resample_{k}", float(values[epochs == e][0] + rng.normal(0, noise)),
                                          0, e))
            client.log_batch(logger.run_id, metrics=metrics)
            logger.finish("complete")
            rows += [{"run_id": logger.run_id, "source": f"trial {n}", "epoch": int(e), "value": float(v)}
                     for e, v in zip(epochs, values)]
    return pd.DataFrame(rows)


def test_a_study_without_completed_trials_still_gets_a_report_that_says_so(tmp_path, report):
    stores = stalled_study(tmp_path / "stores")
    out = tmp_path / "out"
    shutil.copytree(report, out)  # a previous report in the same folder: its charts must go
    (out / "notes.txt").write_text("mine")
    assert build_main(["--study-name", "stalled", "--storage", stores["storage"], "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "No verdict yet: the study has no finished horizon runs" in md
    assert "None of the 3 search trials completed" in md
    assert "loss_d became nan at epoch 1" in md
    for name in links(md):
        assert (out / name).is_file(), name
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {n for n in links(md) if n.endswith(".png")}, "charts of the earlier report were left behind"
    assert "curves.png" in pngs  # pruned trials still have FID curves
    assert (out / "notes.txt").read_text() == "mine"
    assert len(pd.read_csv(out / "trials.csv")) == 3


def test_budget_capped_search_gives_no_verdict_and_horizon_runs_give_the_stated_one(tmp_path):
    stores = falling_search(tmp_path / "stores")
    out = tmp_path / "out"
    assert build_main(["--study-name", "falling", "--storage", stores["storage"], "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    # The budgets' median (~500) must not come back as a best epoch "inside 500-600".
    assert "No verdict yet: the study has no finished horizon runs" in md and "python -m study.confirm" in md
    assert "inside" not in md and "Median best epoch" not in md

    curves = add_horizon_runs(stores, lambda e: 20 + (e - 550) ** 2 / 2000)
    assert build_main(["--study-name", "falling", "--storage", stores["storage"], "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    for name in links(md):
        assert (out / name).is_file(), name
    ids = list(dict.fromkeys(curves["run_id"]))
    client = mlflow_client(stores)
    repeats = []
    for run_id in ids:
        fid = {m.step: m.value for m in client.get_metric_history(run_id, "quality/fid")}
        for k in (1, 2):
            for m in client.get_metric_history(run_id, f"quality/fid_resample_{k}"):
                repeats += [(run_id, m.step, m.value), (run_id, m.step, fid[m.step])]
    noise = V.noise_sd(pd.DataFrame(repeats, columns=["run_id", "epoch", "value"]).drop_duplicates())
    v = V.horizon_verdict(curves, horizon=1000, noise=noise)
    assert v.location == "inside" and v.contrast_class == "worse"
    assert f"**{v.sentence}**" in md
    assert f"median best epoch **{V.fmt(v.best_epoch.value)}** = {V.fmt(v.best_epoch.value * 31)} optimizer steps" in md
    assert f"CI [{V.fmt(v.contrast.low)}, {V.fmt(v.contrast.high)}]; positive = worse at 1000" in md
    assert f"P(best epoch in 500–600) = {V.fmt(v.in_band.value, 2)}" in md
    csv = pd.read_csv(out / "horizon.csv")
    assert len(csv) == len(curves) and (csv["images_seen"] == csv["epoch"] * 31 * 32).all()

    # Another folklore: the band is a parameter, and no "500–600" is left in the report.
    assert build_main(["--study-name", "falling", "--storage", stores["storage"], "--out", str(out),
                       "--band", "200-300"]) == 0
    md = (out / "report.md").read_text()
    other = V.horizon_verdict(curves, horizon=1000, noise=noise, band=(200, 300))
    assert other.location == "later" and f"**{other.sentence}**" in md
    assert "## Verdict: is 200–300 epochs best, does 1000 go weird?" in md and "500–600" not in md


def test_unknown_study_or_storage_is_a_one_line_error(small_study, tmp_path, capsys):
    assert build_main(["--study-name", "no-such-study", "--storage", small_study["storage"],
                       "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --study-name no-such-study: no such study")
    assert STUDY in err  # it lists the studies that are there
    assert not (tmp_path / "r").exists()

    missing = f"sqlite:///{tmp_path}/missing.db"
    assert build_main(["--study-name", STUDY, "--storage", missing, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --storage {missing}: no Optuna storage")
    assert not (tmp_path / "missing.db").exists()


def test_confirm_rejects_bad_counts(capsys):
    from study.confirm import main as confirm_main

    assert confirm_main(["--study-name", STUDY, "--seeds", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds: must be > 0")
