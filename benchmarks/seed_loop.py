"""The seed notebooks' training loops, reproduced faithfully as the benchmark's reference.

Not used for studies: this is what users ran before gan-study (ImageFolder + PIL transforms +
DataLoader every epoch, Sigmoid + BCELoss, `.item()` every step, fp32), kept so `benchmarks.bench` can
measure our trainer against it on the same device, data and architecture.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from gans.config import TrainConfig
from gans.models import build_models


class _WithSigmoid(nn.Module):
    """The seeds' discriminators ended in nn.Sigmoid and were trained with nn.BCELoss."""

    def __init__(self, d: nn.Module):
        super().__init__()
        self.d = d

    def forward(self, x, labels=None):
        return torch.sigmoid(self.d(x, labels))


def photo_loader(folder: str, image_size: int, batch_size: int, limit: int = 0, jitter_blur: bool = True):
    """The DCGAN seed's input pipeline: ImageFolder + PIL transforms + DataLoader, decoded every epoch."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder

    steps = [T.Resize(image_size), T.CenterCrop(image_size)]
    if jitter_blur:
        steps += [T.ColorJitter(brightness=0.2, saturation=0.2), T.GaussianBlur(3)]
    steps += [T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]
    # ImageFolder wants class sub-folders: a flat photo folder is given as its parent + one class.
    from pathlib import Path

    p = Path(folder)
    root, cls = (p.parent, p.name) if not any(c.is_dir() for c in p.iterdir()) else (p, None)
    ds = ImageFolder(str(root), transform=T.Compose(steps),
                     is_valid_file=(lambda f: Path(f).parent.name == cls) if cls else None,
                     allow_empty=True)
    if limit:
        ds = Subset(ds, range(min(limit, len(ds))))
    return DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)


def mnist_loader(root: str, batch_size: int, limit: int = 0):
    """The MLP seed's input pipeline: torchvision MNIST + ToTensor + Normalize through a DataLoader.

    `root` must be writable: torchvision extracts the raw .gz files there (no network needed).
    """
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import MNIST

    ds = MNIST(root, train=True, download=True, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]))
    if limit:
        ds = Subset(ds, range(min(limit, len(ds))))
    return DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)


def seed_train(config: TrainConfig, loader, channels: int, device: str = "cpu", max_steps: int = 0):
    """Train like the seeds did; yields (images, seconds) per epoch. `max_steps` caps an epoch."""
    torch.manual_seed(config.seed)
    g, d = build_models(config, channels, 1)
    g, d = g.to(device), _WithSigmoid(d).to(device)
    criterion = nn.BCELoss()
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999))
    for _ in range(config.epochs):
        t0, seen = time.perf_counter(), 0
        for step, (real, _) in enumerate(loader):
            if max_steps and step >= max_steps:
                break
            real = real.to(device)
            b = real.shape[0]
            label = torch.full((b,), config.real_label, device=device)
            d.zero_grad()
            err_real = criterion(d(real).view(-1), label)
            err_real.backward()
            noise = torch.randn(b, config.nz, device=device)
            fake = g(noise)
            label.fill_(config.fake_label)
            err_fake = criterion(d(fake.detach()).view(-1), label)
            err_fake.backward()
            opt_d.step()
            g.zero_grad()
            label.fill_(1.0)
            err_g = criterion(d(fake).view(-1), label)
            err_g.backward()
            opt_g.step()
            # The seeds logged every step: each .item() is a host sync.
            _ = (err_real + err_fake).item(), err_g.item()
            seen += b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        yield seen, time.perf_counter() - t0
