"""`python -m reports.build`: the Markdown report of one study, answering "is 500–600 epochs best?".

Reads only the stores (the Optuna study; the study's MLflow runs, metric histories and sample
images) and the data set's first images; never trains. Writes `DIR/report.md`, its PNG charts and
`DIR/trials.csv` (one row per trial); a rebuild replaces them and removes charts it no longer makes.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from gans.cli import main_guard, mask_url
from gans.config import UserError
from reports import verdict as V

MANIFEST = ".report-files"
IMPORTANCE_EVALUATOR = "fANOVA"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--study-name", required=True, help="the Optuna study (and MLflow experiment) to report on")
    p.add_argument("--storage", metavar="URL", help="Optuna storage of the study (default: sqlite:///optuna.db)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: the one the study recorded, else sqlite:///mlflow.db)")
    p.add_argument("--out", type=Path, default=Path("report"), metavar="DIR",
                   help="folder for report.md, charts and trials.csv (default: report)")
    p.add_argument("--top", type=int, default=3, help="top trials highlighted in curves and sample grids (default: 3)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- Markdown helpers


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


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


# ---------------------------------------------------------------- the analysis


@dataclass
class Analysis:
    """The numbers the report states, computed once from the stores' frames."""

    done: Any
    """completed trials, best first"""
    top: list[int]
    counts: dict[str, int]
    best_epoch: V.Estimate | None = None
    past_best: Any = None
    """completed trials that ran past their best epoch, with delta/rel columns"""
    delta: V.Estimate | None = None
    rel: V.Estimate | None = None
    max_epoch: int = 0
    width: int = 1
    buckets: Any = None
    confirm: Any = None
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    long_best: V.Estimate | None = None
    """median best epoch of the completed trials whose budget reached past the folklore band"""


def analyse(data, top_k: int) -> Analysis:
    import pandas as pd

    t = data.trials
    counts = {s: int((t["state"] == s).sum()) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    done = t[(t["state"] == "COMPLETE") & t["value"].notna()]
    done = done.sort_values(["value", "number"], ascending=[data.minimize, True])
    a = Analysis(done=done, top=[int(n) for n in done["number"].head(top_k)], counts=counts)

    h = data.history[data.history["key"] == data.metric]
    epochs = pd.concat([t["epochs"].dropna().astype(float), h["step"].astype(float)])
    a.max_epoch = int(epochs.max()) if not epochs.empty else 0
    a.width = V.bucket_width(a.max_epoch)
    if not h.empty:
        b = h.assign(bucket=h["step"].map(lambda s: V.bucket_end(int(s), a.width)))
        a.buckets = b.groupby(["number", "bucket"], as_index=False)["value"].mean()
        a.buckets["label"] = a.buckets["bucket"].map(
            lambda e: str(e) if a.width == 1 else f"{e - a.width + 1}–{e}")

    with_best = done[done["best_epoch"].notna()]
    if not with_best.empty:
        a.best_epoch = V.bootstrap_median(with_best["best_epoch"].astype(float))
        budgets = with_best["epochs"].astype(float)
        long = with_best[budgets >= V.FOLKLORE_BAND[1]]
        if not long.empty and len(long) < len(with_best):
            a.long_best = V.bootstrap_median(long["best_epoch"].astype(float))
        past = with_best[with_best["best_epoch"] < with_best["last_epoch"]].copy()
        delta, rel = V.worsening(past["best_value"].astype(float), past["value"].astype(float),
                                 minimize=data.minimize)
        past["delta"], past["rel"] = delta, rel
        a.past_best = past
        if not past.empty:
            a.delta = V.bootstrap_median(past["delta"])
            a.rel = V.bootstrap_median(past["rel"])

    a.confirm = confirm_summary(data)
    a.importances, a.importance_note = importances(data, len(done))
    return a


def confirm_summary(data):
    """One row per finished confirmation run: source trial, seed, last/best values, and the
    original trial's final value and best epoch."""
    import pandas as pd

    c = data.confirm
    if c.empty:
        return pd.DataFrame(columns=["run_id", "source", "seed", "last_value", "best_step"])
    minimize = data.minimize
    runs = V.run_summary(data.confirm_history, minimize=minimize)
    finished = c[c["status"] == "FINISHED"].merge(runs, on="run_id", how="inner")
    by_number = data.trials.set_index("number")
    finished["trial_value"] = finished["source"].map(by_number["value"])
    finished["trial_best_epoch"] = finished["source"].map(by_number["best_epoch"]).astype(float)
    # Best original trial first, as in the rest of the report.
    return finished.sort_values(["trial_value", "source", "seed"], ascending=[minimize, True, True],
                                ).reset_index(drop=True)


def importances(data, n_done: int) -> tuple[dict[str, float], str]:
    import optuna

    if n_done < 2:
        return {}, f"needs at least 2 completed trials, the study has {n_done}"
    try:
        imp = optuna.importance.get_param_importances(
            data.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as e:
        return {}, f"Optuna could not compute importances: {e}"
    return {k: float(v) for k, v in imp.items()}, ""


# ---------------------------------------------------------------- the report


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
        from reports.charts import NoChart

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


def metric_name(metric: str) -> str:
    from reports.charts import METRIC_LABELS

    return METRIC_LABELS.get(metric, metric)


def write_verdict(r: Report, data, a: Analysis) -> None:
    M = metric_name(data.metric)
    c = a.counts
    n_all = len(data.trials)
    r.add("## Verdict: is 500–600 epochs best?", "")
    if a.done.empty:
        r.add(f"**No verdict: none of the {n_all} trials completed** ({c['PRUNED']} pruned, {c['FAIL']} failed, "
              f"{c['RUNNING']} running). The best epoch, its confidence interval and the gain over the "
              "baselines need completed trials.", "")
        reasons = data.trials.loc[data.trials["reason"] != "", ["number", "state", "reason"]]
        if not reasons.empty:
            r.add(table(["trial", "state", "reason"], reasons.values.tolist()), "")
        return
    bullets = []
    e = a.best_epoch
    if e is not None:
        bullets.append(f"**Median best epoch: {V.fmt(e.value)}**, 95 % bootstrap CI {ci(e)} over {e.n} completed "
                       f"trials ({V.BOOTSTRAP_RESAMPLES:,} resamples, seed {V.BOOTSTRAP_SEED}); best epoch = the "
                       f"evaluated epoch with the lowest {M}.")
    if a.long_best is not None:
        bullets.append(f"Among the {a.long_best.n} completed trials with a budget of {V.FOLKLORE_BAND[1]} epochs or "
                       f"more (long enough to reach the end of 500–600), the median best epoch is "
                       f"{V.fmt(a.long_best.value)}, CI {ci(a.long_best)}.")
    past, n_best = a.past_best, (e.n if e is not None else 0)
    if past is not None and not past.empty:
        bullets.append(f"**{len(past)} of {n_best} completed trials ran past their best epoch**; by their last "
                       f"epoch {M} had worsened by a median of {V.fmt(a.delta.value)} (95 % CI {ci(a.delta)}), "
                       f"i.e. {V.fmt(a.rel.value, 3)} % (CI {ci(a.rel)}) of the best value.")
    elif e is not None:
        bullets.append(f"None of the {n_best} completed trials ran past its best epoch: every one was best at "
                       "its last evaluated epoch, so nothing here shows a metric getting worse with more epochs.")
    b0, b1 = V.FOLKLORE_BAND
    if e is not None:
        if a.max_epoch < b0:
            bullets.append(f"**500–600 epochs cannot be tested here: no trial trained past {a.max_epoch} epochs.** "
                           f"The median best epoch's CI {ci(e)} speaks only to runs of at most {a.max_epoch} epochs.")
        elif not e.has_ci:
            bullets.append("**500–600 epochs: undecided**, a CI needs at least 2 completed trials.")
        else:
            rel = V.band_relation(e.low, e.high)
            text = {
                "contains": f"lies **inside** the CI {ci(e)}: the data are consistent with 500–600 as the "
                            "typical best epoch (they do not single it out)",
                "overlaps": f"lies **partly inside** the CI {ci(e)}",
                "below": f"lies **outside** the CI {ci(e)}: the typical trial peaked **later** than 600 epochs",
                "above": f"lies **outside** the CI {ci(e)}: the typical trial peaked **earlier** than 500 epochs",
            }[rel]
            bullets.append(f"**500–600 epochs** {text}.")
    best = a.done.iloc[0]
    bullets.append(f"**Best configuration: trial {int(best['number'])}**"
                   + (f" (seed baseline {best['baseline']})" if best["baseline"] else "")
                   + f", final {M} {V.fmt(best['value'])}, best {V.fmt(best['best_value'])} at epoch "
                   f"{V.fmt(_num(best['best_epoch']))} of {V.fmt(_num(best['last_epoch']))}: "
                   f"{config_summary(best, data.searched)}.")
    base = data.trials[data.trials["baseline"] != ""]
    if base.empty:
        bullets.append("No seed baseline fits this study (see `study.baselines`), so there is no gain to state.")
    for _, b in base.iterrows():
        if b["state"] == "COMPLETE":
            if int(b["number"]) == int(best["number"]):
                bullets.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) is itself the best trial.")
                continue
            d, p = V.gain(best["value"], b["value"], minimize=data.minimize)
            bullets.append(f"**Gain over seed baseline {b['baseline']}** (trial {int(b['number'])}, final {M} "
                           f"{V.fmt(b['value'])}): {V.fmt(d)} {M} points, {V.fmt(p, 3)} % of the baseline.")
        else:
            bullets.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) did not complete "
                           f"({b['state'].lower()}: {b['reason'] or 'no reason recorded'}); no gain to state.")
    if a.confirm is not None and not a.confirm.empty:
        for s, g in a.confirm.groupby("source", sort=False):
            m, sd, n = V.mean_std(g["last_value"])
            bm, bsd, _ = V.mean_std(g["best_step"])
            bullets.append(f"Trial {int(s)} rerun with {n} fresh seed{'s' if n != 1 else ''}: final {M} {pm(m, sd)}, best epoch "
                           f"{pm(bm, bsd)} (the trial itself: {V.fmt(_num(g['trial_value'].iloc[0]))} at best "
                           f"epoch {V.fmt(_num(g['trial_best_epoch'].iloc[0]))}).")
    r.add(*[f"- {b}" for b in bullets], "")


def caveats(data, a: Analysis) -> list[str]:
    t, c, M = data.trials, a.counts, metric_name(data.metric)
    out = []
    evaluated = t[t["eval_num_fake"].notna()]
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
    extractors = sorted({str(x) for x in t["extractor"].dropna()})
    for ex in extractors:
        if ex == "domain":
            src = sorted({str(d) or str(x) for d, x in zip(t["domain_data"].fillna(""), t["data"].fillna(""))})
            out.append(f"Extractor: `domain`, a classifier trained on {', '.join(src)}, not Inception-v3: these "
                       f"{M} values are not comparable with published ones.")
        else:
            out.append(f"Extractor: `{ex}`.")
    n = len(t)
    out.append(f"{c['PRUNED']} of {n} trials were pruned and {c['FAIL']} failed. Pruned trials stopped early, so "
               "their best epochs are censored; "
               + (f"the best-epoch statistics use the {len(a.done)} completed trials only." if len(a.done) else
                  "with no completed trial there are no best-epoch statistics."))
    if a.best_epoch is not None:
        at_end = a.done[a.done["best_epoch"] == a.done["last_epoch"]]
        if at_end.empty:
            out.append(f"None of the {len(a.done)} completed trials was best at its last evaluated epoch, so no "
                       "best epoch is cut off by the epoch budget.")
        else:
            out.append(f"{len(at_end)} of {len(a.done)} completed trials were best at their last evaluated epoch: "
                       "they might have improved with more epochs, so their best epochs are lower bounds.")
        budgets = a.done["epochs"].dropna().astype(int)
        short = int((budgets < V.FOLKLORE_BAND[0]).sum())
        if budgets.nunique() > 1:
            out.append(f"Epoch budgets ranged from {budgets.min()} to {budgets.max()}; {short} completed trials "
                       f"stopped before epoch {V.FOLKLORE_BAND[0]} and could not peak in 500–600.")
        ev = sorted({int(x) for x in a.done["eval_every"].dropna()})
        if ev and ev != [0]:
            out.append(f"{M} was evaluated every {', '.join(map(str, ev))} epoch(s): best epochs are resolved to "
                       "that grid.")
    out += baseline_drift(t)
    if 0 < len(a.done) < 10:
        out.append(f"Only {len(a.done)} completed trials: the CIs are wide and the importances rest on few points.")
    return out


def baseline_drift(t) -> list[str]:
    """Where a seed baseline ran with other values than its seed's (fields the study fixed)."""
    from study.baselines import BASELINES

    out = []
    for _, b in t[t["baseline"] != ""].iterrows():
        known = BASELINES.get(b["baseline"])
        if known is None:
            continue
        diff = [f"{k}={V.fmt(_num(b[k])) if isinstance(v, (int, float)) else b[k]} instead of its notebook's {v}"
                for k, v in known.params.items() if k in b and b[k] is not None and str(b[k]) != str(v)
                and not (isinstance(v, (int, float)) and _num(b[k]) == float(v))]
        if diff:
            out.append(f"Seed baseline {b['baseline']} (trial {int(b['number'])}) ran with {', '.join(diff)}, "
                       "because the study fixes those fields.")
    return out


def write_report(data, a: Analysis, out: Path, top_k: int) -> Report:
    import pandas as pd

    from reports import charts as C

    r = Report(out)
    t, M = data.trials, metric_name(data.metric)
    attrs = data.study.user_attrs
    model, dataset = attrs.get("model", "?"), attrs.get("data", "?")
    r.add(f"# Study report: {data.study_name}", "",
          f"{model} on {dataset}, {len(t)} trials, metric {M} "
          f"({'minimised' if data.minimize else 'maximised'}), preset `{attrs.get('preset', '?')}`. Read from "
          f"Optuna `{mask_url(data.storage)}` and MLflow `{mask_url(data.tracking_uri)}` (experiment {data.experiment_id}) at "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; every number below is computed from those stores.", "")
    write_verdict(r, data, a)

    r.add("## Trials", "")
    c = a.counts
    r.add(table(["completed", "pruned", "failed", "running", "total"],
                [[c["COMPLETE"], c["PRUNED"], c["FAIL"], c["RUNNING"], len(t)]]), "")
    searched = [p for p in data.searched if p in t.columns]
    shown = pd.concat([a.done, t[t["state"] != "COMPLETE"].sort_values("number")])
    rows = [[int(x["number"]), x["state"], x["baseline"] or "", _num(x["value"]), _num(x["best_epoch"]),
             _num(x["best_value"]), _num(x["last_epoch"]), *[x[p] for p in searched]] for _, x in shown.iterrows()]
    r.add(f"All trials, completed ones best first (final = {M} at the last evaluated epoch, for a pruned trial "
          "when it was stopped; "
          f"the full table with every config field is [trials.csv](trials.csv)):", "",
          table(["trial", "state", "baseline", f"final {M}", "best epoch", f"best {M}", "last epoch", *searched],
                rows), "")

    r.add("## Optimisation history", "")
    r.chart("history.png", "optimisation history", lambda p: C.history(t, data.metric, data.minimize, p))

    r.add("## Hyperparameter importance", "")
    def importance_chart(p: Path) -> Path:
        if not a.importances:
            raise C.NoChart(a.importance_note)
        return C.importance(a.importances, f"Optuna {IMPORTANCE_EVALUATOR}, seed 0", data.metric, p)

    if r.chart("importance.png", "hyperparameter importance", importance_chart):
        r.add(table(["parameter", "importance"], [[k, v] for k, v in a.importances.items()]), "")

    r.add(f"## {M} against epoch", "")
    r.chart("curves.png", f"{M} against epoch",
            lambda p: C.curves(data.history, t, data.metric, data.minimize, a.top, p))

    r.add("## Best epoch", "")
    best_epochs = a.done["best_epoch"].dropna().astype(int).tolist()
    r.chart("best_epochs.png", "distribution of the best epoch",
            lambda p: C.best_epochs(best_epochs, a.best_epoch, a.max_epoch, p))
    if a.past_best is not None and not a.past_best.empty:
        rows = [[int(x["number"]), int(x["best_epoch"]), x["best_value"], int(x["last_epoch"]), x["value"],
                 x["delta"], x["rel"]] for _, x in a.past_best.sort_values("number").iterrows()]
        r.add("Trials that ran past their best epoch:", "",
              table(["trial", "best epoch", f"best {M}", "last epoch", f"final {M}", "worse by", "worse by %"], rows),
              "")

    r.add(f"## {M} by epoch bucket", "")
    r.chart("buckets.png", f"{M} by epoch bucket",
            lambda p: C.buckets(a.buckets if a.buckets is not None else pd.DataFrame(), data.metric, data.minimize,
                                a.width, a.max_epoch, p))
    if a.buckets is not None and not a.buckets.empty:
        rows = []
        for (end, label), g in a.buckets.groupby(["bucket", "label"]):
            rows.append([label, g["number"].nunique(), float(g["value"].median()), float(g["value"].min())])
        r.add(table(["epochs", "trials", f"median {M}", f"lowest {M}"], rows), "")

    r.add("## Effects of label smoothing, augmentation and width/learning-rate ratios", "")
    r.chart("effects.png", "effect plots", lambda p: C.effects(t, data.metric, data.minimize, p))

    r.add("## Losses and discriminator outputs of the top trials", "")
    r.chart("training.png", "training curves of the top trials", lambda p: C.training_curves(data.history, a.top, p))

    r.add("## Samples of the top trials next to real images", "")
    r.chart("samples.png", "sample grids", lambda p: _samples_chart(data, a, p))

    r.add("## Seed baselines against the best trial", "")
    rows = []
    if not a.done.empty:
        for _, b in t[t["baseline"] != ""].iterrows():
            if b["state"] == "COMPLETE" and int(b["number"]) != a.top[0]:
                rows.append({"label": f"{b['baseline']}\n(trial {int(b['number'])})", "final": b["value"],
                             "best": b["best_value"]})
        best = a.done.iloc[0]
        rows.append({"label": f"best: trial {int(best['number'])}", "final": best["value"], "best": best["best_value"]})
    r.chart("baselines.png", "seed baselines against the best trial",
            lambda p: C.baselines(rows, data.metric, data.minimize, p))

    r.add("## Confirmation runs", "")
    if a.confirm is None or a.confirm.empty:
        r.add(f"None yet. `python -m study.confirm --study-name {data.study_name} --storage {mask_url(data.storage)} "
              f"--tracking-uri {mask_url(data.tracking_uri)} --top 3 --seeds 5` reruns the top configurations with fresh "
              "seeds (Lucic et al. 2018 found GAN scores to vary substantially with the random seed alone).", "")
    else:
        rows = []
        for s, g in a.confirm.groupby("source", sort=False):
            m, sd, n = V.mean_std(g["last_value"])
            bm, bsd, _ = V.mean_std(g["best_step"])
            rows.append([f"trial {int(s)}", n, ", ".join(str(int(x)) for x in g["seed"]), pm(m, sd),
                         _num(g["trial_value"].iloc[0]), pm(bm, bsd), _num(g["trial_best_epoch"].iloc[0])])
        r.add(table(["configuration", "runs", "seeds", f"final {M} (mean ± std)", f"trial's final {M}",
                     "best epoch (mean ± std)", "trial's best epoch"], rows), "")
        r.chart("confirm.png", "confirmation runs", lambda p: C.confirmations(a.confirm, data.metric, data.minimize, p))

    r.add("## Caveats", "")
    r.add(*[f"- {line}" for line in caveats(data, a)], "")
    r.add("## Browse the stores", "", "```bash",
          f"mlflow ui --backend-store-uri '{mask_url(data.tracking_uri)}'",
          f"optuna-dashboard '{mask_url(data.storage)}'", "```", "")
    return r


def _samples_chart(data, a: Analysis, path: Path) -> Path:
    import numpy as np
    from PIL import Image

    from reports import charts as C
    from reports import stores

    if not a.top:
        raise C.NoChart("no completed trial, so there are no top trials")
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for rank, number in enumerate(a.top):
            row = data.trial_row(number)
            epoch = int(row["best_epoch"]) if not _isna(row["best_epoch"]) else int(row["last_epoch"] or 0)
            got = stores.sample_image(data, number, epoch, Path(tmp) / str(number))
            if got is None:
                continue
            file, step = got
            with Image.open(file) as im:
                panels.append((f"#{rank + 1} trial {number}, epoch {step}\n{metric_name(data.metric)} "
                               f"{V.fmt(_metric_at(data, number, step))}", np.asarray(im.convert("RGB")
                                                                                       if im.mode not in ("L", "RGB")
                                                                                       else im)))
    if not panels:
        raise C.NoChart("the top trials logged no sample grids to MLflow")
    best = data.trial_row(a.top[0])
    try:
        grid = stores.real_grid(best.to_dict())
        real = (f"real images ({best['data']})", grid.permute(1, 2, 0).numpy())
    except (UserError, OSError, ValueError, KeyError, RuntimeError) as e:
        real = ("real images", f"real images unavailable:\n{e}")
    return C.samples(panels, real, path)


def _isna(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "<NA>"


def _metric_at(data, number: int, step: int) -> float:
    h = data.history
    v = h[(h["number"] == number) & (h["key"] == data.metric) & (h["step"] == step)]["value"]
    return float(v.iloc[0]) if not v.empty else math.nan


def write(out: Path, r: Report, data) -> None:
    """Write report.md and trials.csv; delete files an earlier build wrote that this one did not."""
    (out / "report.md").write_text("\n".join(r.lines).rstrip() + "\n")
    data.trials.to_csv(out / "trials.csv", index=False)
    written = {"report.md", "trials.csv", *r.files}
    manifest = out / MANIFEST
    if manifest.exists():
        for name in manifest.read_text().split():
            if name not in written and "/" not in name:
                (out / name).unlink(missing_ok=True)
    manifest.write_text("\n".join(sorted(written)) + "\n")


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.top <= 0:
        raise UserError(f"--top: must be > 0, got {args.top}")
    t0 = time.perf_counter()
    from gans.train import ensure_writable_dir
    from reports import stores

    data = stores.load(args.study_name, args.storage, args.tracking_uri)
    out = ensure_writable_dir(args.out)
    a = analyse(data, args.top)
    r = write_report(data, a, out, args.top)
    write(out, r, data)
    print(f"wrote {out / 'report.md'} with {len(r.files)} charts in {time.perf_counter() - t0:.1f} s"
          + (f" ({len(r.skipped)} left out: {', '.join(r.skipped)})" if r.skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
