"""Study presets: named bundles of config defaults, space overrides and study settings.

A preset only supplies defaults: CLI flags override its config values, a `--space` file overrides
its space entries. `full` is the real study (the default); `cpu` answers the epochs question on a 2-core
CPU in about an hour; `quick` is a smoke study that finishes in a few minutes; `folklore` is no
search at all but the folklore's own experiment (`study.folklore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gans.config import TrainConfig
from study import folklore


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    """TrainConfig field defaults (not searched unless the space names them)"""
    space: Mapping[str, Any] = field(default_factory=dict)
    """space overrides in space-file syntax, applied before the user's --space file"""
    trials: int = 50
    """default --trials"""
    pruner_startup: int = 5
    """trials that finish before the median pruner starts pruning"""
    workers: int = 1
    """default --workers"""
    confirm_top: int = 3
    """default --confirm-top: the best configurations retrained to the horizon after the search"""
    confirm_seeds: int = 3
    """default --confirm-seeds: fresh seeds per horizon configuration"""
    confirm_random: int = 2
    """default --confirm-random: random configurations of the space retrained beside them (unselected controls)"""
    horizon: int = 1000
    """epochs of the horizon runs (raised to the longest searched budget)"""
    horizon_eval_every: int = 25
    """evaluation grid of the horizon runs, in epochs"""

    def __post_init__(self):
        bad = set(self.config) - set(TrainConfig.__dataclass_fields__)
        if bad:
            raise ValueError(f"preset {self.name!r}: config names unknown fields {sorted(bad)}")
        if self.trials <= 0 or self.pruner_startup < 0:
            raise ValueError(f"preset {self.name!r}: trials must be > 0 and pruner_startup >= 0")


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="full",
        description="the real study: the family's whole space, metrics every 50 epochs",
        config={"eval_every": 50, "metrics": "fid,kid,is"},
        trials=50,
        pruner_startup=5,
    ),
    Preset(
        name="cpu",
        description="a study that answers on 2 CPU cores in about an hour: the seeds' MLP GAN on "
                    "1,000 MNIST digits at batch 32 (31 steps per epoch, like a 960-photo folder), FID against the "
                    "held-out test digits, budgets 100-1000 epochs, 16 trials on 2 workers, then horizon runs to 1000 "
                    "epochs (top 3, the baseline and 2 random configurations, 5 seeds each, trained together)",
        # fp32: bf16 gains nothing on matrices this small (benchmarks/RESULTS.md, 2026-11-27: one run 5,058
        # vs 4,689 images/s in bf16, 5 seeds together 9,180 vs 9,062), and FID with
        # 1,000 samples each side lies above the domain features' 128 dimensions.
        # FID against the held-out test split (never trained on), and against the training digits beside it.
        config={"model": "mlp", "data": "mnist", "image_size": 28, "limit": 1000, "eval_every": 50,
                "metrics": "fid,kid", "extractor": "domain", "num_samples": 1000, "precision": "fp32",
                "reference": "heldout"},
        # Width 512-1024 costs 3-5x the time per epoch at this size; 128-256 covers the seeds' 256.
        space={"epochs": [100, 1000], "batch_size": 32, "hidden": {"choices": [128, 256]}},
        # 16 trials, not 24: the search only picks the configurations whose horizon runs answer, and
        # 16 keeps the study within an hour here (the horizon runs are most of it).
        trials=16,
        pruner_startup=5,
        workers=2,
        # Five seeds per configuration, as GAN comparisons call for (Lucic et al. 2018), trained together as
        # one vectorized model (gans.trainer; the ratio is in benchmarks/RESULTS.md).
        confirm_seeds=5,
        confirm_random=2,
    ),
    Preset(
        name="quick",
        description="CPU smoke study in minutes: MLP GAN, 2,000 MNIST images, 3 epochs, small metric samples",
        config={"model": "mlp", "data": "mnist", "image_size": 28, "limit": 2000, "eval_every": 1,
                "metrics": "fid,kid", "extractor": "domain", "num_samples": 300},
        space={"epochs": 3},
        trials=4,
        pruner_startup=2,
        confirm_top=1,
        confirm_seeds=1,
        confirm_random=0,
        horizon=6,
        horizon_eval_every=1,
    ),
    Preset(
        name="folklore",
        description=f"no search: the folklore's own experiment, the seeds' DCGAN configurations, the paper's "
                    f"defaults and random controls on the first {folklore.LIMIT} photos of --data PATH (the rest held "
                    f"out), batch {folklore.BATCH_SIZE}, {folklore.SEEDS} seeds each to {folklore.HORIZON} epochs "
                    "(study.folklore)",
        trials=1,
        confirm_seeds=folklore.SEEDS,
        confirm_random=folklore.RANDOM_CONTROLS,
        horizon=folklore.HORIZON,
        horizon_eval_every=folklore.EVAL_EVERY,
    ),
)}
"""the presets `--preset` names"""
