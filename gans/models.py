"""The seeds' GAN families as plain `nn.Module`s: MLP GAN, conditional MLP GAN, DCGAN and
conditional DCGAN. No I/O here. Discriminators return logits (N,), never probabilities.

Generators map (z, labels) to images in [-1, 1]; unconditional models ignore the labels.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gans.config import TrainConfig


class MLPGenerator(nn.Module):
    """The seed's vanilla GAN generator: noise 100 -> 256 -> 256 -> 784 (plus optional label embedding).

    Dropout lives in the discriminator only: in the generator it would make samples depend on
    train/eval mode.
    """

    def __init__(self, nz: int, hidden: int, channels: int, size: int,
                 num_classes: int = 0, embed_dim: int = 10):
        super().__init__()
        self.shape = (channels, size, size)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        inp = nz + (embed_dim if num_classes else 0)
        out = channels * size * size
        self.net = nn.Sequential(
            nn.Linear(inp, hidden),  # N x hidden
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),  # N x hidden
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, out),  # N x (C*H*W)
            nn.Tanh(),
        )
        _xavier_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.flatten(1)  # N x nz
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)  # N x (nz + embed_dim)
        return self.net(z).view(-1, *self.shape)  # N x C x H x W


class MLPDiscriminator(nn.Module):
    """The seed's vanilla GAN discriminator: 784 -> 256 -> 256 -> 1 logit."""

    DROPOUT_LAYERS = 2

    def __init__(self, hidden: int, channels: int, size: int, dropout: float,
                 num_classes: int = 0, embed_dim: int = 10):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        inp = channels * size * size + (embed_dim if num_classes else 0)
        self.net = nn.Sequential(
            nn.Linear(inp, hidden),  # N x hidden
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),  # N x hidden
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),  # N x 1 logit
        )
        _xavier_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                masks: torch.Tensor | None = None) -> torch.Tensor:
        """`masks` (DROPOUT_LAYERS x N x hidden, already scaled by 1/(1-p)) replace the Dropout layers'
        own draws: the trainer draws them from each run's generator."""
        h = x.flatten(1)  # N x (C*H*W)
        if self.embed is not None:
            h = torch.cat([h, self.embed(labels)], 1)  # N x (C*H*W + embed_dim)
        if masks is None:
            return self.net(h).view(-1)  # N
        j = 0
        for layer in self.net:
            if isinstance(layer, nn.Dropout):
                h = h * masks[j]  # N x hidden
                j += 1
            else:
                h = layer(h)
        return h.view(-1)  # N


def _stages(size: int) -> int:
    """Upsampling stages from 4x4 to size x size (3 for 32 px, 4 for 64 px)."""
    n = int(math.log2(size)) - 2
    assert 4 * 2**n == size, f"DCGAN needs a power-of-two image size, got {size}"
    return n


class DCGANGenerator(nn.Module):
    """Radford et al. 2016 generator; for 64 px the layers are those of pytorch/examples dcgan."""

    def __init__(self, nz: int, ngf: int, channels: int, size: int, num_classes: int = 0, embed_dim: int = 10):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        inp = nz + (embed_dim if num_classes else 0)
        n = _stages(size)
        mult = 2 ** (n - 1)  # 8 at 64 px, 4 at 32 px
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(inp, ngf * mult, 4, 1, 0, bias=False),  # N x ngf*mult x 4 x 4
            nn.BatchNorm2d(ngf * mult),
            nn.ReLU(True),
        ]
        for i in range(n - 1):  # each stage doubles H and W and halves the channels
            c_in, c_out = ngf * mult // 2**i, ngf * mult // 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),  # N x c_out x 8*2^i x 8*2^i
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        layers += [
            nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),  # N x C x size x size
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.flatten(1)  # N x nz
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)  # N x (nz + embed_dim)
        return self.net(z[:, :, None, None])  # N x C x size x size


class DCGANDiscriminator(nn.Module):
    """Radford et al. 2016 discriminator ending in one logit; conditional: label map as extra channel."""

    def __init__(self, ndf: int, channels: int, size: int, num_classes: int = 0):
        super().__init__()
        self.size = size
        # A learned label map of the image's size is concatenated as one extra input channel.
        self.embed = nn.Embedding(num_classes, size * size) if num_classes else None
        n = _stages(size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels + (1 if num_classes else 0), ndf, 4, 2, 1, bias=False),  # N x ndf x size/2
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for i in range(n - 1):  # each stage halves H and W and doubles the channels
            c_in, c_out = ndf * 2**i, ndf * 2 ** (i + 1)
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),  # N x c_out x size/2^(i+2)
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers += [nn.Conv2d(ndf * 2 ** (n - 1), 1, 4, 1, 0, bias=False)]  # N x 1 x 1 x 1 logit
        self.net = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            label_map = self.embed(labels).view(-1, 1, self.size, self.size)  # N x 1 x size x size
            x = torch.cat([x, label_map.to(x.dtype)], 1)  # N x (C+1) x size x size
        return self.net(x).view(-1)  # N


def _dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights; BatchNorm weight N(1, 0.02), bias 0.

    The seed's init matched layers by class-name strings and never matched its BatchNorm layers;
    isinstance checks cannot miss.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _xavier_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def build_models(config: TrainConfig, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator for `config` on images with `channels` and `num_classes` labels."""
    k = num_classes if config.conditional else 0
    s = config.image_size
    if config.model in ("mlp", "cgan"):
        g = MLPGenerator(config.nz, config.hidden, channels, s, k, config.embed_dim)
        d = MLPDiscriminator(config.hidden, channels, s, config.dropout, k, config.embed_dim)
    else:
        g = DCGANGenerator(config.nz, config.ngf, channels, s, k, config.embed_dim)
        d = DCGANDiscriminator(config.ndf, channels, s, k)
    return g, d
