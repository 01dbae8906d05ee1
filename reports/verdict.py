"""The report's statistics, as pure functions of numbers and frames: bootstrap confidence intervals,
epoch buckets, how far a metric worsened after its best epoch, gains over baselines, and how an
interval relates to the folklore's 500–600 epochs. No store access and no plotting here, so every
number the verdict states can be unit-tested from known inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000
FOLKLORE_BAND = (500, 600)


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap percentile interval (NaN bounds when n < 2)."""

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def bootstrap_median(values: Iterable[float], *, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Median of `values` with a percentile-bootstrap `level` interval over `resamples` resamples
    drawn with a fixed seed (the same data always give the same interval)."""
    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite values")
    median = float(np.median(x))
    if x.size < 2:
        return Estimate(median, math.nan, math.nan, int(x.size), level)
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(resamples, x.size))]
    medians = np.median(samples, axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return Estimate(median, float(low), float(high), int(x.size), level)


def band_relation(low: float, high: float, band: tuple[float, float] = FOLKLORE_BAND) -> str:
    """How the interval [low, high] relates to `band`: 'contains' (the whole band lies inside),
    'overlaps', 'below' (the interval ends before the band) or 'above'."""
    b0, b1 = band
    if high < b0:
        return "below"
    if low > b1:
        return "above"
    if low <= b0 and b1 <= high:
        return "contains"
    return "overlaps"


def bucket_width(max_epoch: int) -> int:
    """Width in epochs of the box-plot buckets: 100 for studies that train to 300 epochs or more
    (buckets end at 100, 200, ...), otherwise about a tenth of the longest run on a 1-2-5 grid."""
    if max_epoch >= 300:
        return 100
    raw = max(1.0, max_epoch / 10)
    for w in (1, 2, 5, 10, 20, 25, 50):
        if w >= raw:
            return w
    return 100


def bucket_end(epoch: int, width: int) -> int:
    """The last epoch of the bucket holding `epoch` (epochs 1..width map to width)."""
    return int(math.ceil(epoch / width) * width)


def worsening(best: Sequence[float], last: Sequence[float], *, minimize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """How much the metric got worse from its best to its last evaluated epoch: (absolute change in
    metric units, change in % of the best value), positive = worse."""
    b, l = np.asarray(best, dtype=float), np.asarray(last, dtype=float)
    delta = (l - b) if minimize else (b - l)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(b != 0, 100.0 * delta / np.abs(b), np.nan)
    return delta, rel


def gain(best: float, baseline: float, *, minimize: bool = True) -> tuple[float, float]:
    """Improvement of `best` over `baseline`: (absolute, % of the baseline), positive = better."""
    d = (baseline - best) if minimize else (best - baseline)
    return d, (100.0 * d / abs(baseline) if baseline else math.nan)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for a single value) and count of the finite values."""
    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, 0
    return float(x.mean()), (float(x.std(ddof=1)) if x.size > 1 else math.nan), int(x.size)


def run_summary(history, *, minimize: bool = True):
    """Per run of a long metric history (run_id, step, value; one metric): the last step and its
    value, and the best step and its value (the earliest on ties)."""
    import pandas as pd

    rows = []
    for run_id, g in history.groupby("run_id", sort=True):
        g = g[np.isfinite(g["value"].astype(float))].sort_values("step")
        if g.empty:
            continue
        i = g["value"].idxmin() if minimize else g["value"].idxmax()
        rows.append({"run_id": run_id, "last_step": int(g["step"].iloc[-1]), "last_value": float(g["value"].iloc[-1]),
                     "best_step": int(g.loc[i, "step"]), "best_value": float(g.loc[i, "value"])})
    return pd.DataFrame(rows, columns=["run_id", "last_step", "last_value", "best_step", "best_value"])


def best_so_far(values: Sequence[float], *, minimize: bool = True) -> np.ndarray:
    """Running best of `values` (NaNs skipped; NaN until the first finite value)."""
    out, cur = np.empty(len(values)), math.nan
    for i, v in enumerate(values):
        v = float(v)
        if math.isfinite(v) and (not math.isfinite(cur) or (v < cur if minimize else v > cur)):
            cur = v
        out[i] = cur
    return out


def fmt(x: float, digits: int = 4) -> str:
    """A number for prose and tables: `digits` significant digits, integers kept whole, '–' for NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.{digits}g}"
