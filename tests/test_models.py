"""Models: output shapes, logits, DCGAN init that matches BatchNorm."""

import pytest
import torch
from torch import nn

from gans.config import TrainConfig
from gans.models import build_models


@pytest.mark.parametrize(
    "model, size, channels, classes",
    [("mlp", 28, 1, 10), ("cgan", 28, 1, 10), ("dcgan", 32, 3, 2), ("dcgan", 64, 3, 1),
     ("cdcgan", 32, 1, 10), ("cdcgan", 64, 3, 2)],
)
def test_shapes_and_ranges(model, size, channels, classes):
    c = TrainConfig(model=model, image_size=size, nz=16, ngf=8, ndf=8, hidden=32)
    g, d = build_models(c, channels, classes)
    z = torch.randn(5, 16)
    labels = torch.randint(0, classes, (5,))
    x = g(z, labels)
    assert x.shape == (5, channels, size, size)
    logits = d(x, labels)
    assert logits.shape == (5,)
    # Logits, not probabilities: a discriminator fed extreme inputs leaves [0, 1].
    assert not isinstance(list(d.modules())[-1], nn.Sigmoid)


def test_dcgan_init_matches_batchnorm():
    torch.manual_seed(0)
    g, d = build_models(TrainConfig(model="dcgan", image_size=64), 3, 1)
    bns = [m for m in list(g.modules()) + list(d.modules()) if isinstance(m, nn.BatchNorm2d)]
    assert bns
    for bn in bns:
        assert abs(bn.weight.mean().item() - 1.0) < 0.02 and 0.005 < bn.weight.std().item() < 0.05
        assert bn.bias.abs().max() == 0
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for conv in convs:
        assert abs(conv.weight.std().item() - 0.02) < 0.003


def test_seed_mlp_sizes():
    g, d = build_models(TrainConfig(model="mlp", image_size=28, nz=100, hidden=256), 1, 10)
    linears = [m for m in g.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(100, 256), (256, 256), (256, 784)]
