"""Study presets: named bundles of config defaults, space overrides and study settings.

A preset only supplies defaults: CLI flags override its config values, a `--space` file overrides
its space entries. `full` is the real study (the default); `quick` is a CPU smoke study that
finishes in a few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gans.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    """TrainConfig field defaults (not searched unless the space names them)"""
    family_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """per model family ("mlp", "dcgan"): further TrainConfig defaults"""
    space: Mapping[str, Any] = field(default_factory=dict)
    """space overrides in space-file syntax, applied before the user's --space file"""
    trials: int = 50
    """default --trials"""
    pruner_startup: int = 5
    """trials that finish before the median pruner starts pruning"""


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> None:
    fields = set(TrainConfig.__dataclass_fields__)
    if not preset.name or preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is empty-named or already registered")
    for where, mapping in [("config", preset.config), *((f"family_config[{k}]", v)
                                                         for k, v in preset.family_config.items())]:
        bad = set(mapping) - fields
        if bad:
            raise ValueError(f"preset {preset.name!r}: {where} names unknown fields {sorted(bad)}")
    if preset.trials <= 0 or preset.pruner_startup < 0:
        raise ValueError(f"preset {preset.name!r}: trials must be > 0 and pruner_startup >= 0")
    PRESETS[preset.name] = preset


register_preset(Preset(
    name="full",
    description="the real study: the family's whole space, metrics every 50 epochs",
    config={"eval_every": 50, "metrics": "fid,kid,is"},
    # MLP GANs generate flat 28x28 digits; upsampling MNIST to 64 px only costs time.
    family_config={"mlp": {"image_size": 28}},
    trials=50,
    pruner_startup=5,
))

register_preset(Preset(
    name="quick",
    description="CPU smoke study in minutes: MLP GAN, 2,000 MNIST images, 3 epochs, small metric samples",
    config={"model": "mlp", "data": "mnist", "image_size": 28, "limit": 2000, "eval_every": 1,
            "metrics": "fid,kid", "extractor": "domain", "num_samples": 300},
    space={"epochs": 3},
    trials=4,
    pruner_startup=2,
))


def preset_config(preset: Preset, family: str) -> dict[str, Any]:
    return {**preset.config, **preset.family_config.get(family, {})}
