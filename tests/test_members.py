"""Runs trained together as one vectorized model compute what each computes alone: three members vs
three single runs, MLP and DCGAN on real data, in float64 (a test-only precision) to 1e-9 over three
epochs and in fp32 to 1e-3 over the first; a member's checkpoint resumed alone continues identically;
a diverging member is dropped while the others go on; `gans.train --seeds` writes one folder per seed;
calls sharing one bf16 cast of the weights compute what separate casts compute; real and fake images
through D as one batch compute what two batches compute; a member's checkpoint holds that member alone,
in the modules' own layout."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from gans import train
from gans.config import TrainConfig
from gans.errors import UserError
from gans.models import build_models
from gans.trainer import Stack, Trainer, load_checkpoint, load_train_data

SEEDS = (1, 2, 3)
KEYS = ("loss_d", "loss_g", "d_real", "d_fake")


def mlp(data_root, **kw) -> TrainConfig:
    # Dropout on: each member's masks come from its own generator.
    return TrainConfig(**{**dict(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=256,
                                 epochs=3, batch_size=32, hidden=64, dropout=0.3, augment="rotate", device="cpu"), **kw})


def dcgan(cats, **kw) -> TrainConfig:
    # BatchNorm, label smoothing and augmentation draws: every per-member state there is.
    return TrainConfig(**{**dict(model="dcgan", data=str(cats), image_size=32, limit=96, epochs=3, batch_size=16,
                                 nz=16, ngf=8, ndf=8, real_label=0.9, fake_label=0.1, augment="diffaug",
                                 device="cpu"), **kw})


def worst_difference(base: TrainConfig, epochs: int) -> float:
    alone = {s: list(Trainer(base.replace(seed=s)).run()) for s in SEEDS}
    together = list(Trainer([base.replace(seed=s) for s in SEEDS]).run_members())
    assert [sorted(r) for r in together] == [[0, 1, 2]] * base.epochs
    worst = 0.0
    for i, s in enumerate(SEEDS):
        for e in range(epochs):
            for k in KEYS:
                a, b = alone[s][e][k], together[e][i][k]
                worst = max(worst, abs(a - b) / abs(a))
    # Distinct seeds are distinct runs: the comparison is not vacuous.
    assert alone[1][0]["loss_d"] != alone[2][0]["loss_d"]
    return worst


@pytest.mark.parametrize("family", ["mlp", "dcgan"])
def test_members_equal_single_runs_in_float64(family, data_root, cats):
    base = mlp(data_root, precision="fp64") if family == "mlp" else dcgan(cats, precision="fp64")
    assert worst_difference(base, epochs=3) < 1e-9


@pytest.mark.parametrize("family", ["mlp", "dcgan"])
def test_members_equal_single_runs_in_fp32_over_the_first_epoch(family, data_root, cats):
    base = mlp(data_root, precision="fp32") if family == "mlp" else dcgan(cats, precision="fp32")
    assert worst_difference(base.replace(epochs=1), epochs=1) < 1e-3


def test_calls_sharing_one_bf16_cast_compute_what_separate_casts_compute(data_root):
    c = mlp(data_root, dropout=0.0, model="cgan", data="fashion-mnist")
    data = load_train_data(c)
    x, labels = data.batch(torch.arange(64))
    x, labels = x.view(2, 32, *x.shape[1:]), labels.view(2, 32)  # 2 members x 32 images

    def stack() -> Stack:
        discriminators = []
        for seed in SEEDS[:2]:
            torch.manual_seed(seed)
            discriminators.append(build_models(c.replace(seed=seed), data.channels, data.num_classes)[1])
        return Stack.of(discriminators, torch.bfloat16)

    results = []
    for share in (True, False):
        d = stack()
        weights = d.weights() if share else None  # None: each call casts for itself
        real, fake = d(x, labels, weights=weights), d(x.flip(1), labels.flip(1), weights=weights)
        (real.float().sum() + fake.float().square().sum()).backward()
        results.append((real, fake, {k: v.grad for k, v in d.params.items()}))
    (real1, fake1, grads1), (real2, fake2, grads2) = results
    assert real1.dtype == torch.bfloat16 and torch.equal(real1, real2) and torch.equal(fake1, fake2)
    assert not torch.equal(real1, fake1)  # the two calls saw different inputs
    for k in grads1:  # one cast: the two calls' gradients are summed in bf16 before it, not in fp32 after
        assert grads1[k].dtype == torch.float32
        torch.testing.assert_close(grads1[k], grads2[k], rtol=2e-2, atol=1e-3)
    d = stack()
    assert not d(x, labels, weights=d.weights(detach=True)).requires_grad
    zeros = {k: torch.zeros_like(v) for k, v in d.weights(detach=True).items()}
    assert not d(x, labels, weights=zeros).any()  # the call computes with the weights it is given


@pytest.mark.parametrize("family", ["mlp", "dcgan"])
def test_a_members_checkpoint_resumes_alone_exactly(family, tmp_path, data_root, cats):
    base = mlp(data_root, precision="fp64") if family == "mlp" else dcgan(cats, precision="fp64")
    straight = [r["loss_d"] for r in Trainer(base.replace(seed=2)).run()]
    together = Trainer([base.replace(seed=s) for s in SEEDS])
    for records in together.run_members():
        if records[1]["epoch"] == 1:
            together.save(tmp_path / "seed-2.pt", member=1)
            break
    state = load_checkpoint(tmp_path / "seed-2.pt")
    assert TrainConfig(**state["config"]).seed == 2
    alone = Trainer(base.replace(seed=2))
    alone.load_state_dict(state)
    # Its run alone, straight through: equal to the ensemble's rounding (a product over 3 members vs 1 in
    # the first epoch), which two more epochs of the MLP GAN grow to 2.4e-9; a wrong weight or optimizer
    # state would be off in the third digit.
    assert [r["loss_d"] for r in alone.run()] == pytest.approx(straight[1:], rel=1e-8)


def test_real_and_fake_through_d_as_one_batch_compute_what_two_batches_compute(data_root, cats):
    base = mlp(data_root, precision="fp64", epochs=2, model="cgan", data="fashion-mnist")
    joint = Trainer(base)
    assert joint._joint_d  # no BatchNorm in D: the step passes real and fake images as one batch
    apart = Trainer(base)
    apart._joint_d = False
    a, b = list(joint.run()), list(apart.run())
    assert a[0]["loss_d"] != a[1]["loss_d"]
    for ra, rb in zip(a, b):
        for k in KEYS:
            assert ra[k] == pytest.approx(rb[k], rel=1e-12)
    assert not Trainer(dcgan(cats))._joint_d  # BatchNorm: real and fake apart, as in the seeds


def test_a_members_checkpoint_holds_that_member_alone_in_the_modules_layout(tmp_path, data_root):
    base = mlp(data_root, epochs=1)
    alone, together = Trainer(base.replace(seed=2)), Trainer([base.replace(seed=s) for s in SEEDS])
    list(alone.run()), list(together.run_members())
    alone.save(tmp_path / "alone.pt")
    together.save(tmp_path / "member.pt", member=1)
    # A slice of a stacked tensor saved as it is would write every member's weights.
    assert (tmp_path / "member.pt").stat().st_size == pytest.approx((tmp_path / "alone.pt").stat().st_size, rel=0.01)
    state, module = load_checkpoint(tmp_path / "member.pt"), build_models(base, 1, 10)[1]
    assert {k: v.shape for k, v in state["discriminator"].items()} == {
        k: v.shape for k, v in module.state_dict().items()}
    first = state["opt_d"]["state"][0]["exp_avg"]  # the first Linear's weight, out x in as the module has it
    assert first.shape == module.net[0].weight.shape and first.is_contiguous()
    module.load_state_dict(state["discriminator"])  # an ordinary module loads it


def test_a_diverging_member_is_dropped_and_the_others_go_on(data_root):
    base = mlp(data_root, precision="fp32", epochs=4)
    trainer = Trainer([base.replace(seed=s) for s in SEEDS])
    first = list(itertools.islice(trainer.run_members(), 2))
    # Poison member 1's weights: its loss turns NaN in the next epoch; the others must not notice.
    with torch.no_grad():
        trainer.d.params[next(iter(trainer.d.params))][1].fill_(float("nan"))
    later = list(trainer.run_members())
    assert "diverged" in later[0][1] and "nan" in later[0][1]["diverged"] and "evaluated" not in later[0][1]
    assert trainer.alive == [0, 2] and set(later[1]) == {0, 2}
    assert first[-1][0]["epoch"] == 2 and later[-1][2]["epoch"] == 4
    # The survivors go on as they would have: seed 3's run alone, epoch by epoch.
    alone = [r["loss_d"] for r in Trainer(base.replace(seed=3)).run()]
    assert [r[2]["loss_d"] for r in first + later] == pytest.approx(alone, rel=1e-3)
    with pytest.raises(ValueError, match="not training"):
        trainer.sample(torch.zeros(2, base.nz), member=1)


def test_runs_that_differ_in_more_than_seed_and_labels_refuse(data_root):
    base = mlp(data_root)
    with pytest.raises(UserError, match="lr_g"):
        Trainer([base.replace(seed=1), base.replace(seed=2, lr_g=1e-3)])
    with pytest.raises(UserError, match="--seeds"):
        Trainer([base.replace(seed=1), base.replace(seed=1)])


def test_train_seeds_writes_one_folder_per_seed_matching_single_runs(tmp_path, data_root):
    flags = ["--data", "mnist", "--data-root", str(data_root), "--limit", "128", "--epochs", "2", "--batch-size",
             "32", "--hidden", "32", "--device", "cpu", "--precision", "fp64", "--no-progress"]
    assert train.main(["--out", str(tmp_path / "together"), "--seeds", "1,2,3", *flags]) == 0
    for s in SEEDS:
        assert train.main(["--out", str(tmp_path / f"alone-{s}"), "--seed", str(s), *flags]) == 0
        folder = tmp_path / "together" / f"seed-{s}"
        for name in ("config.json", "records.json", "records.csv", "losses.png", "checkpoint.pt"):
            assert (folder / name).is_file(), name
        assert json.loads((folder / "config.json").read_text())["seed"] == s
        together = json.loads((folder / "records.json").read_text())
        alone = json.loads((tmp_path / f"alone-{s}" / "records.json").read_text())
        for a, b in zip(alone, together):
            for k in KEYS:
                assert b[k] == pytest.approx(a[k], rel=1e-9)
    assert train.main(["--out", str(tmp_path / "bad"), "--seeds", "1,1", *flags]) == 2
