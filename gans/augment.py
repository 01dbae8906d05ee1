"""Augmentation policies: batched tensor ops on the training device, chosen by name.

A policy maps a float batch in [-1, 1] (N x C x H x W) and its random numbers (N x `draws` uniforms
in [0, 1), drawn by the caller) to a batch of the same shape (DiffAugment's color op may leave
[-1, 1], as in the paper; the others stay inside). The random numbers are inputs, not drawn inside,
so that the trainer draws them from each run's own generator: a run trained beside others (members
of one vectorized model) then sees the augmentation it would see alone.
Policies marked `differentiable` (DiffAugment, Zhao et al. 2020) are applied to real and fake
images alike, inside the discriminator's and the generator's steps; the others, as in the seed
notebooks' transforms, only to real images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from gans.errors import UserError

Policy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Augment:
    fn: Policy
    """(images N x C x H x W, uniforms N x draws) -> augmented images"""
    draws: int
    """uniform random numbers the policy consumes per image"""
    differentiable: bool

    def apply(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """`x` augmented with fresh uniforms from `generator` (the global one if None)."""
        u = torch.rand(x.shape[0], self.draws, generator=generator, device=x.device, dtype=x.dtype)
        return self.fn(x, u)


# ---------------------------------------------------------------- building blocks


def _col(u: torch.Tensor, j: int) -> torch.Tensor:
    """Column `j` of the uniforms, shaped to broadcast over N x C x H x W."""
    return u[:, j].view(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    # Python scalars, not a tensor of weights: `torch.tensor(...)` on a GPU is a host-to-device copy,
    # which a CUDA graph cannot capture (the whole training step fell back to eager with this policy).
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def brightness_saturation(x: torch.Tensor, r: torch.Tensor, brightness: float = 0.2,
                          saturation: float = 0.2) -> torch.Tensor:
    """torchvision ColorJitter(brightness, saturation), one random factor each per image (2 draws)."""
    u = (x + 1) / 2
    b = 1 + (2 * _col(r, 0) - 1) * brightness
    u = (u * b).clamp(0, 1)
    if x.shape[1] == 3:
        s = 1 + (2 * _col(r, 1) - 1) * saturation
        g = _gray(u)
        u = (g + (u - g) * s).clamp(0, 1)
    return u * 2 - 1


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int, padding: str = "reflect") -> torch.Tensor:
    """`x` (float N x C x H x W) blurred per image by a Gaussian of std `sigma[i]` px (N), truncated at
    `radius` px, edges padded by `padding` (an `F.pad` mode); separable: rows, then columns.
    The one Gaussian blur of the project (augmentation here, the disturbances of `gans.disturb`)."""
    n, c, h, w = x.shape
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.view(-1, 1).to(x.dtype) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c) x (2 radius + 1)
    y = F.pad(x.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode=padding)
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)  # rows
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)  # columns
    return y.view(n, c, h, w)


def random_blur(x: torch.Tensor, r: torch.Tensor, kernel: int = 3,
                sigma: tuple[float, float] = (0.1, 2.0)) -> torch.Tensor:
    """torchvision GaussianBlur(kernel, sigma), sigma drawn per image (1 draw)."""
    return gaussian_blur(x, sigma[0] + (sigma[1] - sigma[0]) * r[:, 0], kernel // 2)


def jitter_blur(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The seed notebook's ColorJitter(brightness=0.2, saturation=0.2) + GaussianBlur(3) (3 draws)."""
    return random_blur(brightness_saturation(x, r[:, :2]), r[:, 2:])


def rotate(x: torch.Tensor, r: torch.Tensor, degrees: float = 15.0) -> torch.Tensor:
    """RandomRotation(degrees); corners are filled with black (-1), as torchvision does (1 draw)."""
    a = (2 * r[:, 0] - 1) * math.radians(degrees)
    cos, sin, zero = a.cos(), a.sin(), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def hflip(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """RandomHorizontalFlip(p=0.5) (1 draw)."""
    flip = _col(r, 0) < 0.5
    return torch.where(flip, x.flip(3), x)


# DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
# color + translation + cutout, every op differentiable w.r.t. x. The paper's integer draws
# (randint(lo, hi)) are lo + floor(u * (hi - lo)) of a uniform u: the same distribution.


def _randint(r: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """Integers in [low, high) from uniforms `r` (N), shaped N x 1 x 1."""
    return (low + (r * (high - low)).floor().clamp(max=high - low - 1)).long().view(-1, 1, 1)


def diff_color(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Brightness, saturation, contrast (3 draws)."""
    x = x + (_col(r, 0) - 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (_col(r, 1) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_col(r, 2) + 0.5) + mean


def diff_translation(x: torch.Tensor, r: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift by up to `ratio` of the side, zeros sliding in (2 draws)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = _randint(r[:, 0], -sh, sh + 1)
    ty = _randint(r[:, 1], -sw, sw + 1)
    gi, gj = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gi = (gi.unsqueeze(0) + tx + 1).clamp(0, h + 1)
    gj = (gj.unsqueeze(0) + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))  # zero border = what slides in
    flat = padded.permute(0, 2, 3, 1)  # n x (h+2) x (w+2) x c
    return flat[torch.arange(n, device=x.device).view(n, 1, 1), gi, gj].permute(0, 3, 1, 2)


def diff_cutout(x: torch.Tensor, r: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """A zeroed square of `ratio` of the side at a random place (2 draws)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = _randint(r[:, 0], 0, h + (1 - ch % 2))
    oy = _randint(r[:, 1], 0, w + (1 - cw % 2))
    top, left = ox - ch // 2, oy - cw // 2
    gi = torch.arange(h, device=x.device).view(1, h, 1)
    gj = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (gi >= top) & (gi < top + ch) & (gj >= left) & (gj < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diffaug(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """DiffAugment's color, translation and cutout (7 draws)."""
    return diff_cutout(diff_translation(diff_color(x, r[:, :3]), r[:, 3:5]), r[:, 5:7])


AUGMENTS = {
    "none": Augment(lambda x, r: x, draws=0, differentiable=False),
    "jitter-blur": Augment(jitter_blur, draws=3, differentiable=False),
    "rotate": Augment(rotate, draws=1, differentiable=False),
    "flip": Augment(hflip, draws=1, differentiable=False),
    "diffaug": Augment(diffaug, draws=7, differentiable=True),
}
"""the policies `--augment` names"""


def get_augment(name: str) -> Augment:
    try:
        return AUGMENTS[name]
    except KeyError:
        raise UserError(f"--augment: unknown policy {name!r}; choose one of {', '.join(AUGMENTS)}") from None
