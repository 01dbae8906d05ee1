"""The late-epoch diagnostics: `gans.diagnostics`' formulas on synthetic inputs with known answers
(and torch-fidelity's precision/recall on the same features), `Trainer.discriminate`, the
evaluator adding them to a real MNIST run's records, their MLflow names, their way back through the
stores, and the report section's numbers and sentences (`reports.diagnostics`)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from mlflow.entities import Metric
from test_reports import add_horizon_runs, synthetic_study

from gans import diagnostics as D
from gans import metric_keys as K
from gans import metrics as M
from gans.config import TrainConfig
from gans.data import ImageData, load_images
from gans.trainer import Trainer
from reports import analysis, build, stores
from reports import diagnostics as RD
from tracking import mlflow_log as ml

# ---------------------------------------------------------------- formulas, known answers


def test_overfit_rt_and_mean_sigmoid_of_known_logits():
    assert D.overfit_rt(torch.tensor([2.0, -1.0, 3.0, 0.5])) == 0.5
    assert D.overfit_rt(torch.tensor([0.0, 0.0])) == 0.0
    assert D.overfit_rt(torch.full((7,), -4.0)) == -1.0
    assert D.mean_sigmoid(torch.zeros(5)) == 0.5
    assert D.mean_sigmoid(torch.tensor([math.log(3.0), -math.log(3.0)])) == pytest.approx(0.5)
    assert D.mean_sigmoid(torch.tensor([math.log(3.0)])) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        D.overfit_rt(torch.zeros(0))


def gaussian(n: int, dim: int = 8, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + shift


def test_memorisation_is_zero_for_copies_about_one_for_new_draws_and_small_for_near_copies():
    train, heldout = gaussian(800, seed=1), gaussian(800, seed=2)
    assert D.memorisation(train[:500], train, heldout) == 0.0
    assert D.memorisation(gaussian(800, seed=3), train, heldout) == pytest.approx(1.0, abs=0.08)
    near = train[:500] + 0.01 * gaussian(500, seed=4)
    assert D.memorisation(near, train, heldout) < 0.05
    far = gaussian(500, seed=5, shift=10.0)
    assert D.memorisation(far, train, heldout) > 5
    # Held-out images that are training images: no scale to compare with.
    assert math.isnan(D.memorisation(gaussian(50, seed=6), train, train[:100]))
    # Chunking does not change the nearest distances.
    exact = torch.cdist(heldout.double(), train.double()).min(1).values
    assert torch.allclose(D.nearest_distances(heldout, train), exact)


def test_precision_recall_known_answers_and_torch_fidelity():
    real = gaussian(300, seed=1)
    assert D.precision_recall(real.clone(), real) == (1.0, 1.0)
    assert D.precision_recall(gaussian(300, seed=2, shift=100.0), real) == (0.0, 0.0)
    # Mode collapse: two far-apart clusters of real images, samples from one of them only (each twice).
    a, b = gaussian(100, seed=3), gaussian(100, seed=4, shift=50.0)
    precision, recall = D.precision_recall(torch.cat([a, a]), torch.cat([a, b]))
    assert precision == 1.0 and recall == 0.5
    # The same numbers as torch-fidelity's implementation (Kynkäänniemi et al.'s, k = 3).
    prc = pytest.importorskip("torch_fidelity.metric_prc")
    fake = gaussian(250, seed=5, shift=0.3).double()
    theirs = prc.calculate_precision_recall_part(fake, real.double(), neighborhood=3)
    assert D.precision_recall(fake, real, k=3) == pytest.approx(theirs, abs=1e-6)  # theirs: a float32 mean
    assert 0 < theirs[0] < 1 and 0 < theirs[1] < 1


def test_diagnostics_names_and_their_mlflow_section():
    out = D.diagnostics(train_logits=torch.tensor([1.0, 2.0, -1.0]), heldout_logits=torch.zeros(3),
                        fake=gaussian(40, seed=1), train=gaussian(60, seed=2), heldout=gaussian(50, seed=3))
    assert tuple(out) == K.DIAGNOSTICS
    assert out["overfit_rt"] == pytest.approx(1 / 3) and out["d_heldout"] == 0.5
    assert ml.METRIC_GROUPS["diagnostics"] == K.DIAGNOSTICS
    assert [ml.metric_name(k) for k in K.DIAGNOSTICS] == [f"diagnostics/{k}" for k in K.DIAGNOSTICS]
    assert all(ml.record_key(ml.metric_name(k)) == k for k in K.DIAGNOSTICS)
    logged = ml.record_metrics({"epoch": 5, "evaluated": True, "fid": 3.0, **out, "diag_num_real": 3})
    assert {k for k in logged if k.startswith("diagnostics/")} == {f"diagnostics/{k}" for k in K.DIAGNOSTICS}
    assert "diag_num_real" not in logged and "diag_num_real" in ml.EVAL_CONSTANTS


# ---------------------------------------------------------------- the trainer and the evaluator


def tiny_data(n: int = 64, classes: int = 1) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % classes, tuple(str(i) for i in range(classes)), "noise")


def test_discriminate_is_member_d_in_eval_mode_on_uint8_or_unit_range_images():
    configs = [TrainConfig(model="mlp", image_size=28, batch_size=32, device="cpu", dropout=0.3, seed=s)
               for s in (1, 2)]
    data = tiny_data()
    trainer = Trainer(configs, data)
    x = data.images[:10]
    unit = x.float() / 127.5 - 1
    logits = trainer.discriminate(x, member=1)
    assert logits.shape == (10,) and logits.dtype == torch.float32
    assert torch.equal(logits, trainer.discriminate(x, member=1))  # eval mode: no dropout draws
    assert torch.allclose(logits, trainer.discriminate(unit, torch.zeros(10, dtype=torch.long), member=1))
    assert torch.equal(logits, trainer.d.evaluate(1, unit, torch.zeros(10, dtype=torch.long)).float())
    assert not torch.equal(logits, trainer.discriminate(x, member=0))
    conditional = Trainer(TrainConfig(model="cgan", image_size=28, batch_size=32, device="cpu"), tiny_data(classes=4))
    with pytest.raises(ValueError, match="labels"):
        conditional.discriminate(x)
    assert conditional.discriminate(x, torch.arange(10) % 4).shape == (10,)


class PooledPixels(torch.nn.Module):
    """A stand-in extractor module: 7 x 7 average-pooled pixels (147 features), as torch-fidelity's
    modules return them (a tuple)."""

    def forward(self, x: torch.Tensor):
        return (F.avg_pool2d(x.float(), 4).flatten(1),)


def test_evaluator_adds_the_diagnostics_beside_a_heldout_reference(monkeypatch, data_root):
    monkeypatch.setattr(M, "feature_module", lambda extractor, layer, device: PooledPixels())
    # 300 test digits stand in for the held-out split (all 10,000 of them): the same path, less work.
    heldout = M.RealSet("mnist", str(data_root), "test", 28, 300)
    monkeypatch.setattr(M, "heldout_set", lambda c: heldout)
    extractor = SimpleNamespace(name="pooled-pixels", feature_dim=147, layers={"fid": "pool", "kid": "pool"},
                                weights_path=None)
    config = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=200, num_real=200,
                         num_samples=200, metrics="fid", reference="heldout", device="cpu", batch_size=32, epochs=2,
                         eval_every=1)
    evaluator = M.Evaluator(config, extractor, ["fid"])
    trainer = Trainer(config, evaluator=evaluator)
    records = list(trainer.run())
    last = records[-1]
    for key in (*K.DIAGNOSTICS, "fid", "fid_train"):
        assert key in last and math.isfinite(last[key]), key
    assert last["diag_num_real"] == 200
    train_logits = trainer.discriminate(trainer.data.images[:200], trainer.data.labels[:200])
    held = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=200)
    assert last["overfit_rt"] == pytest.approx(D.overfit_rt(train_logits))
    assert last["d_train"] == pytest.approx(D.mean_sigmoid(train_logits))
    assert last["d_heldout"] == pytest.approx(D.mean_sigmoid(trainer.discriminate(held.images, held.labels)))
    assert 0 <= last["knn_precision"] <= 1 and 0 <= last["knn_recall"] <= 1 and last["memorisation"] > 0
    # Without a held-out reference: no diagnostics.
    plain = M.Evaluator(dataclasses.replace(config, reference="train"), extractor, ["fid"])
    assert not set(K.DIAGNOSTICS) & set(plain(trainer))


# ---------------------------------------------------------------- the report's numbers


def diagnostic_frame(horizon: int = 1000, seeds: int = 5) -> pd.DataFrame:
    """Runs of two configurations evaluated every 25 epochs: r_t rises by 0.3 after epoch 700 in
    every run, d_train - d_heldout by 0.1; precision is flat but for noise; memorisation falls by
    0.2 in 4 of 5 runs of trial 0 and in every run of trial 1; recall only in trial 1."""
    rng = np.random.default_rng(0)
    rows = []
    for source in ("trial 0", "trial 1"):
        for seed in range(seeds):
            for e in range(25, horizon + 1, 25):
                late = e > 700
                mem_falls = not (source == "trial 0" and seed == 0)
                rows.append({"run_id": f"{source}-{seed}", "source": source, "seed": seed, "epoch": e,
                             "overfit_rt": 0.1 + 0.3 * late, "d_train": 0.6 + 0.1 * late, "d_heldout": 0.6,
                             "knn_precision": 0.7 + rng.normal(0, 0.01),
                             "knn_recall": 0.5 - (0.1 * late if source == "trial 1" else 0.0),
                             "memorisation": 1.0 - 0.2 * late * mem_falls, "fid": 10.0})
    return pd.DataFrame(rows)


def test_late_changes_movement_and_sentences_follow_the_numbers():
    frame = RD.with_gap(diagnostic_frame())
    rt = RD.late_changes(frame, "overfit_rt", 1000, (500, 600))
    assert len(rt) == 10 and np.allclose(rt["change"], 0.3) and np.allclose(rt["band_mean"], 0.1)
    m = RD.movement(rt["change"])
    assert (m["n"], m["rose"], m["fell"], m["direction"]) == (10, 10, 0, "rose")
    assert m["median"] == pytest.approx(0.3) and m["p"] == pytest.approx(2 / 2 ** 10)
    assert RD.movement(RD.late_changes(frame, "d_gap", 1000, (500, 600))["change"])["median"] == pytest.approx(0.1)
    mem = RD.movement(RD.late_changes(frame, "memorisation", 1000, (500, 600))["change"])
    assert (mem["rose"], mem["fell"], mem["direction"]) == (0, 9, "fell")
    recall = RD.movement(RD.late_changes(frame, "knn_recall", 1000, (500, 600))["change"])
    assert (recall["rose"], recall["fell"], recall["n"], recall["direction"]) == (0, 5, 10, "no consistent change")
    assert RD.movement([0.1, 0.2])["direction"] == "too few runs"
    assert RD.movement([])["n"] == 0 and math.isnan(RD.movement([])["p"])
    # The band is a parameter: a band inside the late epochs sees no change.
    assert np.allclose(RD.late_changes(frame, "overfit_rt", 1000, (750, 850))["change"], 0.0)
    # A run without values in a window gives NaN, not a change.
    cut = frame[~((frame["run_id"] == "trial 0-0") & (frame["epoch"] > 900))]
    changes = RD.late_changes(cut, "overfit_rt", 1000, (500, 600)).set_index("run_id")["change"]
    assert math.isnan(changes["trial 0-0"]) and RD.movement(changes)["n"] == 9
    s = RD.movement_sentence("r_t", m, (500, 600), 1000)
    assert s == ("r_t rose in 10 and fell in 0 of 10 runs from epochs 500–600 to 901–1000 "
                 "(median +0.3, sign test p = 0.002): it rose in the late epochs.")
    assert RD.movement_sentence("recall", recall, (500, 600), 1000).endswith(
        "no consistent change (fewer than 80 % of the runs agree).")


class Collect:
    """What `write_diagnostics` uses of `reports.sections.Report`: lines, and charts drawn into a folder."""

    def __init__(self, out):
        self.out, self.lines, self.files = out, [], []

    def add(self, *lines):
        self.lines.extend(lines)

    def chart(self, name, alt, draw):
        draw(self.out / name)
        self.files.append(name)
        self.add(f"![{alt}]({name})", "")
        return True


def test_write_diagnostics_section_chart_and_table(tmp_path):
    hz = SimpleNamespace(horizon=1000, frame=diagnostic_frame())
    r = Collect(tmp_path)
    RD.write_diagnostics(r, hz)
    md = "\n".join(r.lines)
    assert r.files == ["diagnostics.png"] and (tmp_path / "diagnostics.png").stat().st_size > 10_000
    assert "- r\\_t rose in 10 and fell in 0 of 10 runs from epochs 500–600 to 901–1000 (median +0.3" in md
    assert "- memorisation rose in 0 and fell in 9 of 10 runs" in md and "it fell in the late epochs" in md
    assert "- precision rose in" in md and "- D(training) − D(held-out) rose in 10 and fell in 0" in md
    table = [line for line in r.lines if line.startswith("| trial 1")]
    assert len(table) == 1 and "−0.2 (0↑ 5↓ of 5)" in table[0] and "+0.3 (5↑ 0↓ of 5)" in table[0]
    # Another band, as a parameter.
    other = Collect(tmp_path)
    RD.write_diagnostics(other, hz, band=(750, 850))
    assert "from epochs 750–850 to 901–1000" in "\n".join(other.lines)
    # A horizon too short for a window past the band: the chart, no comparison.
    short = Collect(tmp_path)
    RD.write_diagnostics(short, SimpleNamespace(horizon=650, frame=diagnostic_frame(horizon=650)))
    assert short.files == ["diagnostics.png"] and "no late-epoch comparison" in "\n".join(short.lines)
    # Runs without diagnostics (no held-out reference, or logged before them): no section.
    none = Collect(tmp_path)
    RD.write_diagnostics(none, SimpleNamespace(horizon=1000, frame=diagnostic_frame()[["run_id", "source", "epoch",
                                                                                        "fid"]]))
    assert none.lines == [] and none.files == []


def test_stores_read_the_diagnostics_back_into_the_horizon_frame(tmp_path):
    s = synthetic_study(tmp_path / "stores", "diag", [("COMPLETE", 2e-4, 1000, {500: 30.0, 1000: 25.0}, "")])
    curves = add_horizon_runs(s, lambda e: 20 + 0 * e, horizon=700, sources=(0,), seeds=2)
    client = ml.connect(s["tracking"])
    run_ids = list(dict.fromkeys(curves["run_id"]))
    for i, run_id in enumerate(run_ids):
        client.log_batch(run_id, metrics=[Metric(ml.metric_name(k), 0.1 * i + e / 1000, 0, e)
                                          for k in K.DIAGNOSTICS for e in range(25, 701, 25)])
    data = stores.load("diag", s["storage"])
    h = data.confirm_history
    assert set(K.DIAGNOSTICS) <= set(h["key"])
    frame = analysis.horizon_analysis(data).frame
    got = frame.set_index(["run_id", "epoch"])["memorisation"]
    assert got[(run_ids[1], 650)] == pytest.approx(0.1 + 0.65)
    assert set(K.DIAGNOSTICS) <= set(frame.columns) and frame["overfit_rt"].notna().all()


def test_the_report_states_the_real_versus_real_floor(tmp_path):
    s = synthetic_study(tmp_path / "stores", "floor", [("COMPLETE", 2e-4, 1000, {500: 30.0, 1000: 25.0}, "")])
    curves = add_horizon_runs(s, lambda e: 20 + 0 * e, horizon=700, sources=(0,), seeds=2)
    client = ml.connect(s["tracking"])
    for run_id in dict.fromkeys(curves["run_id"]):
        client.log_batch(run_id, metrics=[Metric(ml.metric_name(k), v, 0, e) for e in range(25, 701, 25)
                                          for k, v in (("fid_train", 19.0), ("fid_floor", 12.5))])
    assert ml.metric_name("fid_floor") == "quality/fid_floor"
    assert build.main(["--study-name", "floor", "--storage", s["storage"], "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "the training images themselves score FID **12.5** against the held-out ones" in md
