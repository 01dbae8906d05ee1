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
    assert v.location == "no peak"
    assert v.contrast_class == "better" and v.contrast.high < 0
    assert v.in_band.value == 0 and v.in_band_configurations.value == 0
    assert "still improving at 1000 epochs" in v.sentence and "does not go weird" in v.sentence


def test_minima_near_300_are_earlier_than_the_band_and_1000_is_worse():
    v = verdict(runs(u_shape(300)))
    assert v.location == "earlier"
    assert 250 <= v.best_epoch.low and v.best_epoch.high < 500
    assert v.contrast_class == "worse" and v.wilcoxon_p < 0.01
    assert v.gap.low > 0 and v.gap_within_noise == 0  # the band's best is measurably worse than the minimum
    assert "earlier" in v.sentence and "does go worse" in v.sentence


def test_minima_near_550_are_inside_the_band():
    v = verdict(runs(u_shape(550)))
    assert v.location == "inside"
    assert v.in_band.value > 0.9 and v.gap.value == 0
    assert v.contrast_class == "worse"
    assert v.sentence.startswith("Is 500–600 epochs best? Yes")


def test_flat_curves_plus_noise_show_no_difference_and_a_ci_covering_zero():
    for seed in range(3):
        v = verdict(runs(lambda e, c: 30 + 0 * e, seed=seed))
        assert v.contrast_class == "no difference"
        assert v.contrast.low < 0 < v.contrast.high
        assert v.location in ("within noise", "undetermined")
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
    assert v.best_epoch.n == 4 and v.location == "earlier"
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
    assert v.location != "inside" and v.in_band.value == 0
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
    (950, 1000, "no peak"), (200, 450, "earlier"), (500, 600, "inside"),
    (650, 800, "later"), (450, 650, "undetermined"),
])
def test_classify_location(low, high, location):
    assert V.classify_location(V.Estimate((low + high) / 2, low, high, 12), 1000) == location


def test_short_horizons_cannot_test_the_band():
    frame = runs(falling, epochs=np.arange(1, 7))
    v = V.horizon_verdict(frame, horizon=6, resamples=500)
    assert "Not testable here" in v.sentence


# ---------------------------------------------------------------- known answers of each statistic

@pytest.mark.parametrize("text, band", [("500-600", (500, 600)), ("200–300", (200, 300)), (" 1 : 1 ", (1, 1))])
def test_parse_band(text, band):
    assert V.parse_band(text) == band
    assert V.band_text(band) == f"{band[0]}–{band[1]}"


@pytest.mark.parametrize("text, message", [("600-500", "after the last"), ("500", "not a band"),
                                           ("a-b", "not a band"), ("500-600x", "not a band")])
def test_parse_band_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        V.parse_band(text)


def test_expanded_level_matches_the_t_interval():
    from scipy import stats
    assert V.expanded_level(0.95, 1) == 0.95
    # z = sqrt(6/5) * t_{5, 0.975} = 2.8164: the nominal level of a normal interval that wide.
    z = math.sqrt(6 / 5) * stats.t.ppf(0.975, 5)
    assert V.expanded_level(0.95, 6) == pytest.approx(1 - 2 * stats.norm.sf(z), rel=1e-12)
    assert V.expanded_level(0.95, 6) == pytest.approx(0.99514, abs=1e-5)
    assert V.expanded_level(0.9, 6) < V.expanded_level(0.95, 6)
    assert 0.95 < V.expanded_level(0.95, 1000) < 0.9505


def test_percentile_interval_at_many_units_is_the_plain_one():
    samples = np.arange(10_001, dtype=float)
    low, high = V.percentile_interval(samples, 0.95, 10**6)
    assert low == pytest.approx(250, abs=0.5) and high == pytest.approx(9750, abs=0.5)
    low6, high6 = V.percentile_interval(samples, 0.95, 6)
    assert low6 == pytest.approx(10_000 * (1 - V.expanded_level(0.95, 6)) / 2, abs=0.5)
    assert high6 == pytest.approx(10_000 - low6, abs=0.5)


def test_bootstrap_median_interval_is_the_expanded_percentile_of_resampled_medians():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    e = V.bootstrap_median(x, resamples=4000, seed=3)
    rng = np.random.default_rng(3)
    medians = np.median(x[rng.integers(0, 8, size=(4000, 8))], axis=1)
    a = (1 - V.expanded_level(0.95, 8)) / 2
    assert (e.value, e.low, e.high, e.n, e.level) == (3.5, *np.quantile(medians, [a, 1 - a]), 8, 0.95)
    single = V.bootstrap_median([7.0, math.nan])
    assert single.value == 7 and single.n == 1 and not single.has_ci
    with pytest.raises(ValueError):
        V.bootstrap_median([math.nan])


@pytest.mark.parametrize("x, n, low, high", [
    (0, 9, 0.0, 0.33627), (0, 3, 0.0, 0.70760), (9, 9, 0.66373, 1.0), (3, 10, 0.06674, 0.65245), (1, 2, 0.01258, 0.98742),
])
def test_clopper_pearson_known_bounds(x, n, low, high):
    e = V.clopper_pearson(x, n)
    assert e.value == x / n and e.n == n
    assert e.low == pytest.approx(low, abs=1e-5) and e.high == pytest.approx(high, abs=1e-5)


def test_clopper_pearson_edges():
    assert not V.clopper_pearson(0, 0).has_ci
    assert V.clopper_pearson(0, 9, level=0.9).high == pytest.approx(1 - 0.05 ** (1 / 9))
    with pytest.raises(ValueError):
        V.clopper_pearson(4, 3)


@pytest.mark.parametrize("values, p", [
    ([1, 2, 3, 4, 5], 2 / 32), ([1, -1], 1.0), ([2, -1, 3], 4 / 8), ([5.0], 1.0), ([1, 2, 3, 4, 5, 6], 2 / 64),
    ([-1, -2, -3, -4, -5], 2 / 32), ([3, 1, 1, -1], 8 / 16), ([3, -1, -1, -1], 1.0),
])
def test_sign_flip_p_exact(values, p):
    assert V.sign_flip_p(values) == pytest.approx(p)


def test_sign_flip_p_beyond_exact_enumeration_is_monte_carlo_and_repeatable():
    many = np.arange(1, V.EXACT_FLIPS + 5, dtype=float)
    p = V.sign_flip_p(many, resamples=20_000)
    assert p == 1 / 20_001 and p == V.sign_flip_p(many, resamples=20_000)
    assert 0.2 < V.sign_flip_p(np.resize([1.0, -1.0], V.EXACT_FLIPS + 4) * np.arange(1, 21)) <= 1
    assert math.isnan(V.sign_flip_p([]))
    assert [V.smallest_p(k) for k in (1, 2, 5, 6)] == [1.0, 0.5, 0.0625, 0.03125] and math.isnan(V.smallest_p(0))


def test_two_stage_draws_resample_each_drawn_configuration_afresh():
    groups = [np.array([0.0, 1.0]), np.array([0.0, 1.0])]
    draws = V.two_stage_draws(groups, np.mean, resamples=4000, seed=0)
    # Four independent seed draws give means in steps of 1/4; reusing one draw would give only halves.
    assert np.isin(draws, [0.25, 0.75]).mean() == pytest.approx(0.5, abs=0.03)


def test_two_stage_draws_variance_has_the_known_value():
    groups = [np.array([0.0, 2.0, 4.0]), np.array([10.0, 10.0, 13.0]), np.array([20.0, 21.0, 29.0])]
    k, n = 3, 3
    means = np.array([g.mean() for g in groups])
    expected = (np.var(means) + np.mean([np.var(g) / n for g in groups])) / k
    draws = V.two_stage_draws(groups, np.mean, resamples=40_000, seed=1)
    assert draws.mean() == pytest.approx(means.mean(), abs=0.1)
    assert draws.var() == pytest.approx(expected, rel=0.04)


def test_two_stage_draws_respect_unequal_group_sizes():
    draws = V.two_stage_draws([np.array([5.0]), np.array([1.0, 2.0, 3.0])], np.mean, resamples=2000, seed=0)
    assert np.isfinite(draws).all() and draws.min() >= 1 and draws.max() <= 5
    assert set(np.round(V.two_stage_draws([np.array([5.0])], np.median, resamples=50, seed=0), 9)) == {5.0}


@pytest.mark.parametrize("statistic, k", [(np.mean, 6), (np.median, 6), (np.mean, 4)])
def test_hierarchical_bootstrap_covers_the_truth(statistic, k):
    # Configurations ~ N(0, 1), seeds ~ N(configuration, 1), 5 seeds: the centre (0) is the truth.
    rng = np.random.default_rng(11)
    reps, hits = 200, 0
    for r in range(reps):
        mus = rng.normal(0, 1, k)
        groups = {j: mus[j] + rng.normal(0, 1, 5) for j in range(k)}
        e = V.hierarchical_bootstrap(groups, statistic, resamples=2000, seed=r)
        hits += e.low <= 0 <= e.high
    assert hits / reps >= 0.90


def test_jitter_sd_of_noise_around_a_trend():
    rng = np.random.default_rng(0)
    t = np.arange(4000, dtype=float)
    assert V.jitter_sd(0.01 * t + rng.normal(0, 2.0, t.size)) == pytest.approx(2.0, rel=0.06)
    assert V.jitter_sd(3 + 0.5 * t) == 0 and V.jitter_sd((t - 50) ** 2 / 100) == pytest.approx(0, abs=1e-9)
    spiky = np.zeros(50)
    spiky[[10, 30]] = 100.0
    assert V.jitter_sd(spiky) == 0  # two outliers do not make a curve noisy
    assert math.isnan(V.jitter_sd([1.0, 2.0])) and V.jitter_sd([1.0, 2.0, math.nan, 3.0]) == 0


def test_run_positions_window_and_band_edges():
    p = V.run_positions([500, 600, 900, 950, 1000], [1.0, 1.0, 100.0, 2.0, 2.0], horizon=1000)
    assert p["contrast"] == 1.0  # epoch 900 lies outside the last 100 epochs (900, 1000]
    assert p["gap"] == 0 and p["in_band"] and p["at_h_minus_band_best"] == 1.0
    q = V.run_positions([100, 200, 300, 1000], [5.0, 1.0, 2.0, 2.0], horizon=1000, band=(200, 300))
    assert q["in_band"] and q["contrast"] == pytest.approx(2.0 - 1.5) and q["gap"] == 0
    edge = V.run_positions([100, 1000], [1.0, 2.0], horizon=1000)
    assert not edge["collapsed"] and math.isnan(edge["gap"]) and math.isnan(edge["contrast"])
    assert V.run_positions([100, 1000], [1.0, 2.01], horizon=1000)["collapsed"]
    tie = V.run_positions([100, 200, 300], [2.0, 1.0, 1.0], horizon=300, noise=1 / (1.96 * math.sqrt(2)))
    assert tie["best_epoch"] == 200 and tie["earliest_ok"] == 100  # 2.0 is exactly within noise of 1.0
    far = V.run_positions([100, 200, 300], [2.01, 1.0, 1.0], horizon=300, noise=1 / (1.96 * math.sqrt(2)))
    assert far["earliest_ok"] == 200
    empty = V.run_positions([100], [math.nan], horizon=100)
    assert not empty["reached"] and math.isnan(empty["best_epoch"])


@pytest.mark.parametrize("low, high, location", [
    (900, 1000, "no peak"), (899, 1000, "later"), (200, 499, "earlier"), (400, 500, "undetermined"),
    (600, 650, "undetermined"), (601, 650, "later"), (500, 600, "inside"), (499, 600, "undetermined"),
])
def test_classify_location_edges(low, high, location):
    assert V.classify_location(V.Estimate((low + high) / 2, low, high, 12), 1000) == location


def test_classify_location_reads_the_band():
    assert V.classify_location(V.Estimate(250, 210, 290, 12), 1000, band=(200, 300)) == "inside"
    assert V.classify_location(V.Estimate(250, 210, 290, 12), 1000) == "earlier"
    assert V.classify_location(V.Estimate(250, math.nan, math.nan, 1), 1000) == "undetermined"


@pytest.mark.parametrize("low, high, cls", [(0.1, 2, "worse"), (0, 2, "no difference"), (-2, -0.1, "better"),
                                            (-2, 0, "no difference"), (math.nan, math.nan, "no difference")])
def test_classify_contrast(low, high, cls):
    assert V.classify_contrast(V.Estimate(1, low, high, 5)) == cls


def test_wilcoxon_is_two_sided_and_exact_at_small_n():
    assert V.wilcoxon_p([1, 2, 3, 4, 5, 6]) == pytest.approx(2 / 64)
    assert V.wilcoxon_p([-1, -2, -3, -4, -5, -6]) == pytest.approx(2 / 64)
    assert math.isnan(V.wilcoxon_p([0.0, 1.0, math.nan]))


def test_noise_is_the_larger_of_rescoring_and_jitter():
    frame = runs(u_shape(300), configs=2, seeds=2, noise=2.0)
    ids = list(frame["run_id"].unique())
    v = V.horizon_verdict(frame, horizon=H, noise={ids[0]: 50.0}, resamples=500)
    r = v.runs.set_index("run_id")
    assert r.loc[ids[0], "noise"] == 50.0 and r.loc[ids[0], "rescore_sd"] == 50.0
    assert r.loc[ids[1], "noise"] == r.loc[ids[1], "jitter_sd"] == pytest.approx(2.0, rel=0.35)
    assert math.isnan(r.loc[ids[1], "rescore_sd"])
    assert r.loc[ids[0], "earliest_ok"] == 25  # everything is within 1.96 * sqrt(2) * 50 of the best


def test_configuration_level_figures():
    # Six configurations, each worse at the end: the exact test reaches 2/64 and says how many agree.
    v = verdict(runs(u_shape(300), configs=6, seeds=2))
    assert v.k == 6 and v.worse_configurations == 6 and v.contrast_p == pytest.approx(2 / 64)
    assert list(v.configurations["seeds"]) == [2] * 6
    assert v.configurations["best_epoch"].between(250, 350).all()
    assert v.in_band_configurations.value == 0 and v.in_band_configurations.high == pytest.approx(1 - 0.025 ** (1 / 6))
    assert v.in_band.n == 12 and v.in_band.high == pytest.approx(1 - 0.025 ** (1 / 12))
    assert "in 6 of 6 configurations; exact sign-flip p = 0.031" in v.sentence
    assert "cannot give less" not in v.sentence


def test_few_configurations_say_what_they_cannot_show():
    v = verdict(runs(u_shape(300), configs=3, seeds=3))
    assert v.contrast_class == "worse" and v.contrast_p == pytest.approx(0.25)
    assert "in 3 of 3 configurations" in v.sentence and "cannot give less than 0.25" in v.sentence
    one = verdict(runs(u_shape(300), configs=1, seeds=5))
    assert "5 seeds of 1 configuration, which says nothing about other configurations" in one.sentence


def test_the_configuration_curve_is_the_seed_mean():
    frame = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "source": ["c"] * 4, "epoch": [1, 2, 1, 2],
                          "value": [1.0, 4.0, 3.0, 0.0]})
    assert list(V.configuration_curves(frame)["value"]) == [2.0, 2.0]
    v = V.horizon_verdict(frame, horizon=2, resamples=100)
    assert v.configurations.iloc[0]["best_epoch"] == 1 and v.configurations.iloc[0]["seeds"] == 2


def test_higher_is_better_metrics_are_flipped():
    frame = runs(u_shape(300), configs=2, seeds=2)
    frame["value"] = -frame["value"]
    v = verdict(frame, minimize=False)
    assert v.location == "earlier" and v.contrast_class == "worse"


def test_the_band_is_a_parameter():
    v = verdict(runs(u_shape(250)), band=(200, 300))
    assert v.band == (200, 300) and v.location == "inside"
    assert v.sentence.startswith("Is 200–300 epochs best? Yes") and "500" not in v.sentence
    assert verdict(runs(u_shape(250))).location == "earlier"


def test_groups_are_judged_apart_and_their_disagreement_is_said():
    selected = runs(falling, configs=2, seeds=2).assign(group="selected")
    rnd = runs(u_shape(300), configs=2, seeds=2, seed=5).assign(group="random")
    rnd["run_id"] = "r-" + rnd["run_id"]
    rnd["source"] = "random " + rnd["source"]
    both = pd.concat([selected, rnd])
    vs = V.group_verdicts(both, horizon=H, resamples=500)
    assert list(vs) == ["pooled", "selected", "random"]
    assert vs["selected"].contrast_class == "better" and vs["random"].contrast_class == "worse"
    assert len(vs["pooled"].used) == 8 and vs["pooled"].k == 4
    said = V.disagreement(vs)
    assert "selected" in said and "random" in said and "disagree" in said
    alike = V.group_verdicts(pd.concat([selected, rnd.assign(group="random", value=selected["value"].to_numpy())]),
                             horizon=H, resamples=500)
    assert V.disagreement(alike) is None
    assert list(V.group_verdicts(selected, horizon=H, resamples=500)) == ["pooled"]
    assert V.disagreement({"pooled": vs["pooled"]}) is None


# ---------------------------------------------------------------- edge cases and exact wording (mutation tests)

import types
import warnings


def no_warnings(f, *args, **kw):
    """`f(*args, **kw)`, failing on any warning (an empty mean or an all-NaN max is a bug, not a NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return f(*args, **kw)


def frame_of(curves: dict, groups: dict | None = None) -> pd.DataFrame:
    """Explicit curves: {run_id: (source, epochs, values)}, in this order; `groups` maps run_id to group."""
    rows = [{"run_id": r, "source": s, "epoch": int(e), "value": float(v),
             **({"group": groups[r]} if groups else {})}
            for r, (s, es, vs) in curves.items() for e, v in zip(es, vs)]
    return pd.DataFrame(rows)


def test_gain_known_answers():
    assert V.gain(8.0, 10.0) == (2.0, 20.0)  # lower is better by default
    assert V.gain(12.0, 10.0) == (-2.0, -20.0)
    assert V.gain(12.0, 10.0, minimize=False) == (2.0, 20.0)
    assert V.gain(8.0, 10.0, minimize=False) == (-2.0, -20.0)
    assert V.gain(-12.0, -10.0) == (2.0, 20.0)  # % of |baseline|
    d, pct = V.gain(5.0, 0.0)
    assert d == -5.0 and math.isnan(pct)


def test_mean_std_known_answers():
    assert V.mean_std([1.0, 2.0, 3.0, math.nan]) == (2.0, 1.0, 3)
    m, s, n = V.mean_std([1.0, 3.0])
    assert (m, n) == (2.0, 2) and s == pytest.approx(math.sqrt(2))
    m, s, n = no_warnings(V.mean_std, [5.0])  # no SD of one value, and no warning about it
    assert (m, n) == (5.0, 1) and math.isnan(s)
    m, s, n = V.mean_std([math.nan])
    assert n == 0 and math.isnan(m) and math.isnan(s)


def test_best_so_far_known_answers():
    got = V.best_so_far([math.nan, 3.0, 5.0, 2.0, math.nan, 4.0])
    np.testing.assert_array_equal(got, [math.nan, 3.0, 3.0, 2.0, 2.0, 2.0])
    got = V.best_so_far([math.nan, 3.0, 5.0, 2.0, math.nan, 4.0], minimize=False)
    np.testing.assert_array_equal(got, [math.nan, 3.0, 5.0, 5.0, 5.0, 5.0])
    np.testing.assert_array_equal(V.best_so_far([1.0, -math.inf, 0.5]), [1.0, 1.0, 0.5])  # infinities skipped
    np.testing.assert_array_equal(V.best_so_far([1.0, math.inf, 2.0], minimize=False), [1.0, 1.0, 2.0])
    assert V.best_so_far([]).size == 0


def test_fmt_known_answers():
    assert V.fmt(3.14159) == "3.142" and V.fmt(3.14159, 2) == "3.1"
    assert V.fmt(3.0) == "3" and V.fmt(-42.0) == "-42" and V.fmt(999_999.0) == "999999"
    assert V.fmt(1e6) == "1e+06"  # large integers go to the exponent form
    assert V.fmt(math.nan) == "–" and V.fmt(math.inf) == "–" and V.fmt(None) == "–"


def test_expanded_level_at_two_units_is_nearly_one():
    # z = sqrt(2) * t_{1, 0.975} = 17.97: the percentile interval must reach the extremes.
    assert V.expanded_level(0.95, 2) > 0.9999


def test_bootstrap_median_small_samples_and_level():
    two = V.bootstrap_median([1.0, 3.0], resamples=200)
    assert two.value == 2.0 and two.n == 2 and two.has_ci and 1.0 <= two.low <= two.high <= 3.0
    single = V.bootstrap_median([7.0], level=0.9)
    assert math.isnan(single.low) and math.isnan(single.high) and single.level == 0.9
    assert V.bootstrap_median([1.0, 2.0, 3.0], level=0.9, resamples=100).level == 0.9
    # A 50 % interval of 40 continuous values (medians are midpoints of two of them, rarely tied): it pins the
    # seed's draws.
    x = np.random.default_rng(1).normal(size=40)
    e = V.bootstrap_median(x, level=0.5, resamples=201, seed=7)
    medians = np.median(x[np.random.default_rng(7).integers(0, 40, size=(201, 40))], axis=1)
    a = (1 - V.expanded_level(0.5, 40)) / 2
    assert (e.low, e.high) == pytest.approx(tuple(np.quantile(medians, [a, 1 - a])), rel=1e-12)
    with pytest.raises(ValueError, match="^no finite values$"):
        V.bootstrap_median([])


def test_clopper_pearson_empty_and_level():
    e = V.clopper_pearson(0, 0, level=0.9)
    assert math.isnan(e.value) and math.isnan(e.low) and math.isnan(e.high) and e.n == 0 and e.level == 0.9
    assert V.clopper_pearson(3, 10, level=0.9).level == 0.9
    with pytest.raises(ValueError, match="4 successes of 3"):
        V.clopper_pearson(4, 3)


def test_sign_flip_p_at_the_exact_limit_and_monte_carlo_details():
    # 16 units are still enumerated: 2 of 2^16 patterns reach the all-positive sum.
    assert V.sign_flip_p(np.arange(1.0, V.EXACT_FLIPS + 1), resamples=100) == 2 / 2 ** V.EXACT_FLIPS
    # A zero sum: every pattern reaches it, so p is 1 also in the Monte Carlo branch.
    assert V.sign_flip_p(np.resize([1.0, -1.0], 20), resamples=200) == 1.0
    mixed = np.resize([1.0, -1.0], 20) * np.arange(1, 21)
    assert V.sign_flip_p(mixed, resamples=500, seed=3) == V.sign_flip_p(mixed, resamples=500, seed=3)


def test_two_stage_draws_weigh_each_configuration_by_its_seeds():
    # Config 0 has one value (0), config 1 three (1, 1, 1): a draw of both pools 4 values -> mean 3/4.
    draws = V.two_stage_draws([np.array([0.0]), np.array([1.0, 1.0, 1.0])], np.mean, resamples=400, seed=0)
    assert set(np.unique(draws)) == {0.0, 0.75, 1.0}


def test_hierarchical_bootstrap_units_and_edges():
    from scipy import stats

    def alpha(units):  # Hesterberg's expanded level, computed here from scipy
        z = math.sqrt(units / (units - 1)) * stats.t.ppf(0.975, units - 1)
        return stats.norm.sf(z)

    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 5)
    e = V.hierarchical_bootstrap({"a": x}, np.mean, resamples=500, seed=2)
    draws = V.two_stage_draws([x], np.mean, resamples=500, seed=2)
    assert (e.low, e.high) == pytest.approx(tuple(np.quantile(draws, [alpha(5), 1 - alpha(5)])), rel=1e-9)  # one group: seeds are the units
    g = [rng.normal(0, 1, 10), rng.normal(3, 1, 10)]
    e = V.hierarchical_bootstrap({"a": g[0], "b": g[1]}, np.mean, resamples=2000, seed=4)
    draws = V.two_stage_draws(g, np.mean, resamples=2000, seed=4)
    assert (e.low, e.high) == pytest.approx(tuple(np.quantile(draws, [alpha(2), 1 - alpha(2)])), rel=1e-9)  # two groups: 2 units
    assert e.n == 20 and e.level == 0.95
    assert V.hierarchical_bootstrap({"a": g[0], "b": g[1]}, level=0.9, resamples=100).level == 0.9
    two = V.hierarchical_bootstrap({"a": [1.0, 3.0]}, resamples=100)
    assert two.value == 2.0 and two.has_ci
    one = V.hierarchical_bootstrap({"a": [3.0], "b": [math.nan]}, level=0.9)
    assert math.isnan(one.low) and math.isnan(one.high) and one.n == 1 and one.level == 0.9
    with pytest.raises(ValueError, match="^no finite values$"):
        V.hierarchical_bootstrap({"a": [math.nan]})


def test_wilcoxon_p_with_two_differences():
    assert V.wilcoxon_p([1.0, 2.0]) == pytest.approx(0.5)  # exact: 2 of 4 sign patterns reach rank sum 3
    assert V.wilcoxon_p([0.0, 1.0, 2.0]) == pytest.approx(0.5)


def test_noise_sd_order_and_single_evaluations():
    repeats = pd.DataFrame({"run_id": ["b", "b", "b", "a", "a", "c"], "epoch": [1, 1, 2, 5, 5, 1],
                            "value": [1.0, 3.0, 7.0, 0.0, 1.0, 4.0]})
    sd = no_warnings(V.noise_sd, repeats)
    assert list(sd) == ["b", "a", "c"]  # in the order of the frame
    assert sd["b"] == pytest.approx(math.sqrt(2.0))  # epoch 2 has one evaluation and no variance
    assert sd["a"] == pytest.approx(math.sqrt(0.5))
    assert math.isnan(sd["c"])


def test_run_positions_edge_cases():
    p = V.run_positions([1, 2, 3], [3.0, None, 1.0], horizon=3)  # a missing evaluation is skipped
    assert p["best_epoch"] == 3 and p["at_horizon"] == 1.0 and p["reached"]
    # Without a noise figure, earliest_ok is the best epoch itself (1.5 is not within 0 of 1.0).
    assert V.run_positions([1, 2, 3], [1.5, 1.0, 2.0], horizon=3)["earliest_ok"] == 2
    known = V.run_positions([100, 200, 500, 550, 600, 950, 1000], [9.0, 5.0, 4.0, 3.0, 3.5, 5.0, 5.5], horizon=1000)
    assert known["at_horizon"] == 5.5 and known["earliest_ok"] == 550
    short = no_warnings(V.run_positions, [500, 600, 950], [2.0, 1.0, 3.0], horizon=1000)
    assert short["reached"] is False and short["collapsed"] is False
    assert math.isnan(short["at_horizon"]) and math.isnan(short["at_h_minus_band_best"])
    assert math.isnan(short["contrast"])  # 950 lies in the last window, but the run never got to 1000
    assert short["gap"] == 0.0 and short["in_band"] is True
    no_band = no_warnings(V.run_positions, [100, 1000], [1.0, 2.0], horizon=1000)
    assert math.isnan(no_band["contrast"]) and math.isnan(no_band["gap"]) and no_band["at_horizon"] == 2.0
    assert V.run_positions([100, 1000], [0.0, 1.0], horizon=1000)["collapsed"] is False  # no ratio to a 0 minimum
    assert V.run_positions([500, 600, 1000], [2.0, 1.0, 3.0], horizon=1000)["in_band"] is True  # 600 is in 500-600
    assert V.run_positions([500, 650, 1000], [2.0, 1.0, 3.0], horizon=1000)["in_band"] is False
    empty = V.run_positions([100, 200], [math.nan, math.nan], horizon=200)
    assert set(empty) == set(p)
    assert all(math.isnan(empty[k]) for k in ("best_epoch", "best_value", "earliest_ok", "gap", "contrast",
                                              "at_h_minus_band_best", "at_horizon"))
    assert empty["reached"] is False and empty["collapsed"] is False and empty["in_band"] is False


def test_run_positions_keeps_repeated_epochs_in_the_given_order():
    # Re-evaluations appended after the curve: the last one listed at H is the value at H.
    epochs = list(range(25, 1001, 25)) + [1000, 1000, 500, 500]
    values = [10.0] * 39 + [7.0, 8.0, 9.0, 10.0, 10.0]
    p = V.run_positions(epochs, values, horizon=1000)
    assert p["at_horizon"] == 9.0 and p["best_value"] == 7.0


def test_evidence_clause_wording():
    assert V.evidence_clause(6, 0, 6, 0.03125) == "in 6 of 6 configurations; exact sign-flip p = 0.031 over them"
    assert V.evidence_clause(4, 0, 3, 0.375) == (
        "in 3 of 4 configurations; exact sign-flip p = 0.38 over them, where 4 configurations cannot give less than 0.12")
    assert V.evidence_clause(1, 7, 1, 1.0) == "7 seeds of 1 configuration, which says nothing about other configurations"


def test_folklore_sentence_wording():
    E = V.Estimate
    s = V.folklore_sentence("earlier", "worse", 1000, E(300, 250, 350, 12), E(2.5, 1, 4, 12), "FID")
    assert s == ("Is 500–600 epochs best? The curves bottom out earlier, around epoch 300; "
                 "and 1000 epochs does go worse: FID 2.5 higher than in 500–600.")
    s = V.folklore_sentence("later", "better", 1000, E(725.5, 700, 750, 12), E(-1.25, -2, -1, 12), "KID",
                            evidence="in 3 of 3 configurations")
    assert s == ("Is 500–600 epochs best? No, the curves bottom out later, around epoch 725.5; "
                 "and 1000 epochs does not go weird: KID 1.25 lower than in 500–600 (in 3 of 3 configurations).")
    s = V.folklore_sentence("inside", "no difference", 1000, E(550, 520, 580, 12), E(0.1, -1, 1, 12), "FID")
    assert s == ("Is 500–600 epochs best? Yes, the curves bottom out inside 500–600 (median best epoch 550); "
                 "and 1000 epochs is no different from 500–600 within the CI.")
    s = V.folklore_sentence("undetermined", "no difference", 1000, E(512.5, 433.1, 650.75, 12), E(0, -1, 1, 12), "FID")
    assert s == ("Is 500–600 epochs best? The data cannot place the best epoch relative to 500–600 "
                 "(median 512.5, CI 433.1–650.8); and 1000 epochs is no different from 500–600 within the CI.")
    s = V.folklore_sentence("no peak", "no difference", 1000, E(1000, 950, 1000, 12), E(0, -1, 1, 12), "FID")
    assert s.startswith("Is 500–600 epochs best? The curves were still improving at 1000 epochs, so 500–600 is "
                        "not where they bottom out; and")
    s = V.folklore_sentence("within noise", "no difference", 1000, E(550, 300, 900, 12), E(0, -1, 1, 12), "FID",
                            E(0.75, 0.5, 1.125, 12), band=(200, 300))
    assert s == ("Is 200–300 epochs best? 200–300 is as good as the best epoch within the evaluation noise (the best "
                 "inside 200–300 is 0.75 above each run's best, CI up to 1.125), but no epoch stands out; "
                 "and 1000 epochs is no different from 200–300 within the CI.")
    s = V.folklore_sentence("within noise", "no difference", 1000, E(550, 300, 900, 12), E(0, -1, 1, 12), "FID")
    assert "is – above each run's best, CI up to –)" in s


def test_folklore_sentence_needs_a_window_past_the_band():
    E = V.Estimate
    best, delta = E(650, 600, 699, 12), E(0, -1, 1, 12)
    assert V.folklore_sentence("later", "no difference", 699, best, delta, "FID") == (
        "Is 500–600 epochs best? Not testable here: the horizon runs end at 699 epochs, too short to reach past "
        "500–600 (best epoch median 650).")
    assert V.folklore_sentence("later", "no difference", 700, best, delta, "FID").startswith(
        "Is 500–600 epochs best? No, the curves bottom out later")


def test_disagreement_wording():
    N = types.SimpleNamespace
    vs = {"pooled": N(location="no peak", contrast_class="better"),
          "selected": N(location="earlier", contrast_class="worse"),
          "random": N(location="inside", contrast_class="no difference")}
    assert V.disagreement(vs) == (
        "The groups disagree (selected: best epoch earlier, end worse; random: best epoch inside, end vs band no "
        "difference): the pooled answer depends on which configurations were run.")
    # The pooled verdict is not a group: one group and a differing pooled answer are no disagreement.
    assert V.disagreement({"pooled": vs["pooled"], "selected": vs["selected"]}) is None
    assert V.disagreement({"selected": vs["selected"], "random": N(location="earlier", contrast_class="worse")}) is None


def test_group_verdicts_skip_groups_without_runs_at_the_horizon_and_unknown_groups():
    short = runs(falling, configs=2, seeds=1, epochs=EPOCHS[EPOCHS <= 600]).assign(group="selected")
    full = runs(u_shape(300), configs=2, seeds=1, seed=3).assign(group="random")
    full["run_id"] = "r-" + full["run_id"]
    full["source"] = "r-" + full["source"]
    assert list(V.group_verdicts(pd.concat([short, full]), horizon=H, resamples=100)) == ["pooled", "random"]
    other = full.assign(group="other")
    other["run_id"] = "o-" + other["run_id"]
    assert list(V.group_verdicts(pd.concat([full.assign(group="selected"), other]), horizon=H,
                                 resamples=100)) == ["pooled"]


def test_verdict_tables_keep_the_order_and_groups_of_the_input():
    curves = {"z1": ("cfg z", [500, 600, 1000], [1.0, 1.0, 2.0]),
              "a1": ("cfg a", [1000], [3.0]),  # a single evaluation, at the horizon
              "z0": ("cfg z", [500, 600, 1000], [1.0, 2.0, 3.0])}
    frame = frame_of(curves, {"z1": "random", "a1": "selected", "z0": "random"})
    v = no_warnings(V.horizon_verdict, frame, horizon=1000, resamples=100)
    assert list(v.runs["run_id"]) == ["z1", "a1", "z0"]
    assert list(v.runs["group"]) == ["random", "selected", "random"]
    assert math.isnan(v.runs.set_index("run_id").loc["a1", "noise"])
    assert list(v.configurations["source"]) == ["cfg z", "cfg a"]
    assert list(v.configurations["group"]) == ["random", "selected"]
    assert list(v.configurations["seeds"]) == [2, 1]
    assert list(V.configuration_curves(frame)["epoch"]) == [500, 600, 1000, 1000]
    assert list(V.configuration_curves(frame)["value"]) == [1.0, 1.5, 2.5, 3.0]
    plain = V.horizon_verdict(frame.drop(columns="group"), horizon=1000, resamples=100)
    assert list(plain.runs["group"]) == ["", "", ""]
    assert v.horizon == 1000 and v.earliest_ok.value == 500


def test_the_band_reaches_the_run_and_configuration_tables():
    v = verdict(runs(u_shape(250), configs=3, seeds=2), band=(200, 300))
    assert v.in_band.value == 1.0 and v.runs["in_band"].all()
    assert v.in_band_configurations.value == 1.0 and v.configurations["in_band"].all()


def test_a_band_without_evaluations_has_no_literal_contrast():
    v = verdict(runs(falling, configs=2, seeds=2), band=(510, 520))
    assert v.literal is None and not v.contrast.has_ci and not v.gap.has_ci
    assert v.contrast_class == "no difference" and v.sentence.endswith("is no different from 510–520 within the CI.")


def test_higher_is_better_gives_the_same_numbers_as_its_negation():
    frame = runs(u_shape(300), configs=2, seeds=2)
    flipped = frame.assign(value=-frame["value"])
    lower, higher = verdict(frame), verdict(flipped, minimize=False)
    assert higher.contrast == lower.contrast and higher.gap == lower.gap
    assert higher.runs["noise"].tolist() == lower.runs["noise"].tolist()


def test_metric_name_and_options_reach_the_verdict():
    frame = runs(u_shape(300), configs=3, seeds=2)
    assert "does go worse: FID " in verdict(frame).sentence
    assert "does go worse: KID " in verdict(frame, metric="KID").sentence
    assert verdict(frame, level=0.9).best_epoch.level == 0.9


def test_run_estimates_are_the_two_stage_bootstrap_over_configurations_in_input_order():
    # Deterministic curves 1, 1, 1 + c at 500, 600, 1000: each run's contrast is c by construction.
    curves, contrasts = {}, {}
    for j in range(12):
        source = f"cfg {chr(ord('l') - j)}"  # l, k, ..., a: not alphabetical
        contrasts[source] = [round(0.37 * j - 2 + 0.11 * s, 6) for s in range(2)]
        for s, c in enumerate(contrasts[source]):
            curves[f"{source}-{s}"] = (source, [500, 600, 1000], [1.0, 1.0, 1.0 + c])
    v = V.horizon_verdict(frame_of(curves), horizon=1000, resamples=300, seed=5)
    expected = V.hierarchical_bootstrap({s: np.array(c) for s, c in contrasts.items()}, resamples=300, seed=5)
    assert v.contrast.value == pytest.approx(expected.value)
    assert v.contrast.low == pytest.approx(expected.low) and v.contrast.high == pytest.approx(expected.high)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_configuration_counts_and_agreement(sign):
    # Twelve configurations (times the sign): one of three seeds whose contrasts 0.75, -0.25, -0.5 average
    # to exactly 0, one at 0.625, ten at 2.00 ... 2.09 (distinct run contrasts keep Wilcoxon exact and fast).
    curves = {f"r0-{s}": ("cfg 0", [500, 600, 1000], [1.0, 1.0, 1.0 + sign * c])
              for s, c in enumerate([0.75, -0.25, -0.5])}
    for j, c in enumerate([0.625] + [2.0 + 0.01 * i for i in range(10)], start=1):
        curves[f"r{j}"] = (f"cfg {j}", [500, 600, 1000], [1.0, 1.0, 1.0 + sign * c])
    v = V.horizon_verdict(frame_of(curves), horizon=1000, resamples=500)
    assert v.k == 12 and v.configurations["contrast"].iloc[0] == 0.0
    assert v.contrast_class == ("worse" if sign > 0 else "better")
    assert v.worse_configurations == (11 if sign > 0 else 0)  # 0 is not worse, 0.625 is
    assert v.contrast_p == pytest.approx(4 / 2 ** 12)
    assert "(in 11 of 12 configurations; exact sign-flip p = 0.00098 over them)." in v.sentence


def test_gap_within_noise_counts_runs_against_their_own_noise():
    # rescore SD 2 -> tolerance 1.96 * sqrt(2) * 2 = 5.54: a gap of 3 is within it, 6 is not; runs with two
    # evaluations have no noise figure (tolerance 0): a gap of 0 is within it, 0.5 is not; rescore SD 0.5 and
    # no jitter -> tolerance 1.386: a gap of 3 is not within it.
    e6 = [500, 600, 700, 800, 900, 1000]
    curves = {"r1": ("c1", e6, [4.0, 4.0, 1.0, 1.0, 1.0, 1.0]),
              "r2": ("c2", e6, [7.0, 7.0, 1.0, 1.0, 1.0, 1.0]),
              "r3": ("c3", [550, 1000], [1.5, 1.0]),
              "r4": ("c4", [550, 1000], [1.0, 2.0]),
              "r5": ("c5", range(500, 1001, 50), [4.0] * 4 + [1.0] * 7)}
    v = no_warnings(V.horizon_verdict, frame_of(curves), horizon=1000, noise={"r1": 2.0, "r2": 2.0, "r5": 0.5},
                    resamples=200)
    r = v.runs.set_index("run_id")
    assert list(r["gap"]) == [3.0, 6.0, 0.5, 0.0, 3.0]
    assert list(r["noise"]) == pytest.approx([2.0, 2.0, math.nan, math.nan, 0.5], nan_ok=True)
    assert v.gap_within_noise == 2


def test_within_noise_relabels_only_an_uncertain_location():
    e4 = [450, 550, 650, 700]
    # Best epochs 450 and 650 in each configuration (undetermined), each 1.0 below the band's best, with a
    # noise whose tolerance is exactly 1.0: the band is as good as the best within the noise (<=).
    sd = 1 / (1.96 * math.sqrt(2))
    curves = {}
    for c in range(2):
        curves[f"a{c}"] = (f"c{c}", e4, [1.0, 2.0, 3.0, 3.0])
        curves[f"b{c}"] = (f"c{c}", e4, [3.0, 2.0, 1.0, 1.0])
    v = V.horizon_verdict(frame_of(curves), horizon=700, noise={r: sd for r in curves}, resamples=500)
    assert classify(v) == ("within noise", 1.0, 1.0)
    assert v.sentence == ("Is 500–600 epochs best? 500–600 is as good as the best epoch within the evaluation noise "
                          "(the best inside 500–600 is 1 above each run's best, CI up to 1), but no epoch stands "
                          "out; and 700 epochs is no different from 500–600 within the CI.")
    # Best epoch 300 tied with 550 (gap 0): earlier, and a gap of 0 is no reason to relabel.
    ties = {f"t{i}": ("c", [300, 400, 550, 700], [1.0, 2.0, 1.0, 3.0]) for i in range(3)}
    v = V.horizon_verdict(frame_of(ties), horizon=700, noise={r: 1.0 for r in ties}, resamples=200)
    assert classify(v) == ("earlier", 0.0, 0.0)
    # Still improving at the horizon, the band 0.5 worse (within noise 1): stays 'no peak'.
    falling_runs = {f"f{i}": ("c", [550, 950, 1000], [1.5, 1.2, 1.0]) for i in range(2)}
    v = V.horizon_verdict(frame_of(falling_runs), horizon=1000, noise={r: 1.0 for r in falling_runs}, resamples=200)
    assert classify(v) == ("no peak", 0.5, 0.5) and v.earliest_ok.value == 550
    # Sixty seeds of one configuration, a third each best at 450, 550, 650: the median best epoch is 550
    # ('inside') while most runs' best lies outside the band (gap 1 > 0): stays 'inside'.
    thirds = {}
    for i in range(20):
        thirds[f"a{i}"] = ("c", e4, [1.0, 2.0, 2.0, 3.0])
        thirds[f"b{i}"] = ("c", e4, [2.0, 1.0, 2.0, 3.0])
        thirds[f"c{i}"] = ("c", e4, [2.0, 2.0, 1.0, 3.0])
    v = V.horizon_verdict(frame_of(thirds), horizon=700, noise={r: 1.0 for r in thirds}, resamples=500)
    assert classify(v) == ("inside", 1.0, 1.0)


def classify(v):
    return v.location, v.gap.value, v.gap.high


def test_curves_and_noise_from_a_horizon_frame():
    frame = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "source": ["s"] * 6, "epoch": [1, 2, 3] * 2,
                          "fid": [3.0, 2.0, 1.0, 4.0, np.nan, 2.0], "fid_resample_1": [np.nan, np.nan, 2.0] * 2})
    curves, noise = V.curves_and_noise(frame, "fid")
    assert list(curves["value"]) == [3.0, 2.0, 1.0, 4.0, 2.0] and list(curves.columns) == [
        "run_id", "source", "epoch", "value"]
    assert "group" in V.curves_and_noise(frame.assign(group="random"), "fid")[0]
    assert noise["a"] == pytest.approx(np.std([1.0, 2.0], ddof=1)) and noise["b"] == 0
