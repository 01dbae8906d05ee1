"""The seed notebooks' hand-tuned configurations (declared in `gans.baselines`), enqueued as a study's
first trials when they fit.

A baseline fits a study when its model is the study's model, its data kind (built-in data set or
photo folder) matches, and each of its values lies inside the searched range. Values the study fixes
(CLI flags, fixed space entries) win over the baseline's: the baseline then runs under the user's
fixed conditions. Searched fields a baseline does not name would be drawn by the sampler, so every
baseline names all the fields of its family's default space.
"""

from __future__ import annotations

from typing import Any, Mapping

from gans.baselines import BASELINES, Baseline
from gans.data import BUILTIN
from study.space import FAMILY, SPACES


def check_baseline(baseline: Baseline) -> None:
    """A ValueError unless `baseline`'s model has a search space and it names every field of it:
    searched fields a baseline does not name would be drawn by the sampler."""
    if baseline.model not in FAMILY:
        raise ValueError(f"baseline {baseline.name!r}: unknown model {baseline.model!r}")
    missing = set(SPACES[FAMILY[baseline.model]]) - set(baseline.params)
    if missing:
        raise ValueError(f"baseline {baseline.name!r}: names no value for searched fields {sorted(missing)}")


for _baseline in BASELINES.values():
    check_baseline(_baseline)


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
