"""The seed notebooks' hand-tuned configurations (declared in `gans.baselines`), enqueued as a study's
first trials when they fit.

A baseline fits a study when its model is the study's model, its data kind (built-in data set or
photo folder) matches, and each of its values lies inside the searched range. Values the study fixes
(CLI flags, fixed space entries) win over the baseline's: the baseline then runs under the user's
fixed conditions. A searched field a baseline does not name (one newer than its notebook) takes
`TrainConfig`'s default, so a new searched field needs no baseline edited.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from gans.baselines import BASELINES, Baseline
from gans.config import TrainConfig
from gans.data import BUILTIN


DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def values(baseline: Baseline, fields) -> dict[str, Any]:
    """`baseline`'s value of each of `fields`: its own, else `TrainConfig`'s default (a notebook that
    predates a field ran with what the field's default reproduces)."""
    return {k: baseline.params.get(k, DEFAULTS[k]) for k in fields}


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
        params = values(b, searched)
        outside = [f"{k}={v!r}{'' if k in b.params else ' (the field default)'} outside {searched[k].describe()}"
                   for k, v in params.items() if not searched[k].contains(v)]
        if outside:
            skipped.append(f"{b.name}: " + "; ".join(outside))
            continue
        fit.append((b, params))
    return fit, skipped
