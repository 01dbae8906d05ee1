"""Trainer: every family trains on real data, records are sane, seeds reproduce, NaN stops it."""

import itertools

import pytest
import torch

from gans.config import TrainConfig
from gans.trainer import Diverged, Trainer, generator_from_checkpoint, load_checkpoint

TINY = dict(nz=16, ngf=8, ndf=8, hidden=32, batch_size=16, device="cpu")


@pytest.mark.parametrize(
    "model, data, size",
    [("mlp", "mnist", 28), ("cgan", "fashion-mnist", 28), ("dcgan", "fashion-mnist", 32),
     ("cdcgan", "mnist", 32), ("dcgan", "cats", 64), ("cdcgan", "pets", 32), ("cgan", "pets", 32)],
)
def test_every_family_trains_on_real_data(model, data, size, data_root, cats, pets, request):
    path = {"cats": str(cats), "pets": str(pets)}.get(data, data)
    # pets sorted by class: the first 2000 are cats, so take all for both labels.
    limit = 0 if data == "pets" else 64
    c = TrainConfig(model=model, data=path, data_root=str(data_root), image_size=size, limit=limit,
                    epochs=2, augment="diffaug" if model == "dcgan" else "none", **TINY)
    if data == "pets":  # 4000 images, decoded once per session; keep the test to a few steps
        c = c.replace(batch_size=1000, epochs=1)
    t = Trainer(c, request.getfixturevalue("pets32") if data == "pets" else None)
    if data == "pets":
        assert t.data.num_classes == 2
    records = list(t.run())
    assert [r["epoch"] for r in records] == list(range(1, c.epochs + 1))
    for r in records:
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1
        assert r["loss_d"] > 0 and r["loss_g"] > 0 and r["images_per_s"] > 0
    assert records[-1]["evaluated"]
    g = t.grid()
    assert g.dtype == torch.uint8 and g.shape[0] == t.data.channels


def test_training_changes_d_outputs_towards_separation(data_root):
    c = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=2000,
                    epochs=3, **TINY)
    records = list(Trainer(c).run())
    # After a few hundred steps D tells real from fake better than chance.
    assert records[-1]["d_real"] > records[-1]["d_fake"]


def test_same_seed_same_losses_other_seed_other_losses(data_root):
    def losses(seed):
        c = TrainConfig(model="dcgan", data="mnist", data_root=str(data_root), image_size=32, limit=64,
                        epochs=2, seed=seed, augment="jitter-blur", **TINY)
        return [(r["loss_d"], r["loss_g"]) for r in Trainer(c).run()]

    assert losses(1) == losses(1)
    assert losses(1) != losses(2)


def test_stopping_early_is_stopping_iteration(data_root):
    c = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=64,
                    epochs=50, **TINY)
    t = Trainer(c)
    run = t.run()
    assert len(list(itertools.islice(run, 3))) == 3
    run.close()
    assert t.epoch == 3


def test_nan_loss_stops_with_reason(data_root):
    c = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=64,
                    epochs=5, lr_d=1e30, lr_g=1e30, **TINY)
    with pytest.raises(Diverged, match=r"loss_[dg] became (nan|inf) at epoch \d"):
        list(Trainer(c).run())


def test_eval_epochs_and_evaluator_hook(data_root):
    c = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=64,
                    epochs=5, eval_every=2, **TINY)
    seen = []

    def evaluator(trainer, member=0):
        seen.append(trainer.epoch)
        return {"fid": float(trainer.epoch)}

    records = list(Trainer(c, evaluator=evaluator).run())
    assert seen == [2, 4, 5]
    assert [r.get("fid") for r in records] == [None, 2.0, None, 4.0, 5.0]


def test_checkpoint_round_trip_weights_only(tmp_path, data_root):
    # fp32: a bf16-autocast sample differs from the restored fp32 generator's by bf16 rounding.
    c = TrainConfig(model="cdcgan", data="mnist", data_root=str(data_root), image_size=32, limit=64,
                    epochs=1, precision="fp32", **TINY)
    t = Trainer(c)
    list(t.run())
    t.save(tmp_path / "ck.pt")
    state = load_checkpoint(tmp_path / "ck.pt")
    config, g, k = generator_from_checkpoint(state)
    assert config == c and k == 10
    z = torch.randn(4, c.nz)
    labels = torch.arange(4)
    assert torch.allclose(g(z, labels), t.sample(z, labels), atol=1e-6)
    # Resuming restores the epoch counter and optimizer state.
    t2 = Trainer(c.replace(epochs=2))
    t2.load_state_dict(state)
    assert t2.epoch == 1 and [r["epoch"] for r in t2.run()] == [2]


def test_a_run_resumed_from_a_checkpoint_continues_exactly(tmp_path, data_root):
    # What a retried trial relies on: the losses after resuming are those of the uninterrupted run.
    c = TrainConfig(model="dcgan", data="mnist", data_root=str(data_root), image_size=32, limit=64,
                    epochs=4, augment="diffaug", **TINY)
    straight = [r["loss_d"] for r in Trainer(c).run()]
    first = Trainer(c)
    for r in first.run():
        if r["epoch"] == 2:
            first.save(tmp_path / "last.pt")
            break
    resumed = Trainer(c)
    resumed.load_state_dict(load_checkpoint(tmp_path / "last.pt"))
    assert straight[2:] == [r["loss_d"] for r in resumed.run()]
