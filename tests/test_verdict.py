"""Ground truth for the epochs verdict: pure functions of `reports.verdict` on synthetic curves whose
answer is known by construction (no training, no stores)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports import verdict as V

EPOCHS = np.arange(25, 1001, 25)
H = 1000


def runs(curve, *, configs: int = 4, seeds: int = 3, noise: float = 1.0, seed: int = 0,
         epochs=EPOCHS) -> pd.DataFrame:
    """Horizon runs: `curve(epochs, config)` plus Gaussian evaluation noise, `seeds` runs per config."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(configs):
        for s in range(seeds):
            values = curve(epochs, c) + rng.normal(0, noise, epochs.size)
            rows += [{"run_id": f"c{c}-s{s}", "source": f"config {c}", "epoch": int(e), "value": float(v)}
                     for e, v in zip(epochs, values)]
    return pd.DataFrame(rows)


def verdict(frame: pd.DataFrame, noise: float = 1.0, **kw) -> V.HorizonVerdict:
    return V.horizon_verdict(frame, horizon=H, noise={r: noise for r in frame["run_id"]}, resamples=2000, **kw)


def falling(e, c):
    return 20 + c + 200 * np.exp(-e / 300)


def u_shape(centre):
    return lambda e, c: 20 + c + (e - centre) ** 2 / 2000


def test_curves_still_falling_at_the_horizon_have_no_peak_before_it():
    v = verdict(runs(falling))
    assert v.location == "no peak before H"
    assert v.contrast_class == "better at H" and v.contrast.high < 0
    assert v.in_band.value == 0
    assert "still improving at 1000 epochs" in v.sentence and "does not go weird" in v.sentence


def test_minima_near_300_are_earlier_than_the_band_and_1000_is_worse():
    v = verdict(runs(u_shape(300)))
    assert v.location == "earlier than 500"
    assert 250 <= v.best_epoch.low and v.best_epoch.high < 500
    assert v.contrast_class == "worse at H" and v.wilcoxon_p < 0.01
    assert v.gap.low > 0 and v.gap_within_noise == 0  # the band's best is measurably worse than the minimum
    assert "earlier" in v.sentence and "does go worse" in v.sentence


def test_minima_near_550_are_inside_the_band():
    v = verdict(runs(u_shape(550)))
    assert v.location == "inside 500–600"
    assert v.in_band.value > 0.9 and v.gap.value == 0
    assert v.contrast_class == "worse at H"
    assert v.sentence.startswith("Is 500–600 epochs best? Yes")


def test_flat_curves_plus_noise_show_no_difference_and_a_ci_covering_zero():
    for seed in range(3):
        v = verdict(runs(lambda e, c: 30 + 0 * e, seed=seed))
        assert v.contrast_class == "no difference"
        assert v.contrast.low < 0 < v.contrast.high
        assert v.location in ("band within noise", "undetermined")
        assert "no different" in v.sentence


def test_the_window_contrast_is_unbiased_where_the_literal_reading_is_not():
    # Flat curves: the end-minus-band window means centre on 0, while "value at H minus the best of
    # the band's five evaluations" is positive by construction (about 1.16 noise SDs).
    v = verdict(runs(lambda e, c: 30 + 0 * e, configs=10, seeds=5, seed=7))
    assert abs(v.contrast.value) < 0.5
    assert v.literal.value > 0.6


def test_runs_that_stop_before_the_horizon_are_left_out():
    full = runs(u_shape(300), configs=2, seeds=2)
    short = runs(falling, configs=2, seeds=2, epochs=EPOCHS[EPOCHS <= 600], seed=1)
    short["run_id"] = "short-" + short["run_id"]
    v = verdict(pd.concat([full, short]))
    assert (~v.runs["reached"]).sum() == 4 and len(v.used) == 4
    assert v.best_epoch.n == 4 and v.location == "earlier than 500"
    with pytest.raises(ValueError, match="no run reached"):
        verdict(short)


def test_a_search_whose_budgets_truncate_falling_curves_cannot_produce_500_to_600_is_best():
    # The old verdict's trap: budgets drawn from 50..1000 over curves that fall to the end make every
    # best epoch equal its budget, and the median budget (~525) "lies in 500-600". Fed the same
    # truncated curves, the horizon verdict uses only the runs that reached the horizon...
    rng = np.random.default_rng(0)
    rows = []
    for i, budget in enumerate(rng.integers(1, 21, size=24) * 50):
        for e in EPOCHS[EPOCHS <= budget]:
            rows.append({"run_id": f"t{i}", "source": f"trial {i}", "epoch": int(e),
                         "value": float(falling(e, 0) + rng.normal(0, 0.5))})
    frame = pd.DataFrame(rows)
    truncated_median = float(np.median(frame.groupby("run_id")["epoch"].max()))
    assert 400 <= truncated_median <= 700  # what the budget-capped statistic would have reported
    v = verdict(frame, noise=0.5)
    reached = int((frame.groupby("run_id")["epoch"].max() == H).sum())
    assert len(v.used) == reached < 24  # ... and the runs cut short by their budgets say nothing
    assert v.location != "inside 500–600" and v.in_band.value == 0
    assert "inside" not in v.sentence and not v.sentence.startswith("Is 500–600 epochs best? Yes")


def test_collapsed_runs_are_flagged_and_kept():
    frame = runs(falling, configs=2, seeds=2)
    late = (frame["run_id"] == "c0-s0") & (frame["epoch"] > 800)
    frame.loc[late, "value"] *= 5
    v = verdict(frame)
    assert v.runs.set_index("run_id").loc["c0-s0", "collapsed"]
    assert int(v.runs["collapsed"].sum()) == 1 and len(v.used) == 4


def test_run_positions_on_a_known_curve():
    p = V.run_positions([100, 200, 500, 550, 600, 950, 1000], [9.0, 5.0, 4.0, 3.0, 3.5, 5.0, 5.5], horizon=1000,
                        noise=0.5)
    assert p["best_epoch"] == 550 and p["best_value"] == 3.0
    # 1.96 * sqrt(2) * 0.5 = 1.386: 4.0 at epoch 500 is within noise of 3.0, 5.0 at 200 is not.
    assert p["earliest_ok"] == 500
    assert p["gap"] == 0.0
    assert p["contrast"] == pytest.approx((5.0 + 5.5) / 2 - (4.0 + 3.0 + 3.5) / 3)
    assert p["at_h_minus_band_best"] == 2.5
    assert p["in_band"] and p["reached"] and not p["collapsed"]
    assert V.run_positions([100, 200], [1.0, 0.5], horizon=1000)["reached"] is False


def test_noise_sd_pools_the_within_epoch_variances():
    repeats = pd.DataFrame({"run_id": ["a"] * 6 + ["b"] * 2, "epoch": [1, 1, 1, 2, 2, 2, 5, 5],
                            "value": [1.0, 2.0, 3.0, 10.0, 10.0, 10.0, 4.0, 6.0]})
    sd = V.noise_sd(repeats)
    assert sd["a"] == pytest.approx(math.sqrt((1.0 + 0.0) / 2))
    assert sd["b"] == pytest.approx(math.sqrt(2.0))


def test_hierarchical_bootstrap_is_wider_than_resampling_seeds_alone_when_configurations_differ():
    groups = {c: np.full(5, 100.0 * c) + np.arange(5) for c in range(4)}
    e = V.hierarchical_bootstrap(groups)
    flat = V.bootstrap_median(np.concatenate(list(groups.values())))
    assert e.value == flat.value
    assert e.high - e.low > flat.high - flat.low
    assert V.hierarchical_bootstrap(groups) == e  # a fixed seed: reproducible
    one = V.hierarchical_bootstrap({"a": [3.0]})
    assert one.value == 3 and not one.has_ci
    mean = V.hierarchical_bootstrap({"a": [0.0, 1.0], "b": [1.0, 1.0]}, np.mean)
    assert mean.value == 0.75 and 0 <= mean.low <= mean.high <= 1


def test_wilcoxon_p():
    assert V.wilcoxon_p(np.arange(1, 13, dtype=float)) < 0.001
    assert V.wilcoxon_p([0.0, 0.0, 1.0]) != V.wilcoxon_p([0.0, 0.0, 1.0])  # NaN: fewer than 2 non-zero
    assert V.wilcoxon_p([-2.0, 1.0, -1.0, 2.0]) > 0.5


@pytest.mark.parametrize("low, high, location", [
    (950, 1000, "no peak before H"), (200, 450, "earlier than 500"), (500, 600, "inside 500–600"),
    (650, 800, "later than 600"), (450, 650, "undetermined"),
])
def test_classify_location(low, high, location):
    assert V.classify_location(V.Estimate((low + high) / 2, low, high, 12), 1000) == location


def test_short_horizons_cannot_test_the_band():
    frame = runs(falling, epochs=np.arange(1, 7))
    v = V.horizon_verdict(frame, horizon=6, resamples=500)
    assert "Not testable here" in v.sentence
