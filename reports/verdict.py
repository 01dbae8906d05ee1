"""The report's statistics, as pure functions of numbers and frames: bootstrap confidence intervals
(plain and two-stage), exact bounds and tests at the configuration level, where horizon-run curves
bottom out, the band-versus-horizon contrasts, both kinds of evaluation noise, the folklore sentence,
and gains over baselines. No store access and no plotting here, so every number the verdict states
can be unit-tested from known inputs.

The unit of evidence is the configuration: seeds of one configuration share everything but their
seed, so k configurations give k independent answers however many seeds each has. Intervals are
Hesterberg's expanded percentile bootstrap (exact-ish at small k), shares get exact Clopper-Pearson
bounds, and the contrast gets an exact sign-flip test over the configurations' seed-averaged curves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from gans.metric_keys import RESAMPLE
from tracking.stores import GROUPS  # horizon configurations by how they were chosen

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000
FOLKLORE_BAND = (500, 600)
"""the default band: "500-600 epochs is best" (`--band`)"""
EXACT_FLIPS = 16
"""up to this many configurations the sign-flip test enumerates every sign pattern"""


@dataclass(frozen=True)
class Estimate:
    """A statistic with its confidence interval (NaN bounds when there is none)."""

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


def parse_band(text: str) -> tuple[int, int]:
    """'500-600' -> (500, 600): the epochs the folklore names as best, first <= last."""
    m = re.fullmatch(r"\s*(\d+)\s*[-–:]\s*(\d+)\s*", str(text))
    if m is None:
        raise ValueError(f"{text!r} is not a band of epochs; write FIRST-LAST, e.g. 500-600")
    first, last = int(m.group(1)), int(m.group(2))
    if first > last:
        raise ValueError(f"{text!r}: the first epoch is after the last; write e.g. {last}-{first}")
    return first, last


def band_text(band: tuple[int, int]) -> str:
    return f"{band[0]}–{band[1]}"


def _finite(values: Iterable[float]) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype=float)
    return x[np.isfinite(x)]


def expanded_level(level: float, units: int) -> float:
    """The nominal level at which a percentile bootstrap over `units` independent units gives the
    width of a t interval: Hesterberg's (2015) expanded percentile interval, z = sqrt(n/(n-1)) t_{n-1}.
    Plain percentile intervals are too narrow at small n (sd with n, not n-1, and z instead of t)."""
    if units < 2:
        return level
    z = math.sqrt(units / (units - 1)) * stats.t.ppf(1 - (1 - level) / 2, units - 1)
    return 1 - 2 * stats.norm.sf(z)


def percentile_interval(samples: np.ndarray, level: float, units: int) -> tuple[float, float]:
    """The expanded percentile interval of bootstrap `samples` over `units` independent units."""
    alpha = (1 - expanded_level(level, units)) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_median(values: Iterable[float], *, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Median of `values` with an expanded percentile-bootstrap `level` interval over `resamples`
    resamples drawn with a fixed seed (the same data always give the same interval)."""
    x = _finite(values)
    if x.size == 0:
        raise ValueError("no finite values")
    median = float(np.median(x))
    if x.size < 2:
        return Estimate(median, math.nan, math.nan, int(x.size), level)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(resamples, x.size))], axis=1)
    return Estimate(median, *percentile_interval(medians, level, x.size), int(x.size), level)


def gain(best: float, baseline: float, *, minimize: bool = True) -> tuple[float, float]:
    """Improvement of `best` over `baseline`: (absolute, % of the baseline), positive = better."""
    d = (baseline - best) if minimize else (best - baseline)
    return d, (100.0 * d / abs(baseline) if baseline else math.nan)


def mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for a single value) and count of the finite values."""
    x = _finite(values)
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


# ---------------------------------------------------------------- exact statistics over configurations

def clopper_pearson(successes: int, n: int, level: float = 0.95) -> Estimate:
    """The share successes/n with its exact (Clopper-Pearson) `level` interval: 0 of 9 still allows
    up to 0.34, 0 of 3 up to 0.71."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan, 0, level)
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes of {n}")
    alpha = (1 - level) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(alpha, successes, n - successes + 1))
    high = 1.0 if successes == n else float(stats.beta.ppf(1 - alpha, successes + 1, n - successes))
    return Estimate(successes / n, low, high, n, level)


def sign_flip_p(values: Iterable[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> float:
    """Two-sided permutation p-value that `values` (one per independent unit) centre on 0: the share
    of sign patterns whose |sum| reaches the observed |sum|, all 2^k patterns up to `EXACT_FLIPS`
    units, else `resamples` random ones ((hits + 1) / (resamples + 1)). NaN without values."""
    d = _finite(values)
    k = d.size
    if k == 0:
        return math.nan
    observed = abs(d.sum()) * (1 - 1e-12)
    if k <= EXACT_FLIPS:
        signs = 1 - 2 * ((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed))
    signs = 1 - 2 * np.random.default_rng(seed).integers(0, 2, size=(resamples, k))
    # The observed pattern counts as one of the draws, so a Monte Carlo p is never 0.
    return float((np.sum(np.abs(signs @ d) >= observed) + 1) / (resamples + 1))


def smallest_p(units: int) -> float:
    """The smallest two-sided p-value the sign-flip test can give with `units` units (2 / 2^k)."""
    return min(1.0, 2.0 / 2 ** units) if units > 0 else math.nan


def two_stage_draws(groups: Sequence[np.ndarray], statistic: Callable, *, resamples: int, seed: int) -> np.ndarray:
    """`resamples` bootstrap values of `statistic` over the pooled values of non-empty `groups`: each
    resample draws the groups (configurations) with replacement, then for every drawn group a fresh
    resample of its values (seeds), so a group drawn twice contributes two independent seed resamples."""
    rng = np.random.default_rng(seed)
    k = len(groups)
    sizes = np.array([g.size for g in groups])
    width = int(sizes.max())
    padded = np.full((k, width), np.nan)
    for j, g in enumerate(groups):
        padded[j, :g.size] = g
    picked = rng.integers(0, k, size=(resamples, k))  # the configurations of each resample
    n = sizes[picked][..., None]  # resamples x k x 1: how many seeds each drawn configuration has
    seeds = (rng.random((resamples, k, width)) * n).astype(int)  # a fresh seed resample per draw
    sample = np.where(np.arange(width) < n, padded[picked[..., None], seeds], np.nan)
    nan_stat = {np.median: np.nanmedian, np.mean: np.nanmean}[statistic]
    return nan_stat(sample.reshape(resamples, k * width), axis=1)


def hierarchical_bootstrap(groups: Mapping[Any, Sequence[float]], statistic: Callable = np.median, *,
                           level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED) -> Estimate:
    """`statistic` (np.median or np.mean) of all values pooled, with the expanded percentile interval
    of `two_stage_draws` over the number of groups (over the values when there is one group): seeds
    of one configuration are not independent of each other, so the groups are the units. NaNs are
    dropped; `n` counts the values."""
    clean = [g for g in (_finite(v) for v in groups.values()) if g.size]
    if not clean:
        raise ValueError("no finite values")
    pooled = np.concatenate(clean)
    value = float(statistic(pooled))
    if pooled.size < 2:
        return Estimate(value, math.nan, math.nan, int(pooled.size), level)
    draws = two_stage_draws(clean, statistic, resamples=resamples, seed=seed)
    units = len(clean) if len(clean) > 1 else int(pooled.size)
    return Estimate(value, *percentile_interval(draws, level, units), int(pooled.size), level)


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value that the paired differences centre on 0 (NaN with
    fewer than 2 non-zero differences)."""
    d = _finite(differences)
    if np.count_nonzero(d) < 2:
        return math.nan
    return float(stats.wilcoxon(d).pvalue)


# ---------------------------------------------------------------- horizon runs: the epochs verdict
#
# The verdict reads only horizon runs: every run trained to the same horizon H on one evaluation
# grid, several seeds per configuration. A search trial's best epoch is capped by its sampled budget
# and is therefore never used for it.

END_WINDOW = 100
"""epochs at the end of a horizon run compared with the folklore band"""
COLLAPSE_RATIO = 2.0
"""a run whose metric at the horizon is more than this multiple of its own minimum collapsed"""
NOISE_Z = 1.96
MAD_TO_SD = 1.4826
"""the SD of a normal distribution per unit of its median absolute deviation"""
FEW_CONFIGURATIONS = 6
"""below this many configurations no two-sided test across them can reach p < 0.05"""


def noise_sd(repeats) -> dict[Any, float]:
    """Per run, the standard deviation of repeated evaluations of one generator (the same epoch
    scored on several sample sets): the pooled within-epoch SD, sqrt(mean of the variances). `repeats`
    is a frame with columns run_id, epoch, value (two or more rows per run and epoch)."""
    out: dict[Any, float] = {}
    for run_id, g in repeats.groupby("run_id", sort=False):
        variances = [float(np.var(e["value"].astype(float), ddof=1)) for _, e in g.groupby("epoch") if len(e) > 1]
        out[run_id] = math.sqrt(float(np.mean(variances))) if variances else math.nan
    return out


def curves_and_noise(frame, metric: str) -> tuple[pd.DataFrame, dict[Any, float]]:
    """The verdict's inputs from a horizon frame (the columns of a report's horizon.csv): the curves
    (run_id, source, group when present, epoch, value = `metric`) and each run's re-scoring SD
    (`noise_sd` over the original value and its `<metric>_resample_<k>` at the same epoch)."""
    cols = ["run_id", "source", *(["group"] if "group" in frame else []), "epoch", metric]
    curves = frame.loc[frame[metric].notna(), cols].rename(columns={metric: "value"})
    resampled = [c for c in frame.columns if c.startswith(f"{metric}{RESAMPLE}")]
    repeats = frame.melt(id_vars=["run_id", "epoch"], value_vars=[metric, *resampled]).dropna()
    return curves, noise_sd(repeats)  # epochs scored once add nothing to it


def jitter_sd(values: Sequence[float]) -> float:
    """The SD of a curve's evaluation-to-evaluation jitter: the second differences of consecutive
    evaluations cancel a locally linear trend and have variance 6 sigma^2 for independent noise of SD
    sigma; their median absolute deviation keeps the curve's real bends out. NaN below 3 values."""
    v = _finite(values)
    if v.size < 3:
        return math.nan
    d2 = v[:-2] - 2 * v[1:-1] + v[2:]
    return MAD_TO_SD * float(np.median(np.abs(d2 - np.median(d2)))) / math.sqrt(6)


def run_positions(epochs: Sequence[int], values: Sequence[float], *, horizon: int, noise: float = math.nan,
                  band: tuple[int, int] = FOLKLORE_BAND, window: int = END_WINDOW) -> dict[str, Any]:
    """Where one curve (lower is better) bottoms out, and how its band and its end compare:

    - best_epoch / best_value: the evaluated epoch with the lowest value (the earliest on ties);
    - earliest_ok: the first epoch within noise of the best (value <= best + 1.96 * sqrt(2) * noise,
      the 95 % band of the difference of two evaluations), the best epoch itself without a noise figure;
    - gap: the best value inside the band minus the best anywhere (>= 0; NaN without band evaluations);
    - contrast: the mean over the last `window` epochs (H - window, H] minus the mean over the band
      (positive: worse at H);
    - at_h_minus_band_best: the value at the horizon minus the best inside the band (the literal
      question; biased towards "worse at H", since a minimum of several noisy values is low);
    - collapsed: the value at the horizon is above `COLLAPSE_RATIO` times the minimum.
    """
    e = np.asarray(epochs, dtype=int)
    v = np.asarray(values, dtype=float)
    keep = np.isfinite(v)
    order = np.argsort(e[keep], kind="stable")
    e, v = e[keep][order], v[keep][order]
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
    has_band = bool(in_band.any())
    band_best = float(v[in_band].min()) if has_band else nan
    reached = int(e[-1]) >= horizon
    at_h = float(v[-1]) if reached else nan
    return {
        "best_epoch": best_epoch, "best_value": best_value, "earliest_ok": earliest_ok,
        "gap": band_best - best_value,
        "contrast": float(v[at_end].mean() - v[in_band].mean()) if has_band and reached else nan,
        "at_h_minus_band_best": at_h - band_best,
        "at_horizon": at_h, "reached": reached,
        "collapsed": bool(reached and best_value > 0 and at_h > COLLAPSE_RATIO * best_value),
        "in_band": bool(band[0] <= best_epoch <= band[1]),
    }


def classify_location(best: Estimate, horizon: int, band: tuple[int, int] = FOLKLORE_BAND) -> str:
    """Where the curves bottom out, from the CI of the median best epoch: 'no peak' (the CI lies in
    the last tenth of the horizon: the curves were still improving), 'earlier' or 'later' than the
    band, 'inside' it, or 'undetermined' (the CI straddles an edge of the band)."""
    if not best.has_ci:
        return "undetermined"
    if best.low >= 0.9 * horizon:
        return "no peak"
    if best.high < band[0]:
        return "earlier"
    if best.low > band[1]:
        return "later"
    if band[0] <= best.low and best.high <= band[1]:
        return "inside"
    return "undetermined"


def classify_contrast(contrast: Estimate) -> str:
    """'worse' (at H) when the CI of the end-minus-band contrast lies above 0, 'better' when below,
    else 'no difference' (lower is better)."""
    if contrast.has_ci and contrast.low > 0:
        return "worse"
    if contrast.has_ci and contrast.high < 0:
        return "better"
    return "no difference"


def evidence_clause(k: int, seeds: int, agree: int, p: float) -> str:
    """What the configurations can support: `agree` of `k` configurations point the way of the
    verdict, with the exact sign-flip p over them and what k allows."""
    if k == 1:
        return f"{seeds} seeds of 1 configuration, which says nothing about other configurations"
    clause = f"in {agree} of {k} configurations; exact sign-flip p = {fmt(p, 2)} over them"
    if k < FEW_CONFIGURATIONS:
        clause += f", where {k} configurations cannot give less than {fmt(smallest_p(k), 2)}"
    return clause


def folklore_sentence(location: str, contrast: str, horizon: int, best: Estimate, delta: Estimate, metric: str,
                      gap: Estimate | None = None, band: tuple[int, int] = FOLKLORE_BAND,
                      evidence: str = "") -> str:
    """One sentence answering "`band` epochs is best, `horizon` goes weird", from the two
    classifications, with the configuration-level `evidence` for the second half."""
    b = band_text(band)
    if horizon < band[1] + END_WINDOW:
        return (f"Is {b} epochs best? Not testable here: the horizon runs end at {horizon} epochs, too short "
                f"to reach past {b} (best epoch median {fmt(best.value)}).")
    where = {
        "no peak": f"the curves were still improving at {horizon} epochs, so {b} is not where they bottom out",
        "earlier": f"the curves bottom out earlier, around epoch {fmt(best.value)}",
        "inside": f"yes, the curves bottom out inside {b} (median best epoch {fmt(best.value)})",
        "later": f"no, the curves bottom out later, around epoch {fmt(best.value)}",
        "within noise": f"{b} is as good as the best epoch within the evaluation noise (the best inside {b} is "
                        f"{fmt(gap.value if gap else math.nan)} above each run's best, CI up to "
                        f"{fmt(gap.high if gap else math.nan)}), but no epoch stands out",
        "undetermined": f"the data cannot place the best epoch relative to {b} (median {fmt(best.value)}, "
                        f"CI {fmt(best.low)}–{fmt(best.high)})",
    }[location]
    end = {
        "worse": f"and {horizon} epochs does go worse: {metric} {fmt(delta.value)} higher than in {b}",
        "better": f"and {horizon} epochs does not go weird: {metric} {fmt(-delta.value)} lower than in {b}",
        "no difference": f"and {horizon} epochs is no different from {b} within the CI",
    }[contrast]
    return f"Is {b} epochs best? {where[0].upper()}{where[1:]}; {end}" + (f" ({evidence})." if evidence else ".")


@dataclass
class HorizonVerdict:
    """The epochs verdict of a set of horizon runs (see `horizon_verdict`)."""

    horizon: int
    band: tuple[int, int]
    runs: Any
    """one row per run: run_id, source, group, run_positions' columns, rescore_sd, jitter_sd, noise (the
    larger of the two), and reached=False for runs without an evaluation at H (left out of every estimate)"""
    configurations: Any
    """one row per configuration: source, group, seeds, and run_positions' columns of its seed-averaged curve"""
    best_epoch: Estimate
    earliest_ok: Estimate
    in_band: Estimate
    """share of runs whose best epoch lies in the band, exact interval"""
    in_band_configurations: Estimate
    """share of configurations whose seed-averaged curve bottoms out in the band, exact interval"""
    gap: Estimate
    gap_within_noise: int
    contrast: Estimate
    contrast_p: float
    """exact sign-flip p over the configurations' seed-averaged contrasts"""
    worse_configurations: int
    """configurations whose seed-averaged curve is worse at the end than in the band"""
    literal: Estimate | None
    wilcoxon_p: float
    location: str
    contrast_class: str
    sentence: str

    @property
    def used(self):
        return self.runs[self.runs["reached"]]

    @property
    def k(self) -> int:
        return len(self.configurations)


def configuration_curves(curves) -> pd.DataFrame:
    """The seed-averaged curve of each configuration: source, epoch, value (mean over its runs)."""
    return curves.groupby(["source", "epoch"], sort=False, as_index=False)["value"].mean()


def _run_table(curves, horizon: int, band: tuple[int, int], noise: Mapping[Any, float], sign: float) -> pd.DataFrame:
    rows = []
    for (source, run_id), g in curves.groupby(["source", "run_id"], sort=False):
        g = g.sort_values("epoch")
        vals = g["value"].astype(float).to_numpy() * sign
        rescore, jitter = float(noise.get(run_id, math.nan)), jitter_sd(vals)
        sd = float(np.nanmax([rescore, jitter])) if math.isfinite(rescore) or math.isfinite(jitter) else math.nan
        rows.append({"run_id": run_id, "source": source, "group": g["group"].iloc[0] if "group" in g else "",
                     "rescore_sd": rescore, "jitter_sd": jitter, "noise": sd,
                     **run_positions(g["epoch"], vals, horizon=horizon, noise=sd, band=band)})
    return pd.DataFrame(rows)


def _configuration_table(used, curves, horizon: int, band: tuple[int, int], sign: float) -> pd.DataFrame:
    kept = curves[curves["run_id"].isin(set(used["run_id"]))]
    rows = []
    for source, g in configuration_curves(kept).groupby("source", sort=False):
        runs = used[used["source"] == source]
        rows.append({"source": source, "group": runs["group"].iloc[0], "seeds": len(runs),
                     **run_positions(g["epoch"], g["value"].astype(float) * sign, horizon=horizon, band=band)})
    return pd.DataFrame(rows)


def horizon_verdict(curves, *, horizon: int, noise: Mapping[Any, float] | None = None, metric: str = "FID",
                    minimize: bool = True, band: tuple[int, int] = FOLKLORE_BAND, **boot) -> HorizonVerdict:
    """The verdict from horizon runs. `curves` is a long frame with columns run_id, source (the
    configuration: a trial or a baseline), epoch, value and optionally group (selected, baseline,
    random); `noise` maps run_id to its re-scoring SD (see `noise_sd`), and a run's noise is the
    larger of that and its curve's jitter (`jitter_sd`). Only runs that reached `horizon` count;
    run-level estimates use the two-stage bootstrap (configurations, then seeds), shares exact
    intervals, and the contrast also an exact test over the configurations' seed-averaged curves."""
    sign = 1.0 if minimize else -1.0
    runs = _run_table(curves, horizon, band, noise or {}, sign)
    if runs.empty or not runs["reached"].any():
        raise ValueError(f"no run reached the horizon of {horizon} epochs")
    used = runs[runs["reached"]]
    configs = _configuration_table(used, curves, horizon, band, sign)

    def groups(col: str) -> dict:
        return {s: g[col].astype(float).to_numpy() for s, g in used.groupby("source", sort=False)}

    def boot_of(col: str) -> Estimate:
        return hierarchical_bootstrap(groups(col), **boot) if used[col].notna().any() else NO_ESTIMATE

    best, contrast, gap = boot_of("best_epoch"), boot_of("contrast"), boot_of("gap")
    literal = boot_of("at_h_minus_band_best") if used["at_h_minus_band_best"].notna().any() else None
    tol = NOISE_Z * math.sqrt(2) * used["noise"].fillna(0.0)
    location = classify_location(best, horizon, band)
    if location not in ("inside", "no peak") and gap.has_ci and 0 < gap.high <= float(tol.median()):
        # The best epochs scatter, but the band is as good as the best within the evaluation noise.
        location = "within noise"
    cclass = classify_contrast(contrast)
    config_contrast = configs["contrast"].dropna()
    p = sign_flip_p(config_contrast)
    worse = int((config_contrast > 0).sum())
    agree = worse if cclass == "worse" else int((config_contrast < 0).sum())
    seeds = int(configs["seeds"].iloc[0]) if len(configs) == 1 else 0
    return HorizonVerdict(
        horizon=horizon, band=band, runs=runs, configurations=configs, best_epoch=best,
        earliest_ok=boot_of("earliest_ok"),
        in_band=clopper_pearson(int(used["in_band"].sum()), len(used)),
        in_band_configurations=clopper_pearson(int(configs["in_band"].sum()), len(configs)),
        gap=gap, gap_within_noise=int((used["gap"] <= tol).sum()),
        contrast=contrast, contrast_p=p, worse_configurations=worse, literal=literal,
        wilcoxon_p=wilcoxon_p(used["contrast"]), location=location, contrast_class=cclass,
        sentence=folklore_sentence(location, cclass, horizon, best, contrast, metric, gap, band,
                                   evidence_clause(len(configs), seeds, agree, p) if cclass != "no difference" else ""),
    )


def group_verdicts(curves, **kw) -> dict[str, HorizonVerdict]:
    """`horizon_verdict` of all runs ('pooled') and of each group in `GROUPS` that has runs reaching
    the horizon, when the curves carry more than one group."""
    out = {"pooled": horizon_verdict(curves, **kw)}
    present = [g for g in GROUPS if "group" in curves and (curves["group"] == g).any()]
    if len(present) > 1:
        for g in present:
            try:
                out[g] = horizon_verdict(curves[curves["group"] == g], **kw)
            except ValueError:  # no run of this group reached the horizon
                continue
    return out


def disagreement(verdicts: Mapping[str, HorizonVerdict]) -> str | None:
    """A sentence naming the groups whose answers differ (location or end-versus-band), else None."""
    parts = {g: v for g, v in verdicts.items() if g != "pooled"}
    if len(parts) < 2:
        return None
    answers = {g: (v.location, v.contrast_class) for g, v in parts.items()}
    if len(set(answers.values())) == 1:
        return None
    said = "; ".join(f"{g}: best epoch {loc}, end {'vs band ' + c if c == 'no difference' else c}"
                     for g, (loc, c) in answers.items())
    return f"The groups disagree ({said}): the pooled answer depends on which configurations were run."
