"""The numbers a study's report states, computed once from the frames `reports.stores` reads: the
trial counts and ranking, the horizon runs at the largest horizon with their verdict (pooled and per
group, `reports.verdict`), and Optuna's hyperparameter importances. No Markdown, no figures, no files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gans.metric_keys import RESAMPLE, display_name
from reports import verdict as V

IMPORTANCE_EVALUATOR = "fANOVA"


def num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


@dataclass
class Horizon:
    """The horizon runs of one horizon H and what the verdict reads from them."""

    horizon: int
    frame: Any
    """horizon.csv: one row per finished run and evaluated epoch: run_id, source, trial, baseline, seed,
    epoch, step, images_seen, each metric, and its re-scorings"""
    verdict: V.HorizonVerdict | None
    """the pooled verdict (`groups['pooled']`)"""
    diverged: Any
    """failed runs at this horizon: run_id, source, seed, reason"""
    runs: Any
    """one row per finished run: run_id, source, trial, seed, steps_per_epoch, batch_size"""
    why: str = ""
    """why there is no verdict (verdict None)"""
    groups: dict[str, V.HorizonVerdict] = field(default_factory=dict)
    """the verdict pooled and per group of configurations (selected, baseline, random) when there are several"""


@dataclass
class Analysis:
    """The numbers the report states, computed once from the stores' frames."""

    done: Any
    """completed search trials, best first"""
    top: list[int]
    counts: dict[str, int]
    horizon: Horizon | None = None
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str = ""
    band: tuple[int, int] = V.FOLKLORE_BAND
    """the epochs the folklore names as best"""


def analyse(data, top_k: int, band: tuple[int, int] = V.FOLKLORE_BAND) -> Analysis:
    t = data.trials
    counts = {s: int((t["state"] == s).sum()) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    done = t[(t["state"] == "COMPLETE") & t["value"].notna()]
    done = done.sort_values(["value", "number"], ascending=[data.minimize, True])
    a = Analysis(done=done, top=[int(n) for n in done["number"].head(top_k)], counts=counts, band=band)
    a.horizon = horizon_analysis(data, band)
    if data.searched:  # a study of fixed configurations (`study.sitting`) has nothing to attribute
        a.importances, a.importance_note = importances(data, len(done))
    return a


def source_label(trial, baseline: str) -> str:
    if isinstance(trial, str):  # a random control (`study.confirm`): no trial
        return trial
    return f"{baseline} (trial {int(trial)})" if baseline else f"trial {int(trial)}"


def horizon_analysis(data, band: tuple[int, int] = V.FOLKLORE_BAND) -> Horizon | None:
    """The verdict's input: the finished runs at the largest horizon any finished run reached."""
    c = data.confirm
    if c.empty or "horizon" not in c or c["horizon"].dropna().empty:
        return None
    finished = c[(c["status"] == "FINISHED") & c["horizon"].notna()]
    if finished.empty:
        return None
    H = int(finished["horizon"].max())
    runs = finished[finished["horizon"] == H].copy()
    runs["source_label"] = [source_label(n, b) for n, b in zip(runs["source"], runs["baseline"])]
    failed = c[(c["status"] == "FAILED") & (c["horizon"] == H)]
    diverged = pd.DataFrame({"run_id": failed["run_id"], "seed": failed["seed"], "reason": failed["reason"],
                             "source": [source_label(n, b) for n, b in zip(failed["source"], failed["baseline"])]})
    h = data.confirm_history[data.confirm_history["run_id"].isin(set(runs["run_id"]))]
    wide = h.pivot_table(index=["run_id", "step"], columns="key", values="value", aggfunc="last").reset_index()
    wide = wide.rename(columns={"step": "epoch"})
    info = runs.set_index("run_id")
    spe = wide["run_id"].map(info["steps_per_epoch"]).astype(float)
    batch = wide["run_id"].map(info["batch_size"]).astype(float)
    frame = pd.DataFrame({"run_id": wide["run_id"], "source": wide["run_id"].map(info["source_label"]),
                          "group": wide["run_id"].map(info["group"]),
                          "trial": wide["run_id"].map(info["source"]), "baseline": wide["run_id"].map(info["baseline"]),
                          "seed": wide["run_id"].map(info["seed"]), "epoch": wide["epoch"].astype(int),
                          "step": (wide["epoch"] * spe).astype("Int64"),
                          "images_seen": (wide["epoch"] * spe * batch).astype("Int64")})
    metric_cols = [k for k in wide.columns if k not in ("run_id", "epoch")]
    metric_cols.sort(key=lambda k: (k.split(RESAMPLE)[0] != data.metric, k))
    for k in metric_cols:
        frame[k] = wide[k]
    frame = frame.sort_values(["source", "seed", "epoch"]).reset_index(drop=True)
    summary = pd.DataFrame({"run_id": runs["run_id"], "source": runs["source_label"], "group": runs["group"],
                            "trial": runs["source"],
                            "seed": runs["seed"], "steps_per_epoch": runs["steps_per_epoch"],
                            "batch_size": runs["batch_size"]})
    out = Horizon(H, frame, None, diverged, summary)
    if data.metric not in frame:
        out.why = f"the horizon runs logged no {data.metric}"
        return out
    curves, noise = V.curves_and_noise(frame, data.metric)
    try:
        out.groups = V.group_verdicts(curves, horizon=H, noise=noise, metric=display_name(data.metric),
                                      minimize=data.minimize, band=band)
        out.verdict = out.groups["pooled"]
    except ValueError as e:
        out.why = str(e)
    return out


def importances(data, n_done: int) -> tuple[dict[str, float], str]:
    import optuna  # only a study with search trials needs it: a sitting's report reads no importances

    if n_done < 2:
        return {}, f"needs at least 2 completed trials, the study has {n_done}"
    try:
        imp = optuna.importance.get_param_importances(
            data.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as e:
        return {}, f"Optuna could not compute importances: {e}"
    return {k: float(v) for k, v in imp.items()}, ""


def run_seed(hz: Horizon, run_id: str):
    s = hz.runs.loc[hz.runs["run_id"] == run_id, "seed"]
    return s.iloc[0] if not s.empty else "?"
