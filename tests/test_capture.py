"""The training step stays capturable as a CUDA graph, checked on the CPU: no op inside it needs the host.

On CUDA the trainer captures its whole step (D step, G step, both Adam updates, augmentation) as one
graph and replays it; one op that copies from the host or reads a value back to it makes the capture
fail, and the trainer then trains eagerly, several times slower (on an H100 the DCGAN with
`jitter-blur` ran at eager speed in `benchmarks/RESULTS.md` for a `torch.tensor` of gray weights
built inside the step). Without a GPU here, the step's ops are watched through a dispatch mode for
the ones that do that: tensors made from Python data (`lift_fresh`: a host-to-device copy on a GPU),
reads of a value (`_local_scalar_dense`: `.item()`, `bool()`), and ops whose output size depends on
the data (`nonzero`, boolean-mask indexing), which synchronise with the host.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gans.augment import AUGMENTS
from gans.config import TrainConfig
from gans.trainer import Trainer

HOST_OPS = {"aten::lift_fresh", "aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select",
            "aten::unique", "aten::_unique2"}


class HostOps(TorchDispatchMode):
    """Records the ops that would need the host inside a CUDA graph."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        bool_index = name == "aten::index" and any(
            t is not None and t.dtype == torch.bool for t in (args[1] if len(args) > 1 else []))
        if name in HOST_OPS or bool_index:
            self.found.append(str(func))
        return func(*args, **(kwargs or {}))


def step_host_ops(trainer: Trainer) -> list[str]:
    """The host-needing ops of one training step: those of the part the trainer captures on CUDA."""
    captured = trainer._call_step
    found: list[str] = []

    def watched(inputs):
        with HostOps() as mode:
            out = captured(inputs)
        found.extend(mode.found)
        return out

    trainer._call_step = watched
    trainer.train_step()
    return found


def test_the_watch_sees_what_a_graph_cannot_capture():
    x = torch.randn(4)
    with HostOps() as mode:
        torch.tensor([0.299, 0.587, 0.114])
        x.sum().item()
        x[x > 0]
        x * 2 + torch.arange(4)
    assert mode.found == ["aten.lift_fresh.default", "aten._local_scalar_dense.default", "aten.index.Tensor"]


@pytest.mark.parametrize("augment", sorted(AUGMENTS))
def test_the_dcgan_step_needs_no_host_with_every_augmentation(cats, augment):
    config = TrainConfig(model="dcgan", data=str(cats), image_size=32, limit=32, batch_size=8, nz=8, ngf=8, ndf=8,
                         real_label=0.9, fake_label=0.1, augment=augment, device="cpu", epochs=1)
    members = [config.replace(seed=s) for s in (1, 2)]
    assert step_host_ops(Trainer(members)) == []


@pytest.mark.parametrize("model", ["mlp", "cgan"])
def test_the_mlp_and_cgan_steps_need_no_host(data_root, model):
    config = TrainConfig(model=model, data="mnist", data_root=str(data_root), image_size=28, limit=64, batch_size=16,
                         hidden=32, dropout=0.3, augment="rotate", device="cpu", epochs=1)
    assert step_host_ops(Trainer([config.replace(seed=s) for s in (1, 2)])) == []
