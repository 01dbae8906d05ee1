"""Augmentation policies: batched, shape-preserving, in range, DiffAugment differentiable."""

import pytest
import torch

from gans.augment import AUGMENTS, gaussian_blur, get_augment
from gans.data import load_images
from gans.errors import UserError


@pytest.fixture(scope="module")
def cat_batch(cats):
    return load_images(str(cats), image_size=32, limit=16).batch(torch.arange(16))[0]


@pytest.mark.parametrize("name", ["none", "jitter-blur", "rotate", "flip", "diffaug"])
def test_policies_keep_shape_and_change_images(name, cat_batch):
    torch.manual_seed(0)
    y = get_augment(name).apply(cat_batch.clone())
    assert y.shape == cat_batch.shape and torch.isfinite(y).all()
    if name != "diffaug":  # DiffAugment's color op may leave [-1, 1], as in the paper
        assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    changed = (y - cat_batch).abs().flatten(1).amax(1) > 1e-3
    if name == "none":
        assert not changed.any()
    elif name == "flip":
        assert 0 < changed.sum() < 16  # each image flipped with p = 0.5
        assert torch.equal(y[changed], cat_batch[changed].flip(3))
    else:
        assert changed.all()


def test_gray_images_work(data_root):
    x = load_images("mnist", data_root=data_root, image_size=28, limit=8).batch(torch.arange(8))[0]
    for name in AUGMENTS:
        assert get_augment(name).apply(x).shape == x.shape


def test_diffaug_is_differentiable(cat_batch):
    x = cat_batch.clone().requires_grad_(True)
    get_augment("diffaug").apply(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert get_augment("diffaug").differentiable and not get_augment("jitter-blur").differentiable


def test_policy_names_are_flag_values_and_unknown_ones_are_refused():
    assert all(name.replace("-", "").isalnum() for name in AUGMENTS)
    with pytest.raises(UserError, match="--augment"):
        get_augment("mixup")


def test_gaussian_blur_spreads_an_impulse_into_the_normalised_gaussian_per_image():
    x = torch.zeros(2, 3, 9, 9)
    x[:, :, 4, 4] = 1
    sigma = torch.tensor([0.5, 1.5])
    y = gaussian_blur(x, sigma, radius=3)
    for i, s in enumerate(sigma.tolist()):
        t = torch.arange(-3, 4, dtype=torch.float32)
        k = torch.exp(-t**2 / (2 * s**2))
        k = k / k.sum()
        assert torch.allclose(y[i, :, 1:8, 1:8], (k[:, None] * k[None, :]).expand(3, 7, 7), atol=1e-6)
    assert torch.allclose(y.sum((2, 3)), torch.ones(2, 3), atol=1e-5)  # mass kept: the kernel sums to 1
    flat = torch.full((1, 1, 5, 5), 0.25)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([2.0]), 2, padding="replicate"), flat)
