"""The report's Markdown: `Report` collects lines and the charts drawn beside them, and one function per
section writes the prose and tables from an `Analysis` (verdict, groups, search summary, horizon runs,
held-out against training images, search trials, caveats). Numbers come from `reports.analysis`;
sentences from them, never more than the configuration-level evidence supports.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from gans.baselines import BASELINES
from gans.metric_keys import display_name
from reports import charts as C
from reports import verdict as V
from reports.analysis import IMPORTANCE_EVALUATOR, Analysis, Horizon, num, run_seed
from reports.charts import NoChart
from reports.diagnostics import write_diagnostics
from reports.panels import horizon_samples, top_samples
from tracking.urls import mask_url


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        s = V.fmt(v) if isinstance(v, float) else ("–" if v is None else str(v))
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def pm(mean: float, std: float) -> str:
    return f"{V.fmt(mean)} ± {V.fmt(std)}" if math.isfinite(std) else V.fmt(mean)


def ci(e: V.Estimate) -> str:
    return f"[{V.fmt(e.low)}, {V.fmt(e.high)}]" if e.has_ci else "(no CI: fewer than 2 values)"


class Report:
    """Collects Markdown sections and the files written beside them."""

    def __init__(self, out: Path):
        self.out = out
        self.lines: list[str] = []
        self.files: list[str] = []
        self.skipped: dict[str, str] = {}

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def chart(self, name: str, alt: str, draw: Callable[[Path], Any]) -> bool:
        try:
            draw(self.out / name)
        except NoChart as e:
            self.skipped[name] = str(e)
            self.add(f"_No chart: {e}._", "")
            return False
        self.files.append(name)
        self.add(f"![{alt}]({name})", "")
        return True


def config_summary(row, searched: list[str]) -> str:
    """The searched values of a trial, and its epoch budget."""
    keys = [*searched, *(["epochs"] if "epochs" not in searched else [])]
    return ", ".join(f"{k}={V.fmt(row[k]) if isinstance(row[k], float) else row[k]}" for k in keys
                     if k in row and row[k] is not None and not (isinstance(row[k], float) and math.isnan(row[k])))


def steps_images(hz: Horizon, epoch: float) -> str:
    """`epoch` in optimizer steps and images seen, when every run shares one data size and batch."""
    spe, batch = hz.runs["steps_per_epoch"].dropna().unique(), hz.runs["batch_size"].dropna().unique()
    if len(spe) != 1 or len(batch) != 1 or not math.isfinite(epoch):
        return ""
    steps = epoch * float(spe[0])
    return f" = {V.fmt(steps)} optimizer steps, {V.fmt(steps * float(batch[0]))} images seen"


def write_verdict(r: Report, data, a: Analysis) -> None:
    hz = a.horizon
    H = hz.horizon if hz is not None else 1000
    r.add(f"## Verdict: is {V.band_text(a.band)} epochs best, does {H} go weird?", "")
    confirm_cmd = (f"python -m study.confirm --study-name {data.study_name} --storage '{mask_url(data.storage)}' "
                   f"--tracking-uri '{mask_url(data.tracking_uri)}' --top 3 --seeds 5")
    if hz is None or hz.verdict is None:
        why = hz.why if hz is not None else "the study has no finished horizon runs"
        r.add(f"- **No verdict yet: {why}.** The search trials cannot answer it: each trial's best epoch is "
              "capped by its own sampled budget. Horizon runs retrain the top configurations, the seed "
              f"baselines and random configurations with fresh seeds, all to the same horizon: `{confirm_cmd}`, "
              "then rebuild this report.", "")
    else:
        write_horizon_verdict(r, data, hz)
    if data.searched:
        write_search_summary(r, data, a)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def noise_sentence(used) -> str:
    """How "within evaluation noise" was measured: both kinds, and the rule that picks one."""
    rescore, jitter = used["rescore_sd"].dropna(), used["jitter_sd"].dropna()
    kinds = [f"re-scoring one generator on fresh sample sets (median SD {V.fmt(float(rescore.median()))}, "
             f"{len(rescore)} runs)" if not rescore.empty else "no re-scorings logged",
             f"the curve's epoch-to-epoch jitter (median SD {V.fmt(float(jitter.median()))})" if not jitter.empty
             else "curves too short for jitter"]
    return (f"Noise per run is the larger of two estimates: {kinds[0]}, and {kinds[1]}; \"within noise\" means "
            "within 1.96·√2 of those SDs.")


def write_horizon_verdict(r: Report, data, hz: Horizon) -> None:
    M = display_name(data.metric)
    v, H = hz.verdict, hz.horizon
    b = V.band_text(v.band)
    used = v.used
    n, k = len(used), v.k
    boot = (f"two-stage bootstrap over {plural(k, 'configuration')} and {'their' if k > 1 else 'its'} seeds (expanded percentile, "
            f"{V.BOOTSTRAP_RESAMPLES:,} resamples, seed {V.BOOTSTRAP_SEED})")
    seeds = ", ".join(sorted({str(x) for x in used.groupby("source").size()}))
    bullets = [
        f"**{v.sentence}**",
        f"From {plural(n, 'horizon run')} ({plural(k, 'configuration')} × {seeds} seeds), each trained to **{H} "
        f"epochs**{steps_images(hz, H)}, {M} evaluated every "
        f"{V.fmt(float(np.median(np.diff(sorted(hz.frame['epoch'].unique())))))} epochs on the same sample "
        f"sizes (extractor and N under Caveats); 95 % CIs by {boot}.",
        f"**Where the curves bottom out:** median best epoch **{V.fmt(v.best_epoch.value)}**"
        f"{steps_images(hz, v.best_epoch.value)}, CI {ci(v.best_epoch)}; the earliest epoch within evaluation noise "
        f"of each run's best: median {V.fmt(v.earliest_ok.value)}, CI {ci(v.earliest_ok)}. **P(best epoch in {b}) = "
        f"{V.fmt(v.in_band.value, 2)}** over runs ({int(used['in_band'].sum())} of {n}, exact CI {ci(v.in_band)}); over "
        f"configurations, by their seed-averaged curves, {int(v.configurations['in_band'].sum())} of {k} "
        f"(exact CI {ci(v.in_band_configurations)}).",
        f"**Is {b} best?** The best {M} inside {b} lies a median **{V.fmt(v.gap.value)}** above the run's best "
        f"anywhere (CI {ci(v.gap)}); for {v.gap_within_noise} of {n} runs it is within evaluation noise. "
        + noise_sentence(used),
        f"**Does {H} go weird?** Mean {M} over epochs {H - V.END_WINDOW + 1}–{H} minus the mean over {b}, paired "
        f"within each run: median **{V.fmt(v.contrast.value)}** (CI {ci(v.contrast)}; positive = worse at {H}). "
        + (f"Per configuration (seed-averaged curves): worse at {H} in {v.worse_configurations} of {k}, exact "
           f"sign-flip p = {V.fmt(v.contrast_p, 2)}"
           + (f" (with {k} configurations no p below {V.fmt(V.smallest_p(k), 2)} is possible)"
              if k < V.FEW_CONFIGURATIONS else "") if k > 1 else
           "One configuration: nothing here tests across configurations")
        + f". Wilcoxon signed-rank over the {int(used['contrast'].notna().sum())} runs: p = {V.fmt(v.wilcoxon_p, 2)} "
          "(treats seeds of one configuration as independent, so it is optimistic)."
        + (f" The literal reading, {M} at epoch {H} minus the best inside {b}: median {V.fmt(v.literal.value)} "
           f"(CI {ci(v.literal)}), biased towards 'worse' because a minimum over several noisy evaluations is "
           "low by construction." if v.literal is not None else ""),
    ]
    collapsed = used[used["collapsed"]]
    bad = [f"{len(hz.diverged)} diverged (NaN/inf loss, no {M}): "
           + "; ".join(f"{x['source']} seed {x['seed']} ({x['reason']})" for _, x in hz.diverged.iterrows())
           if not hz.diverged.empty else "none diverged",
           f"{len(collapsed)} collapsed ({M} at {H} above {V.fmt(V.COLLAPSE_RATIO)}× its own minimum"
           + (": " + ", ".join(f"{x['source']} seed {run_seed(hz, x['run_id'])}" for _, x in collapsed.iterrows())
              if not collapsed.empty else "") + "); collapsed runs stay in the estimates above"]
    bullets.append("Of the horizon runs, " + "; ".join(bad) + ".")
    if H < v.band[1] + V.END_WINDOW:  # nothing in or past the band to compare
        bullets = [bullets[0], f"{plural(n, 'horizon run')} of {plural(k, 'configuration')}; median best epoch "
                               f"{V.fmt(v.best_epoch.value)}, CI {ci(v.best_epoch)}."]
    r.add(*[f"- {x}" for x in bullets], "")
    write_groups(r, data, hz)


def write_groups(r: Report, data, hz: Horizon) -> None:
    """The verdict per group of configurations: the search's choices can only be trusted if the
    configurations nobody selected (seed baselines, random draws) answer alike."""
    if len(hz.groups) < 3:  # pooled and a single group: nothing to compare
        return
    M = display_name(data.metric)
    rows = [[g, v.k, len(v.used), f"{V.fmt(v.best_epoch.value)} {ci(v.best_epoch)}",
             f"{int(v.used['in_band'].sum())}/{len(v.used)} {ci(v.in_band)}",
             f"{V.fmt(v.contrast.value)} {ci(v.contrast)}",
             f"{v.worse_configurations}/{v.k}" if v.contrast.n else "–",
             V.fmt(v.contrast_p, 2)] for g, v in hz.groups.items()]
    r.add("### By how the configurations were chosen", "",
          "`selected`: the search's best; `baseline`: the seed notebooks' settings; `random`: drawn from the search "
          "space with a fixed seed. Horizon configurations picked by the search's final score cannot include ones "
          "that degrade late, so the unselected groups are the check.", "",
          table(["group", "configurations", "runs", "best epoch (median, CI)", f"best in {V.band_text(hz.verdict.band)}",
                 f"end − band {M} (median, CI)", "configurations worse at the end", "sign-flip p"], rows), "")
    said = V.disagreement(hz.groups)
    r.add(said or "The groups give the same answer.", "")


def write_search_summary(r: Report, data, a: Analysis) -> None:
    M = display_name(data.metric)
    r.add("### Search: best configuration and the seed baselines", "")
    if a.done.empty:
        c = a.counts
        r.add(f"None of the {len(data.trials)} search trials completed ({c['PRUNED']} pruned, {c['FAIL']} failed, "
              f"{c['RUNNING']} running).", "")
        reasons = data.trials.loc[data.trials["reason"] != "", ["number", "state", "reason"]]
        if not reasons.empty:
            r.add(table(["trial", "state", "reason"], reasons.values.tolist()), "")
        return
    best = a.done.iloc[0]
    lines = [f"**Best configuration: trial {int(best['number'])}**"
             + (f" (seed baseline {best['baseline']})" if best["baseline"] else "")
             + f", final {M} {V.fmt(best['value'])} after {V.fmt(num(best['last_epoch']))} epochs: "
             f"{config_summary(best, data.searched)}."]
    base = data.trials[data.trials["baseline"] != ""]
    if base.empty:
        lines.append("No seed baseline fits this study (see `study.baselines`), so there is no gain to state.")
    for _, b in base.iterrows():
        if b["state"] != "COMPLETE":
            lines.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) did not complete "
                         f"({b['state'].lower()}: {b['reason'] or 'no reason recorded'}).")
        elif int(b["number"]) == int(best["number"]):
            lines.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) is itself the best trial.")
        else:
            d, p = V.gain(best["value"], b["value"], minimize=data.minimize)
            lines.append(f"**Gain over seed baseline {b['baseline']}** (trial {int(b['number'])}, final {M} "
                         f"{V.fmt(b['value'])} after {V.fmt(num(b['last_epoch']))} epochs): {V.fmt(d)} {M} points, "
                         f"{V.fmt(p, 3)} % of the baseline — at their own budgets; the horizon runs above compare "
                         "them epoch by epoch.")
    lines.append("The search makes no best-epoch claim: a trial's best epoch cannot exceed its sampled budget "
                 "(and pruned trials stop early), so pooled best epochs of search trials would mostly restate the "
                 "budgets the sampler drew.")
    r.add(*[f"- {x}" for x in lines], "")


def caveats(data, a: Analysis) -> list[str]:
    t, c, M = data.trials, a.counts, display_name(data.metric)
    out = []
    evaluated = t[t["eval_num_fake"].notna()]
    if evaluated.empty and "eval_num_fake" in data.confirm:  # a study without search runs: its horizon runs
        evaluated = data.confirm[data.confirm["eval_num_fake"].notna()]
    if not evaluated.empty:
        nf = sorted({int(x) for x in evaluated["eval_num_fake"]})
        nr = sorted({int(x) for x in evaluated["eval_num_real"].dropna()})
        dims = sorted({int(x) for x in evaluated["eval_feature_dim"].dropna()})
        below = int((evaluated["eval_fid_n_below_dim"] == 1).sum())
        out.append(f"Sample counts: {M} compares {', '.join(map(str, nf))} generated with "
                   f"{', '.join(map(str, nr)) or '–'} real images per evaluation"
                   + (f", in a {', '.join(map(str, dims))}-dimensional feature space." if dims else "."))
        if data.metric == "fid" or "fid" in str(evaluated["metrics"].iloc[0]):
            out.append(f"FID is biased upward at small N (Chong & Forsyth 2020; the bias shrinks about as 1/N): "
                       f"at {min(nf)} generated images values are comparable only within this study, at equal N"
                       + (f"; in {below} of {len(evaluated)} runs N was below the feature dimension, so the "
                          "covariance estimates are rank-deficient (trust KID more there)." if below else "."))
    named = "".join(f" `{name}` (weights SHA-256 `{sha[:12]}…`)" for name, sha in data.extractors.items())
    for ex in sorted({str(x) for x in t["extractor"].dropna()}):
        if ex == "domain":
            src = sorted({str(d) or str(x) for d, x in zip(t["domain_data"].fillna(""), t["data"].fillna(""))})
            out.append(f"Extractor: `domain`{named}, a classifier trained on {', '.join(src)}, not Inception-v3: "
                       f"these {M} values are not comparable with published ones.")
        else:
            out.append(f"Extractor: `{ex}`{named}, the FID Inception-v3 graph: {M} values are comparable with "
                       "published Inception FIDs computed at the same N (never across N).")
    n = len(t)
    if data.searched:
        out.append(f"{c['PRUNED']} of {n} search trials were pruned and {c['FAIL']} failed; the search section uses "
                   f"the {len(a.done)} completed ones, the epochs verdict none of them.")
    hz = a.horizon
    if hz is not None and hz.verdict is not None:
        v = hz.verdict
        k = v.k
        out.append(f"The verdict's CIs rest on {plural(k, 'configuration')}: they describe these configurations on "
                   "this data set, not GANs in general" + (
                       f"; with fewer than {V.FEW_CONFIGURATIONS} configurations no test across them can reach "
                       f"p < 0.05 (the smallest possible is {V.fmt(V.smallest_p(k), 2)}), so read the CIs as "
                       "descriptions of these runs." if k < V.FEW_CONFIGURATIONS else "."))
        not_reached = v.runs[~v.runs["reached"]]
        if not not_reached.empty:
            out.append(f"{len(not_reached)} finished horizon runs have no evaluation at epoch {hz.horizon} and are left out.")
        out.append("Best epochs are resolved to the evaluation grid; the best of several noisy evaluations is "
                   "biased low, which is why 'within noise of the best' and the equal-width window contrast are "
                   "stated beside it.")
    out += baseline_drift(t, "because the study fixes those fields" if data.searched else
                          "as the study's configuration of that name sets them")
    if data.searched and 0 < len(a.done) < 10:
        out.append(f"Only {len(a.done)} completed trials: the CIs are wide and the importances rest on few points.")
    return out


def baseline_drift(t, why: str) -> list[str]:
    """Where a seed baseline ran with other values than its seed's (fields the study fixed), and `why`."""
    out = []
    for _, b in t[t["baseline"] != ""].iterrows():
        known = BASELINES.get(b["baseline"])
        if known is None:
            continue
        diff = [f"{k}={V.fmt(float(b[k])) if isinstance(v, (int, float)) else b[k]} instead of its notebook's {v}"
                for k, v in known.params.items() if k in b and pd.notna(b[k]) and b[k] != v]
        if diff:
            out.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) ran with {', '.join(diff)}, {why}.")
    return out


def write_report(data, a: Analysis, out: Path) -> Report:
    r = Report(out)
    t, M = data.trials, display_name(data.metric)
    attrs = data.study.user_attrs
    model, dataset = attrs.get("model", "?"), attrs.get("data", "?")
    r.add(f"# Study report: {data.study_name}", "",
          f"{model} on {dataset}, {len(t)} {'trials' if data.searched else 'configurations (no search)'}, metric {M} "
          f"({'minimised' if data.minimize else 'maximised'}), preset `{attrs.get('preset', '?')}`. Read from "
          f"Optuna `{mask_url(data.storage)}` and MLflow `{mask_url(data.tracking_uri)}` (experiment {data.experiment_id}) at "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; every number below is computed from those stores.", "")
    write_verdict(r, data, a)
    write_horizon(r, data, a)
    if data.searched:
        write_search(r, data, a)
    else:
        write_configurations(r, data, a)
    r.add("## Caveats", "")
    r.add(*[f"- {line}" for line in caveats(data, a)], "")
    r.add("## Browse the stores", "", "```bash",
          f"mlflow ui --backend-store-uri '{mask_url(data.tracking_uri)}'",
          f"optuna-dashboard '{mask_url(data.storage)}'", "```", "")
    return r


def write_configurations(r: Report, data, a: Analysis) -> None:
    """A study without search (`study.sitting`): one trial per configuration, and nothing to search."""
    M = display_name(data.metric)
    t = data.trials
    shown = [*a.done.itertuples(), *t[t["state"] != "COMPLETE"].sort_values("number").itertuples()]
    rows = [[int(x.number), x.baseline or "", x.state, num(x.value), num(x.best_epoch), num(x.best_value), x.reason]
            for x in shown]
    r.add("## Configurations", "",
          "A study without search: one trial per configuration, each trained to the horizon with several seeds "
          f"(the runs above). Final = the median over its finished seeds of {M} at the horizon; best epoch and best "
          f"{M} are those of the per-epoch median over the seeds. Every config field is in "
          "[trials.csv](trials.csv).", "",
          table(["trial", "configuration", "state", f"final {M} (median)", "best epoch of the median",
                 f"best median {M}", "reason"], rows), "")


def write_search(r: Report, data, a: Analysis) -> None:
    """The search trials: their table, the optimisation history, importances, curves and samples."""
    t, M = data.trials, display_name(data.metric)
    r.add("## Search trials", "")
    _trials_tables(r, data, a)

    r.add("### Optimisation history", "")
    r.chart("history.png", "optimisation history", lambda p: C.history(t, data.metric, data.minimize, p))

    r.add("### Hyperparameter importance", "")
    def importance_chart(p: Path) -> Path:
        if not a.importances:
            raise C.NoChart(a.importance_note)
        return C.importance(a.importances, f"Optuna {IMPORTANCE_EVALUATOR}, seed 0", data.metric, p)

    if r.chart("importance.png", "hyperparameter importance", importance_chart):
        r.add(table(["parameter", "importance"], [[k, v] for k, v in a.importances.items()]), "")

    r.add(f"### {M} against epoch (each trial up to its own budget)", "")
    r.chart("curves.png", f"{M} against epoch",
            lambda p: C.curves(data.history, t, data.metric, data.minimize, a.top, p))

    r.add("### Effects of label smoothing, augmentation and width/learning-rate ratios", "")
    r.chart("effects.png", "effect plots", lambda p: C.effects(t, data.metric, data.minimize, p))

    r.add("### Losses and discriminator outputs of the top trials", "")
    r.chart("training.png", "training curves of the top trials", lambda p: C.training_curves(data.history, a.top, p))

    r.add("### Samples of the top trials next to real images", "")
    r.chart("samples.png", "sample grids", lambda p: top_samples(data, a, p))

    r.add("### Seed baselines against the best trial", "")
    rows = _baseline_rows(t, a)

    def baselines_chart(p: Path) -> Path:
        if len(rows) == 1:
            raise C.NoChart("no seed baseline completed" if (t["baseline"] != "").any()
                            else "the study holds no seed baseline to compare with")
        return C.baselines(rows, data.metric, data.minimize, p)

    r.chart("baselines.png", "seed baselines against the best trial", baselines_chart)


def _trials_tables(r: Report, data, a: Analysis) -> None:
    """The trial counts by state, and every trial (completed ones first) with its searched values."""
    t, M = data.trials, display_name(data.metric)
    c = a.counts
    r.add(table(["completed", "pruned", "failed", "running", "total"],
                [[c["COMPLETE"], c["PRUNED"], c["FAIL"], c["RUNNING"], len(t)]]), "")
    searched = [p for p in data.searched if p in t.columns]
    shown = pd.concat([a.done, t[t["state"] != "COMPLETE"].sort_values("number")])
    rows = [[int(x["number"]), x["state"], x["baseline"] or "", num(x["value"]), num(x["best_epoch"]),
             num(x["best_value"]), num(x["last_epoch"]), *[x[p] for p in searched]] for _, x in shown.iterrows()]
    r.add(f"All trials, completed ones first, ordered by final {M} (the study's objective: {M} at the last "
          "evaluated epoch, for a pruned trial when it was stopped; a lower best along the way does not reorder; "
          f"the full table with every config field is [trials.csv](trials.csv)):", "",
          table(["trial", "state", "baseline", f"final {M}", "best epoch", f"best {M}", "last epoch", *searched],
                rows), "")


def _baseline_rows(t, a: Analysis) -> list[dict]:
    """The bars of the seed baselines chart: each completed baseline, then the best trial (with the best
    searched trial before them when the best is a baseline itself); none before a trial completed."""
    rows = []
    if a.done.empty:
        return rows
    for _, b in t[t["baseline"] != ""].iterrows():
        if b["state"] == "COMPLETE" and int(b["number"]) != a.top[0]:
            rows.append({"label": f"{b['baseline']}\n(trial {int(b['number'])})", "final": b["value"],
                         "best": b["best_value"]})
    best = a.done.iloc[0]
    if best["baseline"]:
        # The best trial is a baseline itself: compare it with the search's best of the others.
        rows[:0] = [{"label": f"best searched: trial {int(o['number'])}", "final": o["value"],
                     "best": o["best_value"]} for _, o in a.done[a.done["baseline"] == ""].head(1).iterrows()]
    label = f"best: trial {int(best['number'])}" + (f"\n({best['baseline']})" if best["baseline"] else "")
    rows.append({"label": label, "final": best["value"], "best": best["best_value"]})
    return rows


def write_horizon(r: Report, data, a: Analysis) -> None:
    hz = a.horizon
    if hz is None or hz.verdict is None:
        return
    v, M, H = hz.verdict, display_name(data.metric), hz.horizon
    r.add(f"## Horizon runs: every configuration to {H} epochs", "",
          "Every evaluated epoch of every run, with steps, images seen and the re-scorings, is in "
          "[horizon.csv](horizon.csv).", "")
    noise = float(v.used["noise"].median()) if v.used["noise"].notna().any() else math.nan
    r.chart("horizon_curves.png", f"{M} against epoch per configuration: seed mean and range, held-out and training",
            lambda p: C.horizon_curves(hz.frame, data.metric, H, p, v.band, noise))
    r.chart("horizon_best.png", "best epochs and the end-minus-band contrast per run",
            lambda p: C.horizon_runs(v.used, M, H, p, v.band))
    rows = []
    configs = v.configurations.set_index("source")
    for source, g in v.used.groupby("source", sort=False):
        seeds = hz.runs.loc[hz.runs["run_id"].isin(set(g["run_id"])), "seed"]
        m, sd, _ = V.mean_std(g["best_value"])
        rows.append([source, g["group"].iloc[0], len(g), ", ".join(str(int(x)) for x in sorted(seeds)), pm(m, sd),
                     float(g["best_epoch"].median()), float(configs.at[source, "best_epoch"]),
                     float(g["earliest_ok"].median()), float(g["gap"].median()), float(g["contrast"].median()),
                     float(configs.at[source, "contrast"]), int(g["collapsed"].sum())])
    r.add(table(["configuration", "group", "runs", "seeds", f"best {M} (mean ± std)", "best epoch (median of runs)",
                 "best epoch of the seed mean", "earliest within noise (median)", "band best − best (median)",
                 "end − band (median of runs)", "end − band of the seed mean", "collapsed"], rows), "")
    write_train_gap(r, data, hz)
    write_diagnostics(r, hz, v.band)
    r.chart("horizon_samples.png", "sample grids of one horizon run along its curve",
            lambda p: horizon_samples(data, hz, p))


GAP_ROWS = 12
"""evaluated epochs shown in the held-out/training table (evenly spaced, the horizon always among them)"""


def write_train_gap(r: Report, data, hz: Horizon) -> None:
    """Runs scored against held-out photos also scored their samples against the training photos
    (`<metric>_train`): the median over runs of the difference along the epochs, where memorising the
    training photos would show."""
    held, train = data.metric, f"{data.metric}_train"
    if train not in hz.frame:
        return
    f = hz.frame.dropna(subset=[held, train])
    if f.empty:
        return
    f = f.assign(gap=f[held] - f[train])
    by = f.groupby("epoch").agg(runs=("run_id", "nunique"), held=(held, "median"), train=(train, "median"),
                                gap=("gap", "median"), low=("gap", "min"), high=("gap", "max"))
    epochs = list(by.index)
    shown = sorted(epochs[::-1][::max(1, math.ceil(len(epochs) / GAP_ROWS))])
    M = display_name(data.metric)
    rows = [[int(e), int(by.at[e, "runs"]), by.at[e, "held"], by.at[e, "train"], by.at[e, "gap"],
             f"{V.fmt(by.at[e, 'low'])} to {V.fmt(by.at[e, 'high'])}"] for e in shown]
    floor = f"{data.metric}_floor"
    floor_text = (f" For scale, the training images themselves score {M} **{V.fmt(float(hz.frame[floor].median()))}** "
                  "against the held-out ones (the real-versus-real floor: a generator that reproduced its training "
                  "images exactly would score that)." if floor in hz.frame and hz.frame[floor].notna().any() else "")
    r.add("### Held-out against training images", "",
          f"Each evaluation scored one set of samples twice: against the held-out images (never trained on; the "
          f"{M} above) and against the training images. Gap = held-out {M} − training {M} per run; a generator that "
          "copies its training images lies closer to them, so the gap grows. The two image sets differ in size, and "
          f"{M} is biased by N, so compare the gap along the epochs rather than with 0.{floor_text}", "",
          table(["epoch", "runs", f"{M} held-out (median)", f"{M} training (median)", "gap (median)",
                 "gap over runs"], rows), "")


def headline(r: Report) -> str:
    """The verdict's first statement, without Markdown emphasis."""
    return next((line[2:].replace("**", "") for line in r.lines if line.startswith("- ")), "no verdict")
