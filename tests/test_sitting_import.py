"""`python -m study.sitting`: a GPU sitting's runs.tar.gz (rehearsed on the CPU at toy size, once per
module) imported into SQLite stores, read back through independent Optuna and MLflow clients, and
reported on by `reports.build`."""

from __future__ import annotations

import json
import shutil
import statistics
import tarfile
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from gans.config import TrainConfig
from reports.build import build
from study import folklore
from study.sitting import import_sitting, main, read_archive, read_grid
from test_sitting import rehearse
from tracking import query
from tracking.stores import trial_config

STUDY = "folklore-toy"
NAMES = [c.name for c in folklore.configurations(folklore.base_config("x"), randoms=1)]
SEEDS = (1, 2)


def stores(root: Path) -> dict:
    return {"storage": f"sqlite:///{root}/optuna.db", "tracking_uri": f"sqlite:///{root}/mlflow.db"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, cats, domain) -> Path:
    domain("pets")  # the classifier the rehearsal scores with, trained once per session
    return rehearse(tmp_path_factory.mktemp("sitting"), cats) / "runs.tar.gz"


@pytest.fixture(scope="module")
def unpacked(archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out / "runs"


@pytest.fixture(scope="module")
def imported(archive, tmp_path_factory) -> dict:
    where = stores(tmp_path_factory.mktemp("stores"))
    done = import_sitting([archive], STUDY, **where, log=lambda line: None)
    return {**where, "done": done}


def confirm_runs(where: dict):
    client = MlflowClient(where["tracking_uri"])
    exp = client.get_experiment_by_name(STUDY).experiment_id
    return client, client.search_runs([exp], "tags.role = 'confirm'", max_results=1000)


@pytest.mark.slow
def test_one_trial_per_configuration_with_its_typed_config_and_median_value(imported, unpacked):
    assert imported["done"].runs == len(NAMES) * len(SEEDS) and imported["done"].skipped == 0
    study = optuna.load_study(study_name=STUDY, storage=imported["storage"])
    attrs = study.user_attrs
    assert (attrs["metric"], attrs["horizon"], attrs["horizon_eval_every"]) == ("fid", 4, 2)
    assert {"mlflow_experiment_id", "mlflow_parent_run_id", "tracking_uri"} <= set(attrs)
    trials = {t.user_attrs["baseline"]: t for t in study.trials}
    assert sorted(trials) == sorted(NAMES) and len(study.trials) == len(NAMES)
    for name, t in trials.items():
        assert t.state == optuna.trial.TrialState.COMPLETE and t.params == {}
        config = json.loads((unpacked / name / "seed-1" / "config.json").read_text())
        assert trial_config(t, None) == TrainConfig(**{**config, "seed": 0})
        last = [json.loads((unpacked / name / f"seed-{s}" / "records.json").read_text())[-1]["fid"] for s in SEEDS]
        assert t.value == pytest.approx(statistics.median(last))


@pytest.mark.slow
def test_one_confirm_run_per_seed_with_tags_full_histories_and_grids(imported, unpacked):
    client, runs = confirm_runs(imported)
    study = optuna.load_study(study_name=STUDY, storage=imported["storage"])
    number = {t.user_attrs["baseline"]: t.number for t in study.trials}
    assert sorted((r.data.tags["baseline"], int(r.data.tags["seed"])) for r in runs) == sorted(
        (n, s) for n in NAMES for s in SEEDS)
    for run in runs:
        tags, name, seed = run.data.tags, run.data.tags["baseline"], int(run.data.tags["seed"])
        folder = unpacked / name / f"seed-{seed}"
        assert run.info.status == "FINISHED"
        assert tags["trial_number"] == str(number[name]) and tags["horizon"] == "4" and tags["study_name"] == STUDY
        assert tags["steps_per_epoch"] == "2" and tags["device"] == "cpu" and tags["sitting"].endswith("runs.tar.gz")
        assert tags["trained_with"] and tags["mlflow.parentRunId"] == study.user_attrs["mlflow_parent_run_id"]
        assert tags["num_fake"] == "64" and tags["num_real_train"] == "64"  # evaluation constants: tags
        meta = json.loads((folder / "run.json").read_text())
        if "extractor" in meta:  # what scored the run, as trained runs tag it
            assert (tags["extractor_name"], tags["extractor_sha256"]) == (meta["extractor"]["name"],
                                                                          meta["extractor"]["sha256"])
        config = json.loads((folder / "config.json").read_text())
        assert run.data.params == {k: str(v) for k, v in config.items()}
        records = json.loads((folder / "records.json").read_text())
        for key, name_ in (("loss_d", "train/loss_d"), ("fid", "quality/fid"), ("fid_train", "quality/fid_train")):
            logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name_)}
            assert logged == {r["epoch"]: pytest.approx(r[key]) for r in records if key in r}
        assert list(query.image_steps(client, run.info.run_id)) == [4]
        for rescored in meta["rescores"]:  # the last epoch on fresh samples: the verdict's noise
            for key, value in rescored.items():
                if key != "epoch":
                    logged = client.get_metric_history(run.info.run_id, f"quality/{key}")
                    assert [(m.step, m.value) for m in logged] == [(4, pytest.approx(value))]


@pytest.mark.slow
def test_importing_again_adds_nothing(imported, archive):
    before = len(confirm_runs(imported)[1])
    again = import_sitting([archive, archive], STUDY, **{k: imported[k] for k in ("storage", "tracking_uri")},
                           log=lambda line: None)
    assert (again.runs, again.skipped, again.configurations) == (0, len(NAMES) * len(SEEDS), [])
    assert len(confirm_runs(imported)[1]) == before
    assert len(optuna.load_study(study_name=STUDY, storage=imported["storage"]).trials) == len(NAMES)


@pytest.mark.slow
def test_the_report_gives_the_horizon_verdict_for_every_configuration(imported, tmp_path):
    headline = build(STUDY, imported["storage"], None, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert headline in md.replace("**", "") and "too short to reach past 500–600" in headline
    for name in NAMES:
        assert f"| {name} (trial " in md  # a row of the horizon table
    assert "## Configurations" in md and "### Held-out against training images" in md
    assert "## Search trials" not in md and "importance" not in md.lower()
    for link in ("horizon.csv", "horizon_curves.png", "horizon_samples.png", "trials.csv"):
        assert (tmp_path / "report" / link).is_file()


@pytest.mark.slow
def test_unfinished_and_diverged_runs_fail_with_their_reason_and_the_extractor_is_recorded(unpacked, tmp_path,
                                                                                          domain):
    runs = tmp_path / "runs"
    shutil.copytree(unpacked, runs)
    for name, change in (("dcgan-paper", {"complete": False}), ("random-0", {"diverged": "loss_d is nan at epoch 3"})):
        path = runs / name / "seed-2" / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with tarfile.open(tmp_path / "edited.tar.gz", "w:gz") as tar:
        tar.add(runs, arcname="runs")
    where = stores(tmp_path / "stores")
    extractor = domain("pets")
    import_sitting([tmp_path / "edited.tar.gz"], STUDY, **where, log=lambda line: None,
                   extractor_weights=Path(extractor.weights_path))
    _, logged = confirm_runs(where)
    failed = {r.data.tags["baseline"]: r for r in logged if r.info.status == "FAILED"}
    assert sorted(failed) == ["dcgan-paper", "random-0"]
    assert failed["dcgan-paper"].data.tags["reason"].startswith("incomplete: the sitting stopped at epoch 4")
    assert failed["random-0"].data.tags["reason"] == "diverged: loss_d is nan at epoch 3"
    assert {r.data.tags["extractor_sha256"] for r in logged} == {extractor.sha256}
    study = optuna.load_study(study_name=STUDY, storage=where["storage"])
    assert study.user_attrs["extractor"]["sha256"] == extractor.sha256
    paper = next(t for t in study.trials if t.user_attrs["baseline"] == "dcgan-paper")
    assert paper.user_attrs["value_is"].startswith("median over 1 finished seeds")


def test_a_missing_archive_is_a_one_line_error(tmp_path, capsys):
    where = stores(tmp_path)
    assert main(["--runs", str(tmp_path / "none.tar.gz"), "--study-name", STUDY, "--storage", where["storage"],
                 "--tracking-uri", where["tracking_uri"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --runs {tmp_path / 'none.tar.gz'}: no such file")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_compacting_keeps_the_runs_and_their_grids_in_a_smaller_file(archive, tmp_path):
    copy = tmp_path / "sitting-1" / "runs.tar.gz"
    copy.parent.mkdir()
    shutil.copyfile(archive, copy)
    where = stores(tmp_path)
    args = ["--study-name", STUDY, "--storage", where["storage"], "--tracking-uri", where["tracking_uri"]]
    assert main(["--compact", "--runs", str(copy), *args]) == 0
    compact = copy.with_name("runs.tar.xz")
    assert not copy.exists() and compact.stat().st_size < archive.stat().st_size
    before, after = read_archive(archive, tmp_path / "a"), read_archive(compact, tmp_path / "b")
    assert [(r.key, r.records, r.meta) for r in after] == [(r.key, r.records, r.meta) for r in before]
    for old, new in zip(before, after):
        assert sorted(new.grids) == sorted(old.grids) and {p.suffix for p in new.grids.values()} == {".webp"}
        assert read_grid(new.grids[4]).shape == read_grid(old.grids[4]).shape
    _, logged = confirm_runs(where)
    assert len(logged) == len(NAMES) * len(SEEDS)
    assert main(["--compact", "--runs", str(compact), *args]) == 0  # already compact: read as it is
    assert compact.is_file()
