"""The seed notebooks' hand-tuned configurations, enqueued as a study's first trials when they fit.

A baseline fits a study when its model is the study's model, its data kind (built-in data set or
photo folder) matches, and each of its values lies inside the searched range. Values the study fixes
(CLI flags, fixed space entries) win over the baseline's: the baseline then runs under the user's
fixed conditions. Searched fields a baseline does not name would be drawn by the sampler, so every
baseline names all the fields of its family's default space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gans.data import BUILTIN
from study.space import FAMILY, SPACES


@dataclass(frozen=True)
class Baseline:
    name: str
    model: str
    data: str
    """"builtin" (MNIST, Fashion-MNIST) or "folder" (a photo folder)"""
    params: Mapping[str, Any]
    source: str
    """where the values come from"""


BASELINES: dict[str, Baseline] = {}


def register_baseline(baseline: Baseline) -> None:
    if not baseline.name or baseline.name in BASELINES:
        raise ValueError(f"baseline {baseline.name!r} is empty-named or already registered")
    if baseline.model not in FAMILY:
        raise ValueError(f"baseline {baseline.name!r}: unknown model {baseline.model!r}")
    if baseline.data not in ("builtin", "folder"):
        raise ValueError(f"baseline {baseline.name!r}: data must be 'builtin' or 'folder'")
    missing = set(SPACES[FAMILY[baseline.model]]) - set(baseline.params)
    if missing:
        raise ValueError(f"baseline {baseline.name!r}: names no value for searched fields {sorted(missing)}")
    BASELINES[baseline.name] = baseline


register_baseline(Baseline(
    name="dcgan-jitter-blur-54",
    model="dcgan",
    data="folder",
    params={"epochs": 54, "lr_g": 3e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 32, "nz": 30,
            "ngf": 64, "ndf": 32, "real_label": 1.0, "fake_label": 0.0, "augment": "jitter-blur"},
    source="DCGAN seed on a photo folder: lr_G a bit above lr_D, colour jitter + blur, stopped at 54 epochs",
))

register_baseline(Baseline(
    name="dcgan-smooth-600",
    model="dcgan",
    data="folder",
    params={"epochs": 600, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 64, "nz": 100,
            "ngf": 64, "ndf": 64, "real_label": 0.9, "fake_label": 0.1, "augment": "none"},
    source="DCGAN seed with label targets 0.9/0.1 and 600 epochs; other values as in the DCGAN paper",
))

register_baseline(Baseline(
    name="mlp-gan-100",
    model="mlp",
    data="builtin",
    params={"epochs": 100, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 200, "nz": 100,
            "hidden": 256, "dropout": 0.3, "real_label": 1.0, "fake_label": 0.0, "augment": "none"},
    source="vanilla MLP GAN seed on MNIST: lr 2e-4, batch 200, 100 epochs",
))


def data_kind(data: str) -> str:
    return "builtin" if data in BUILTIN else "folder"


def fitting(model: str, data: str, searched: Mapping[str, Any]) -> tuple[list[tuple[Baseline, dict]], list[str]]:
    """Baselines that fit a study, each with its Optuna params (searched fields only), and one
    line per baseline of this model that does not fit, saying why."""
    fit, skipped = [], []
    for b in BASELINES.values():
        if b.model != model:
            continue
        if b.data != data_kind(data):
            skipped.append(f"{b.name}: made for a {b.data} data set, not {data}")
            continue
        outside = [f"{k}={b.params[k]!r} outside {p.describe()}" for k, p in searched.items()
                   if k in b.params and not p.contains(b.params[k])]
        unnamed = [k for k in searched if k not in b.params]
        if outside or unnamed:
            skipped.append(f"{b.name}: " + "; ".join(outside + [f"names no {k}" for k in unnamed]))
            continue
        fit.append((b, {k: b.params[k] for k in searched}))
    return fit, skipped
