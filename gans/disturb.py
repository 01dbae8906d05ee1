"""Image disturbances of Heusel et al. 2017 (the FID paper, Fig. 1) at four increasing levels:
Gaussian noise, Gaussian blur, salt-and-pepper noise and rectangle cut-outs. A sound distance must
grow with the level; the tests and the README's validation table use them.

Pure functions on uint8 N x C x H x W tensors, deterministic for a given seed.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from gans.augment import gaussian_blur

LEVELS = (1, 2, 3, 4)

Disturbance = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]
def disturb(images: torch.Tensor, name: str, level: int, seed: int = 0) -> torch.Tensor:
    """`images` (uint8) disturbed by `name` at `level` (0 = unchanged, 1..4 increasingly strong)."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError("expected uint8 N x C x H x W images")
    if level == 0:
        return images.clone()
    if level not in LEVELS:
        raise ValueError(f"level must be 0 or one of {LEVELS}, got {level}")
    return DISTURBANCES[name](images, level, torch.Generator().manual_seed(seed))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def gaussian_noise(images: torch.Tensor, level: int, rng: torch.Generator) -> torch.Tensor:
    std = (0.1, 0.2, 0.3, 0.4)[level - 1] * 255
    noise = torch.randn(images.shape, generator=rng) * std
    return _to_uint8(images.float() + noise)


def blur(images: torch.Tensor, level: int, rng: torch.Generator) -> torch.Tensor:
    # Sigma relative to the image side, so 28 px digits and 64 px photos blur alike.
    sigma = (0.4, 0.7, 1.0, 1.5)[level - 1] * images.shape[-1] / 28
    sigmas = torch.full((len(images),), sigma)
    return _to_uint8(gaussian_blur(images.float(), sigmas, math.ceil(3 * sigma), padding="replicate"))


def salt_and_pepper(images: torch.Tensor, level: int, rng: torch.Generator) -> torch.Tensor:
    p = (0.02, 0.05, 0.1, 0.2)[level - 1]
    n, _, h, w = images.shape
    u = torch.rand((n, 1, h, w), generator=rng)
    out = images.clone()
    out.masked_fill_((u < p / 2).expand_as(out), 0)
    out.masked_fill_(((u >= p / 2) & (u < p)).expand_as(out), 255)
    return out


def cutout(images: torch.Tensor, level: int, rng: torch.Generator) -> torch.Tensor:
    """Black rectangles (Heusel et al.'s "implanted black rectangles") a quarter of the side wide,
    1, 2, 4 or 8 per image at random places."""
    count = (1, 2, 4, 8)[level - 1]
    n, _, h, w = images.shape
    rh, rw = max(1, h // 4), max(1, w // 4)
    out = images.clone()
    tops = torch.randint(0, h - rh + 1, (n, count), generator=rng)
    lefts = torch.randint(0, w - rw + 1, (n, count), generator=rng)
    for i in range(n):
        for top, left in zip(tops[i].tolist(), lefts[i].tolist()):
            out[i, :, top:top + rh, left:left + rw] = 0
    return out


DISTURBANCES: dict[str, Disturbance] = {
    "gaussian-noise": gaussian_noise,
    "gaussian-blur": blur,
    "salt-and-pepper": salt_and_pepper,
    "cutout": cutout,
}
