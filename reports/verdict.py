"""The report's statistics, as pure functions of numbers and frames: bootstrap confidence intervals
(plain and hierarchical), where horizon-run curves bottom out, the band-versus-horizon contrasts, the
evaluation noise, the folklore sentence, and gains over baselines. No store access and no plotting
here, so every number the verdict states can be unit-tested from known inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

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


# ---------------------------------------------------------------- horizon runs: the epochs verdict
#
# The verdict reads only horizon runs: every run trained to the same horizon H on one evaluation
# grid, several seeds per configuration. A search trial's best epoch is capped by its sampled budget
# and is therefore never used for it.

END_WINDOW = 100
"""epochs at the end of a horizon run compared with the folklore band (as wide as the band)"""
COLLAPSE_RATIO = 2.0
"""a run whose metric at the horizon is more than this multiple of its own minimum collapsed"""
NOISE_Z = 1.96
LOCATIONS = ("no peak before H", "earlier than 500", "inside 500–600", "later than 600", "band within noise",
             "undetermined")
CONTRASTS = ("worse at H", "better at H", "no difference")


def noise_sd(repeats) -> dict[Any, float]:
    """Per run, the standard deviation of repeated evaluations of one generator (the same epoch
    scored on several sample sets): the pooled within-epoch SD, sqrt(mean of the variances). `repeats`
    is a frame with columns run_id, epoch, value (two or more rows per run and epoch)."""
    out: dict[Any, float] = {}
    for run_id, g in repeats.groupby("run_id", sort=False):
        variances = [float(np.var(e["value"].astype(float), ddof=1)) for _, e in g.groupby("epoch") if len(e) > 1]
        out[run_id] = math.sqrt(float(np.mean(variances))) if variances else math.nan
    return out


def run_positions(epochs: Sequence[int], values: Sequence[float], *, horizon: int, noise: float = math.nan,
                  band: tuple[int, int] = FOLKLORE_BAND, window: int = END_WINDOW) -> dict[str, Any]:
    """Where one horizon run's curve (lower is better) bottoms out, and how its folklore band and its
    end compare:

    - best_epoch / best_value: the evaluated epoch with the lowest value (the earliest on ties);
    - earliest_ok: the first epoch within noise of the best (value <= best + 1.96 * sqrt(2) * noise,
      the 95 % band of the difference of two evaluations), the best epoch itself without a noise figure;
    - gap: the best value inside the band minus the best anywhere (>= 0; NaN without band evaluations);
    - contrast: the mean over the last `window` epochs (H - window, H] minus the mean over the band,
      both windows equally wide, so flat curves give 0 in expectation (positive: worse at H);
    - at_h_minus_band_best: the value at the horizon minus the best inside the band (the literal
      question; biased towards "worse at H", since a minimum of several noisy values is low);
    - collapsed: the value at the horizon is above `COLLAPSE_RATIO` times the minimum.
    """
    e = np.asarray(epochs, dtype=int)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(v)
    e, v = e[keep], v[keep]
    order = np.argsort(e, kind="stable")
    e, v = e[order], v[order]
    nan = math.nan
    if e.size == 0:
        return {"best_epoch": nan, "best_value": nan, "earliest_ok": nan, "gap": nan, "contrast": nan,
                "at_h_minus_band_best": nan, "at_horizon": nan, "reached": False, "collapsed": False, "in_band": False}
    i = int(np.argmin(v))
    best_epoch, best_value = int(e[i]), float(v[i])
    tol = NOISE_Z * math.sqrt(2) * noise if math.isfinite(noise) else 0.0
    earliest_ok = int(e[np.argmax(v <= best_value + tol)])
    in_band = (e >= band[0]) & (e <= band[1])
    at_end = e > horizon - window
    band_best = float(v[in_band].min()) if in_band.any() else nan
    reached = int(e[-1]) >= horizon
    at_h = float(v[-1]) if reached else nan
    return {
        "best_epoch": best_epoch, "best_value": best_value, "earliest_ok": earliest_ok,
        "gap": band_best - best_value if in_band.any() else nan,
        "contrast": float(v[at_end].mean() - v[in_band].mean()) if in_band.any() and at_end.any() and reached else nan,
        "at_h_minus_band_best": at_h - band_best if reached and in_band.any() else nan,
        "at_horizon": at_h, "reached": reached,
        "collapsed": bool(reached and best_value > 0 and at_h > COLLAPSE_RATIO * best_value),
        "in_band": bool(band[0] <= best_epoch <= band[1]),
    }


def hierarchical_bootstrap(groups: Mapping[Any, Sequence[float]], statistic: Callable = np.median, *,
                           level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED) -> Estimate:
    """`statistic` (np.median or np.mean) of all values pooled, with a two-level percentile-bootstrap
    interval: each resample draws the groups (configurations) with replacement, then the values
    (seeds) within each drawn group with replacement. Seeds of one configuration are not independent
    of each other, so resampling them alone would understate the uncertainty. NaNs are dropped; `n`
    counts the values."""
    clean = [np.asarray([float(x) for x in g], dtype=float) for g in groups.values()]
    clean = [g[np.isfinite(g)] for g in clean]
    clean = [g for g in clean if g.size]
    if not clean:
        raise ValueError("no finite values")
    pooled = np.concatenate(clean)
    value = float(statistic(pooled))
    if pooled.size < 2:
        return Estimate(value, math.nan, math.nan, int(pooled.size), level)
    rng = np.random.default_rng(seed)
    k, width = len(clean), max(g.size for g in clean)
    # drawn[r, j] = group j resampled within itself in resample r, NaN-padded to a common width.
    drawn = np.full((resamples, k, width), np.nan)
    for j, g in enumerate(clean):
        drawn[:, j, :g.size] = g[rng.integers(0, g.size, size=(resamples, g.size))]
    picked = rng.integers(0, k, size=(resamples, k))
    sample = np.take_along_axis(drawn, picked[:, :, None], axis=1).reshape(resamples, k * width)
    nan_stat = {np.median: np.nanmedian, np.mean: np.nanmean}[statistic]
    stats = nan_stat(sample, axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high), int(pooled.size), level)


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value that the paired differences centre on 0 (NaN with
    fewer than 2 non-zero differences)."""
    from scipy.stats import wilcoxon

    d = np.asarray([float(x) for x in differences], dtype=float)
    d = d[np.isfinite(d)]
    if np.count_nonzero(d) < 2:
        return math.nan
    return float(wilcoxon(d).pvalue)


def classify_location(best: Estimate, horizon: int, band: tuple[int, int] = FOLKLORE_BAND) -> str:
    """Where the curves bottom out, from the CI of the median best epoch: 'no peak before H' (the CI
    lies in the last tenth of the horizon: the curves were still improving), 'earlier than 500',
    'inside 500–600', 'later than 600', or 'undetermined' (the CI straddles an edge of the band)."""
    if not best.has_ci:
        return "undetermined"
    if best.low >= 0.9 * horizon:
        return "no peak before H"
    if best.high < band[0]:
        return "earlier than 500"
    if best.low > band[1]:
        return "later than 600"
    if band[0] <= best.low and best.high <= band[1]:
        return "inside 500–600"
    return "undetermined"


def classify_contrast(contrast: Estimate) -> str:
    """'worse at H' when the CI of the end-minus-band contrast lies above 0, 'better at H' when below,
    else 'no difference' (lower is better)."""
    if contrast.has_ci and contrast.low > 0:
        return "worse at H"
    if contrast.has_ci and contrast.high < 0:
        return "better at H"
    return "no difference"


def folklore_sentence(location: str, contrast: str, horizon: int, best: Estimate, delta: Estimate, metric: str,
                      gap: Estimate | None = None) -> str:
    """One sentence answering "500-600 epochs is best, 1000 goes weird", from the two classifications."""
    if horizon < FOLKLORE_BAND[1] + END_WINDOW:
        return (f"Is 500–600 epochs best? Not testable here: the horizon runs end at {horizon} epochs, too short "
                f"to reach past 500–600 (best epoch median {fmt(best.value)}).")
    where = {
        "no peak before H": f"the curves were still improving at {horizon} epochs, so 500–600 is not where they "
                            "bottom out",
        "earlier than 500": f"the curves bottom out earlier, around epoch {fmt(best.value)}",
        "inside 500–600": f"yes, the curves bottom out inside 500–600 (median best epoch {fmt(best.value)})",
        "later than 600": f"no, the curves bottom out later, around epoch {fmt(best.value)}",
        "band within noise": f"500–600 is as good as the best epoch within the evaluation noise (the best "
                             f"inside 500–600 is {fmt(gap.value)} above each run's best, CI up to {fmt(gap.high)}), "
                             "but no epoch stands out",
        "undetermined": f"the data cannot place the best epoch relative to 500–600 (median {fmt(best.value)}, "
                        f"CI {fmt(best.low)}–{fmt(best.high)})",
    }[location]
    end = {
        "worse at H": f"and {horizon} epochs does go worse: {metric} {fmt(delta.value)} higher than in 500–600",
        "better at H": f"and {horizon} epochs does not go weird: {metric} {fmt(-delta.value)} lower than in 500–600",
        "no difference": f"and {horizon} epochs is no different from 500–600 within the CI",
    }[contrast]
    return f"Is 500–600 epochs best? {where[0].upper()}{where[1:]}; {end}."


@dataclass
class HorizonVerdict:
    """The epochs verdict of a set of horizon runs (see `horizon_verdict`)."""

    horizon: int
    runs: Any
    """one row per run: run_id, source, run_positions' columns, noise, and for runs that did not
    reach the horizon reached=False (they are left out of every estimate)"""
    best_epoch: Estimate
    earliest_ok: Estimate
    in_band: Estimate
    """share of runs whose best epoch lies in 500–600"""
    gap: Estimate
    gap_within_noise: int
    contrast: Estimate
    literal: Estimate | None
    wilcoxon_p: float
    location: str
    contrast_class: str
    sentence: str
    configurations: int

    @property
    def used(self):
        return self.runs[self.runs["reached"]]


def horizon_verdict(curves, *, horizon: int, noise: Mapping[Any, float] | None = None, metric: str = "FID",
                    minimize: bool = True, **boot) -> HorizonVerdict:
    """The verdict from horizon runs. `curves` is a long frame with columns run_id, source (the
    configuration: a trial or a baseline), epoch and value; `noise` maps run_id to its evaluation
    SD (see `noise_sd`). Only runs that reached `horizon` count; estimates use the two-level bootstrap
    (configurations, then seeds)."""
    import pandas as pd

    noise = noise or {}
    rows = []
    for (source, run_id), g in curves.groupby(["source", "run_id"], sort=False):
        vals = g["value"].astype(float) * (1 if minimize else -1)
        rows.append({"run_id": run_id, "source": source, "noise": noise.get(run_id, math.nan),
                     **run_positions(g["epoch"], vals, horizon=horizon, noise=noise.get(run_id, math.nan))})
    runs = pd.DataFrame(rows)
    if runs.empty or not runs["reached"].any():
        raise ValueError(f"no run reached the horizon of {horizon} epochs")
    used = runs[runs["reached"]]

    def groups(col: str) -> dict:
        return {s: g[col].astype(float).to_numpy() for s, g in used.groupby("source", sort=False)}

    best = hierarchical_bootstrap(groups("best_epoch"), **boot)
    contrast = hierarchical_bootstrap(groups("contrast"), **boot) if used["contrast"].notna().any() else \
        Estimate(math.nan, math.nan, math.nan, 0)
    gap = hierarchical_bootstrap(groups("gap"), **boot) if used["gap"].notna().any() else \
        Estimate(math.nan, math.nan, math.nan, 0)
    literal = (hierarchical_bootstrap(groups("at_h_minus_band_best"), **boot)
               if used["at_h_minus_band_best"].notna().any() else None)
    tol = NOISE_Z * math.sqrt(2) * used["noise"].fillna(0.0)
    location = classify_location(best, horizon)
    if location not in ("inside 500–600", "no peak before H") and gap.has_ci and 0 < gap.high <= float(tol.median()):
        # The best epochs scatter, but 500-600 is as good as the best within the evaluation noise.
        location = "band within noise"
    cclass = classify_contrast(contrast)
    return HorizonVerdict(
        horizon=horizon, runs=runs, best_epoch=best,
        earliest_ok=hierarchical_bootstrap(groups("earliest_ok"), **boot),
        in_band=hierarchical_bootstrap({s: v.astype(float) for s, v in groups("in_band").items()}, np.mean, **boot),
        gap=gap, gap_within_noise=int((used["gap"] <= tol).sum()),
        contrast=contrast, literal=literal, wilcoxon_p=wilcoxon_p(used["contrast"]),
        location=location, contrast_class=cclass,
        sentence=folklore_sentence(location, cclass, horizon, best, contrast, metric, gap),
        configurations=int(used["source"].nunique()),
    )
