"""The seed notebooks' hand-tuned configurations, by name: model, data kind, values and where they come
from. Declared here, below the study that enqueues them (`study.baselines`: when a baseline fits a
study, and that it names every searched field) and the report that compares a baseline's run with its
values (`reports.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Baseline:
    name: str
    model: str
    data: str
    """"builtin" (MNIST, Fashion-MNIST) or "folder" (a photo folder)"""
    params: Mapping[str, Any]
    source: str
    """where the values come from"""

    def __post_init__(self):
        if self.data not in ("builtin", "folder"):
            raise ValueError(f"baseline {self.name!r}: data must be 'builtin' or 'folder'")


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline(
        name="dcgan-jitter-blur-54",
        model="dcgan",
        data="folder",
        params={"epochs": 54, "lr_g": 3e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 32, "nz": 30,
                "ngf": 64, "ndf": 32, "real_label": 1.0, "fake_label": 0.0, "augment": "jitter-blur"},
        source="DCGAN seed on a photo folder: lr_G a bit above lr_D, colour jitter + blur, stopped at 54 epochs",
    ),
    Baseline(
        name="dcgan-smooth-600",
        model="dcgan",
        data="folder",
        params={"epochs": 600, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 64, "nz": 100,
                "ngf": 64, "ndf": 64, "real_label": 0.9, "fake_label": 0.1, "augment": "none"},
        source="DCGAN seed with label targets 0.9/0.1 and 600 epochs; other values as in the DCGAN paper",
    ),
    Baseline(
        name="mlp-gan-100",
        model="mlp",
        data="builtin",
        params={"epochs": 100, "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5, "batch_size": 200, "nz": 100,
                "hidden": 256, "dropout": 0.3, "real_label": 1.0, "fake_label": 0.0, "augment": "none"},
        source="vanilla MLP GAN seed on MNIST: lr 2e-4, batch 200, 100 epochs",
    ),
)}
"""the baselines by name"""
