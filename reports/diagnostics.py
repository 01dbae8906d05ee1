"""The report's section on why late epochs go weird, measured: the horizon runs' diagnostics
(`gans.diagnostics`: discriminator overfitting r_t, D on training minus held-out images, k-NN
precision and recall, memorisation), as seed-mean curves per configuration, a table and one sentence
per diagnostic saying whether it moved between the folklore band and the end window.

The statistics (`late_changes`, `movement`, `movement_sentence`) are pure functions of frames and
numbers; `diagnostics_chart` draws; `write_diagnostics` writes the section through a
`reports.sections.Report`. Reads only the horizon frame `reports.analysis` assembled from the stores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.stats import binomtest

from reports import verdict as V
from reports.charts import DPI, NoChart

SERIES = (
    ("overfit_rt", "r_t", "r_t = E[sign D(x_train)]"),
    ("d_gap", "D(training) − D(held-out)", "D(training) − D(held-out)"),
    ("knn_precision", "precision", "precision (k-NN)"),
    ("knn_recall", "recall", "recall (k-NN)"),
    ("memorisation", "memorisation", "memorisation (1: as far as held-out)"),
)
"""(frame column, name, axis label) of each diagnostic the section reports; `d_gap` = d_train − d_heldout"""

CONSISTENT = 0.8
"""share of runs that must change the same way for a diagnostic to count as moved"""
MIN_RUNS = 3
"""fewer runs with both windows say nothing either way"""


def with_gap(frame):
    """`frame` with `d_gap` = d_train − d_heldout where both were logged."""
    if "d_train" in frame and "d_heldout" in frame:
        return frame.assign(d_gap=frame["d_train"] - frame["d_heldout"])
    return frame


def late_changes(frame, column: str, horizon: int, band: tuple[int, int], window: int = V.END_WINDOW):
    """Per run: the mean of `column` over the last `window` epochs (H − window, H] minus its mean over
    `band` (inclusive), paired within the run; a frame with run_id, source, band_mean, end_mean, change
    (NaN where a window has no value)."""
    import pandas as pd

    rows = []
    for (source, run_id), g in frame.groupby(["source", "run_id"], sort=False):
        g = g[np.isfinite(g[column].astype(float))] if column in g else g.iloc[:0]
        in_band = g[(g["epoch"] >= band[0]) & (g["epoch"] <= band[1])][column]
        at_end = g[(g["epoch"] > horizon - window) & (g["epoch"] <= horizon)][column]
        b = float(in_band.mean()) if len(in_band) else math.nan
        e = float(at_end.mean()) if len(at_end) else math.nan
        rows.append({"run_id": run_id, "source": source, "band_mean": b, "end_mean": e, "change": e - b})
    return pd.DataFrame(rows, columns=["run_id", "source", "band_mean", "end_mean", "change"])


def movement(changes: Sequence[float]) -> dict[str, Any]:
    """What paired changes say: n (finite ones), rose, fell, median, the two-sided sign-test p over the
    non-zero ones (NaN without any), and direction: 'rose' / 'fell' when at least `CONSISTENT` of at
    least `MIN_RUNS` runs changed that way, 'no consistent change' otherwise, 'too few runs' below
    `MIN_RUNS`."""
    x = np.asarray([float(c) for c in changes], dtype=float)
    x = x[np.isfinite(x)]
    n, rose, fell = int(x.size), int((x > 0).sum()), int((x < 0).sum())
    median = float(np.median(x)) if n else math.nan
    p = float(binomtest(max(rose, fell), rose + fell, 0.5).pvalue) if rose + fell else math.nan
    if n < MIN_RUNS:
        direction = "too few runs"
    elif rose >= CONSISTENT * n:
        direction = "rose"
    elif fell >= CONSISTENT * n:
        direction = "fell"
    else:
        direction = "no consistent change"
    return {"n": n, "rose": rose, "fell": fell, "median": median, "p": p, "direction": direction}


def signed(x: float) -> str:
    """`x` with its sign: +0.12, −0.5, 0."""
    if not math.isfinite(x):
        return "–"
    s = V.fmt(abs(x), 3)
    return s if x == 0 else ("+" if x > 0 else "−") + s


def movement_sentence(label: str, m: dict[str, Any], band: tuple[int, int], horizon: int,
                      window: int = V.END_WINDOW) -> str:
    """One sentence from `movement`'s numbers: how many runs rose and fell between the band and the
    end window, the median change, the sign test, and whether that counts as moving."""
    windows = f"from epochs {band[0]}–{band[1]} to {horizon - window + 1}–{horizon}"
    if m["n"] == 0:
        return f"{label}: no run logged it in both epochs {band[0]}–{band[1]} and the last {window}."
    counts = f"rose in {m['rose']} and fell in {m['fell']} of {m['n']} runs {windows}"
    stats = f"median {signed(m['median'])}, sign test p = {V.fmt(m['p'], 2)}"
    if m["direction"] in ("rose", "fell"):
        verdict = f"it {m['direction']} in the late epochs"
    elif m["direction"] == "too few runs":
        verdict = f"too few runs (under {MIN_RUNS}) to say whether it moved"
    else:
        verdict = f"no consistent change (fewer than {V.fmt(100 * CONSISTENT)} % of the runs agree)"
    return f"{label} {counts} ({stats}): {verdict}."


def md(text: str) -> str:
    """`text` safe in Markdown prose and tables (underscores would open emphasis)."""
    return text.replace("_", "\\_").replace("|", "\\|")


def seed_means(frame, column: str):
    """Per configuration and epoch, the mean of `column` over its seeds: source, epoch, value, runs."""
    f = frame[np.isfinite(frame[column].astype(float))] if column in frame else frame.iloc[:0]
    return (f.groupby(["source", "epoch"], sort=False)[column].agg(["mean", "count"]).reset_index()
            .rename(columns={"mean": "value", "count": "runs"}))


def diagnostics_chart(frame, horizon: int, band: tuple[int, int], path: Path, window: int = V.END_WINDOW) -> Path:
    """One panel per diagnostic: the seed-mean curve of each configuration against epoch, the band
    and the end window shaded."""
    shown = [(c, label) for c, _, label in SERIES if c in frame and frame[c].notna().any()]
    if not shown:
        raise NoChart("the horizon runs logged no diagnostics")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(frame["source"]))
    colors = dict(zip(sources, plt.get_cmap("tab10").colors * (len(sources) // 10 + 1)))
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.3 * len(shown) + 0.6), sharex=True, squeeze=False)
    for ax, (column, label) in zip(axes[:, 0], shown):
        means = seed_means(frame, column)
        for source, g in means.groupby("source", sort=False):
            ax.plot(g["epoch"], g["value"], color=colors[source], lw=1.4, label=source)
        if horizon >= band[1] + window:  # shorter runs neither reach past the band nor have an end window
            ax.axvspan(*band, color="#2ca02c", alpha=0.15)
            ax.axvspan(horizon - window, horizon, color="#d62728", alpha=0.08)
        if column == "memorisation":
            ax.axhline(1.0, color="0.3", lw=0.8, ls=":")
        elif column in ("overfit_rt", "d_gap"):
            ax.axhline(0.0, color="0.3", lw=0.8, ls=":")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="best")
    axes[0, 0].set_title(f"Seed means per configuration (green: epochs {band[0]}–{band[1]}; red: the last {window})",
                         fontsize=9)
    axes[-1, 0].set(xlabel="epoch", xlim=(0, horizon * 1.01))
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_diagnostics(r, hz, band: tuple[int, int] = V.FOLKLORE_BAND) -> None:
    """The section, after the horizon runs' own: nothing when they logged no diagnostics (runs without
    a held-out reference, or logged before them). `r` is a `reports.sections.Report`, `hz` its `Horizon`."""
    frame = with_gap(hz.frame)
    shown = [(c, md(name)) for c, name, _ in SERIES if c in frame and frame[c].notna().any()]
    if not shown:
        return
    H, W = hz.horizon, V.END_WINDOW
    r.add("### Why the late epochs go weird: overfitting and memorisation, measured", "",
          "At every evaluation, beside a held-out reference: **r\\_t** = E[sign D(x)] on training images (Karras et al. "
          "2020; 0 when D cannot tell them from fakes, towards 1 as it overfits), **D(training) − D(held-out)** = D's "
          "mean output on training minus on as many held-out real images (an overfitting D scores the images it "
          "trains on higher), **precision** and **recall** (Kynkäänniemi et al. 2019, k = 3 nearest-neighbour "
          "manifolds in the extractor's feature space, samples against as many held-out images), and "
          "**memorisation** = the median distance from the samples to their nearest training image over the same "
          "for held-out real images (about 1: as far from the training images as new real images; well below 1: "
          "copies). The training side is the training images the metrics use (`num_real`).", "")
    r.chart("diagnostics.png", "diagnostics against epoch, seed means per configuration",
            lambda p: diagnostics_chart(frame, H, band, p))
    if H < band[1] + W:
        r.add(f"_The horizon ({H} epochs) leaves no last-{W}-epoch window past epochs {band[0]}–{band[1]}: no "
              "late-epoch comparison._", "")
        return
    rows: dict[Any, list[str]] = {}
    sentences = []
    for column, label in shown:
        changes = late_changes(frame, column, H, band, W)
        sentences.append(movement_sentence(label, movement(changes["change"]), band, H, W))
        for source, g in changes.groupby("source", sort=False):
            m = movement(g["change"])
            rows.setdefault(source, [source]).append(
                f"{signed(m['median'])} ({m['rose']}↑ {m['fell']}↓ of {m['n']})" if m["n"] else "–")
    r.add(f"Mean over epochs {H - W + 1}–{H} minus the mean over {band[0]}–{band[1]}, paired within each run; "
          f"a diagnostic counts as moved when at least {V.fmt(100 * CONSISTENT)} % of at least {MIN_RUNS} runs "
          "changed the same way:", "")
    r.add(*[f"- {s}" for s in sentences], "")
    headers = ["configuration", *[f"{label}: end − band (median)" for _, label in shown]]
    r.add("| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
          *["| " + " | ".join(cells) + " |" for cells in rows.values()], "")
