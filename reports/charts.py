"""The report's charts: seaborn/matplotlib figures drawn from the frames `reports.stores` reads,
each saved as one PNG. A chart the data cannot support raises `NoChart` with the reason, which the
report prints in its place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gans.metric_keys import display_name
from reports import verdict as V

TOP_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
DPI = 110


class NoChart(Exception):
    """The data cannot support this chart; the message says why."""


def metric_label(metric: str, minimize: bool = True) -> str:
    name = display_name(metric)
    return f"{name} ({'lower' if minimize else 'higher'} is better)"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    return plt, sns


def _save(fig, path: Path) -> Path:
    # tight_layout ignores a suptitle; leave it room at the top.
    fig.tight_layout(rect=(0, 0, 1, 0.94) if fig.get_suptitle() else None)
    fig.savefig(path, dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _log_if_wide(ax, values, axis: str = "y") -> None:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0])
    if v.size and v.max() / v.min() > 30:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def history(trials, metric: str, minimize: bool, path: Path) -> Path:
    """Objective value of every finished trial by trial number, with the best so far."""
    done = trials[trials["state"] == "COMPLETE"].sort_values("number")
    if done.empty:
        raise NoChart("no trial completed, so there is no objective value to plot")
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    plain = done[done["baseline"] == ""]
    ax.scatter(plain["number"], plain["value"], s=28, color="#1f77b4", label="completed trial", zorder=3)
    base = done[done["baseline"] != ""]
    if not base.empty:
        ax.scatter(base["number"], base["value"], s=110, marker="*", color="black", label="seed baseline", zorder=4)
        for _, r in base.iterrows():
            ax.annotate(r["baseline"], (r["number"], r["value"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    pruned = trials[(trials["state"] == "PRUNED") & trials["last_value"].notna()]
    if not pruned.empty:
        ax.scatter(pruned["number"], pruned["last_value"], s=22, marker="x", color="0.55",
                   label="pruned (value when stopped)", zorder=2)
    best = V.best_so_far(done["value"].to_numpy(), minimize=minimize)
    ax.step(done["number"], best, where="post", color="#d62728", lw=2, label="best so far")
    _log_if_wide(ax, list(done["value"]) + list(pruned["last_value"]))
    ax.set(xlabel="trial number", ylabel=f"{metric_label(metric, minimize)} at the last epoch",
           title=f"Optimisation history: {len(done)} completed of {len(trials)} trials")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def importance(importances: dict[str, float], evaluator: str, metric: str, path: Path) -> Path:
    """Horizontal bars of each parameter's share of the objective's variance."""
    if not importances:
        raise NoChart("no parameter importances (fewer than two completed trials, or nothing searched)")
    plt, sns = _plt()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    for i, n in enumerate(names):
        ax.text(importances[n], i, f" {importances[n]:.2f}", va="center", fontsize=8)
    ax.set(xlabel="importance (share of the objective's variance, sums to 1)", ylabel="parameter",
           title=f"Hyperparameter importance for the final {display_name(metric)} ({evaluator})")
    ax.set_xlim(0, max(importances.values()) * 1.18 or 1)
    return _save(fig, path)


def curves(history_long, trials, metric: str, minimize: bool, top: Sequence[int], path: Path) -> Path:
    """The study metric against epoch for every trial: thin grey lines, top trials in colour,
    seed baselines dashed."""
    h = history_long[history_long["key"] == metric]
    if h.empty:
        raise NoChart(f"no trial logged {metric} to MLflow")
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    baselines = dict(zip(trials["number"], trials["baseline"]))
    first_grey = True
    for number, g in h.groupby("number"):
        if number in top or baselines.get(number):
            continue
        # Markers too: a trial pruned at its first evaluation is a single point.
        ax.plot(g["step"], g["value"], color="0.6", lw=0.8, alpha=0.7, marker="o", ms=2.5,
                label="other trials" if first_grey else None)
        first_grey = False
    for number, g in h.groupby("number"):
        if baselines.get(number) and number not in top:
            ax.plot(g["step"], g["value"], color="black", lw=1.6, ls="--", marker="o", ms=3,
                    label=f"baseline {baselines[number]} (trial {number})")
    for rank, number in enumerate(top):
        g = h[h["number"] == number]
        if g.empty:
            continue
        extra = f", baseline {baselines[number]}" if baselines.get(number) else ""
        ax.plot(g["step"], g["value"], color=TOP_COLORS[rank % len(TOP_COLORS)], lw=2.2, marker="o", ms=3,
                label=f"#{rank + 1}: trial {number}{extra}")
    _log_if_wide(ax, h["value"])
    max_step = int(h["step"].max())
    if max_step <= 20:
        ax.set_xticks(range(1, max_step + 1))
    ax.set(xlabel="epoch", ylabel=metric_label(metric, minimize),
           title=f"{display_name(metric)} at evaluated epochs, {h['number'].nunique()} trials")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def _text_panel(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _points(ax, frame, x: str, *, color=None) -> Any:
    """Trials as dots (coloured by `color`, a column, when given), seed baselines ringed by a star."""
    kw = dict(c=frame[color], cmap="viridis") if color else dict(color="#1f77b4")
    sc = ax.scatter(frame[x], frame["value"], s=45, zorder=3, label="trial", **kw)
    base = frame[frame["baseline"] != ""]
    if not base.empty:
        ax.scatter(base[x], base["value"], s=260, marker="*", facecolors="none", edgecolors="black", lw=1.2,
                   zorder=4, label="seed baseline")
    ax.legend(fontsize=7, loc="best")
    return sc


def _log_ratio_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def effects(trials, metric: str, minimize: bool, path: Path) -> Path:
    """Final metric against label smoothing, augmentation policy, lr_G/lr_D and ngf/ndf (the hidden
    width for the MLP models, which have no conv layers)."""
    done = trials[trials["state"] == "COMPLETE"].copy()
    if done.empty:
        raise NoChart("no trial completed, so there is no final metric to relate to the parameters")
    plt, sns = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 8))
    ylabel = f"final {metric_label(metric, minimize)}"
    for col in ("lr_g", "lr_d", "ngf", "ndf", "real_label", "fake_label"):
        done[col] = done[col].astype(float)
    done["lr_ratio"] = done["lr_g"] / done["lr_d"]
    done["width_ratio"] = done["ngf"] / done["ndf"]
    mlp = done["model"].iloc[0] in ("mlp", "cgan")
    width = (axes[1, 1], "hidden", "hidden width", "Hidden width") if mlp else \
        (axes[1, 1], "width_ratio", "ngf / ndf", "Generator/discriminator width ratio")

    ax = axes[0, 0]
    if done["real_label"].nunique() > 1 or done["fake_label"].nunique() > 1:
        sc = _points(ax, done, "real_label", color="fake_label")
        fig.colorbar(sc, ax=ax, label="fake label target (0 = none)")
        ax.set(xlabel="real label target (1.0 = no smoothing)", ylabel=ylabel, title="Label smoothing")
    else:
        _text_panel(ax, f"label targets {done['real_label'].iloc[0]:g}/{done['fake_label'].iloc[0]:g} in every trial")
        ax.set_title("Label smoothing")

    ax = axes[0, 1]
    if done["augment"].nunique() > 1:
        order = sorted(done["augment"].unique())
        sns.boxplot(data=done, x="augment", y="value", order=order, ax=ax, color="#aec7e8", fliersize=0)
        sns.stripplot(data=done, x="augment", y="value", order=order, ax=ax, color="0.25", size=4)
        counts = done["augment"].value_counts()
        ax.set_xticks(range(len(order)), [f"{a}\n(n={counts[a]})" for a in order])
        ax.set(xlabel="augmentation policy", ylabel=ylabel, title="Augmentation policy")
    else:
        _text_panel(ax, f"augmentation '{done['augment'].iloc[0]}' in every trial")
        ax.set_title("Augmentation policy")

    for ax, col, name, title in ((axes[1, 0], "lr_ratio", "lr_G / lr_D", "Learning-rate ratio"), width):
        if done[col].nunique() > 1 and col == "hidden":
            _points(ax, done.assign(hidden=done["hidden"].astype(float)), col)
            ax.set_xscale("log", base=2)
            ax.set(xlabel=f"{name} (log scale)", ylabel=ylabel, title=title)
        elif done[col].nunique() > 1:
            _points(ax, done, col)
            _log_ratio_axis(ax)
            ax.axvline(1.0, color="0.4", lw=1, ls=":")
            ax.set(xlabel=f"{name} (log scale; dotted: equal)", ylabel=ylabel, title=title)
        else:
            _text_panel(ax, f"{name} = {V.fmt(float(done[col].iloc[0]))} in every trial")
            ax.set_title(title)
    for ax in axes.flat:
        if ax.get_ylabel():
            _log_if_wide(ax, done["value"])
    fig.suptitle(f"Effects on the final {display_name(metric)}, {len(done)} completed trials",
                 fontsize=11)
    return _save(fig, path)


def training_curves(history_long, top: Sequence[int], path: Path) -> Path:
    """Losses and mean discriminator outputs against epoch for the top trials."""
    if not top:
        raise NoChart("no completed trial, so there are no top trials")
    h = history_long[history_long["number"].isin(list(top))]
    if h.empty or not set(h["key"]) & {"loss_d", "d_real"}:
        raise NoChart("the top trials logged no losses")
    plt, sns = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    for rank, number in enumerate(top):
        color = TOP_COLORS[rank % len(TOP_COLORS)]
        g = h[h["number"] == number]
        for ax, key, ls, what in ((ax1, "loss_d", "-", "loss_D"), (ax1, "loss_g", "--", "loss_G"),
                                  (ax2, "d_real", "-", "D(x)"), (ax2, "d_fake", "--", "D(G(z))")):
            k = g[g["key"] == key]
            if not k.empty:
                ax.plot(k["step"], k["value"], color=color, ls=ls, lw=1.6, label=f"#{rank + 1} trial {number}: {what}")
    ax1.set(xlabel="epoch", ylabel="BCE loss (mean over the epoch's steps)", title="Losses of the top trials")
    ax2.set(xlabel="epoch", ylabel="mean probability", ylim=(0, 1),
            title="Discriminator outputs (solid D(x), dashed D(G(z)))")
    max_step = int(h["step"].max())
    for ax in (ax1, ax2):
        if max_step <= 20:
            ax.set_xticks(range(1, max_step + 1))
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def samples(panels: Sequence[tuple[str, Any]], real: tuple[str, Any] | None, path: Path,
            title: str = "Generated samples of the top trials (fixed noise, at each trial's best epoch) next to "
                         "real images") -> Path:
    """Sample grids (uint8 H x W x C arrays) side by side, the real images last (when given); an
    entry whose image is a string shows that text instead."""
    if not panels:
        raise NoChart("no top trial logged a sample grid")
    plt, sns = _plt()
    items = [*panels, *([real] if real is not None else [])]
    fig, axes = plt.subplots(1, len(items), figsize=(max(6.0, 3.3 * len(items)), 3.7))
    for ax, (label, img) in zip(np.atleast_1d(axes), items):
        ax.grid(False)
        if isinstance(img, str):
            _text_panel(ax, img)
        else:
            arr = np.asarray(img)
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[..., 0]
            ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def baselines(rows, metric: str, minimize: bool, path: Path) -> Path:
    """Bars of the final and best metric for each seed baseline and the best trial. `rows` holds
    label, final, best."""
    if len(rows) < 2:
        raise NoChart("the study holds no seed baseline to compare with" if len(rows) == 1 else
                      "no completed trial")
    plt, sns = _plt()
    import pandas as pd

    long = pd.DataFrame(rows).melt(id_vars="label", value_vars=["final", "best"], var_name="which", value_name="v")
    long["which"] = long["which"].map({"final": "at the last epoch", "best": "at the best epoch"})
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(rows) + 2), 4.2))
    sns.barplot(data=long, x="label", y="v", hue="which", ax=ax, palette=["#1f77b4", "#aec7e8"])
    for c in ax.containers:
        ax.bar_label(c, fmt="%.4g", fontsize=8)
    ax.set(xlabel="", ylabel=metric_label(metric, minimize),
           title=f"Seed baselines vs the best trial ({display_name(metric)})")
    ax.legend(fontsize=8, title=None)
    return _save(fig, path)


def horizon_curves(frame, metric: str, horizon: int, path: Path, band: tuple[int, int] = V.FOLKLORE_BAND,
                   noise: float = float("nan")) -> Path:
    """Absolute metric against epoch per configuration: the seed mean as a line, the seeds' range
    shaded, the band and the end window marked; beside it the same against the training images
    (`<metric>_train`) when the runs logged it. A bar at the start shows ±1.96·√2 `noise`, how far two
    evaluations of one generator can differ; a dashed line the real-versus-real floor (`<metric>_floor`)."""
    f = frame[frame[metric].notna()]
    if f.empty:
        raise NoChart(f"no horizon run logged {metric}")
    plt, sns = _plt()
    train = f"{metric}_train"
    panels = [(metric, "held-out images" if train in f and f[train].notna().any() else "the reference images")]
    if train in f and f[train].notna().any():
        panels.append((train, "training images"))
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4.8), sharey=True, squeeze=False)
    sources = list(dict.fromkeys(f["source"]))
    palette = dict(zip(sources, sns.color_palette("tab10", len(sources))))
    name = display_name(metric)
    for ax, (col, against) in zip(axes[0], panels):
        by = f.groupby(["source", "epoch"], sort=False)[col].agg(["mean", "min", "max", "count"]).reset_index()
        for source in sources:
            g = by[by["source"] == source]
            seeds = int(g["count"].max())
            ax.plot(g["epoch"], g["mean"], color=palette[source], lw=1.6, label=f"{source} (mean of {seeds} seeds)")
            ax.fill_between(g["epoch"], g["min"], g["max"], color=palette[source], alpha=0.18, lw=0)
        if horizon >= band[1] + V.END_WINDOW:  # shorter runs neither reach past the band nor have an end window
            ax.axvspan(*band, color="#2ca02c", alpha=0.15, label=f"band: {V.band_text(band)}")
            ax.axvspan(horizon - V.END_WINDOW, horizon, color="#d62728", alpha=0.08,
                       label=f"last {V.END_WINDOW} epochs")
        floor = f"{metric}_floor"
        if col == metric and floor in f and f[floor].notna().any():
            ax.axhline(float(f[floor].median()), color="0.2", lw=1, ls="--",
                       label=f"floor: training vs held-out images ({V.fmt(float(f[floor].median()), 3)})")
        if noise == noise and noise > 0:
            half = V.NOISE_Z * 2 ** 0.5 * noise
            top = float(by["mean"].median())
            ax.errorbar([horizon * 0.02], [top], yerr=[half], color="0.2", capsize=4, lw=1.2,
                        label=f"±{V.fmt(half, 3)}: two evaluations of one generator")
        _log_if_wide(ax, f[col].dropna())
        ax.set(xlabel="epoch", xlim=(0, horizon * 1.01), ylabel=f"{name} against {against}",
               title=f"{name} against {against}: seed mean, shaded range of the seeds")
    axes[0][0].legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def horizon_runs(runs, metric_label_: str, horizon: int, path: Path, band: tuple[int, int] = V.FOLKLORE_BAND) -> Path:
    """Per configuration: each run's best epoch (and earliest epoch within noise of it), and each run's
    end-minus-band contrast. `runs` holds source, best_epoch, earliest_ok, contrast."""
    if runs.empty:
        raise NoChart("no horizon run reached the horizon")
    plt, sns = _plt()
    order = list(dict.fromkeys(runs["source"]))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.5 * len(order) + 3.2), sharey=True)
    long = runs.melt(id_vars=["source"], value_vars=["best_epoch", "earliest_ok"], var_name="what", value_name="epoch")
    long["what"] = long["what"].map({"best_epoch": "best epoch", "earliest_ok": "earliest within noise of the best"})
    sns.stripplot(data=long, x="epoch", y="source", hue="what", order=order, ax=ax1, dodge=True, size=6,
                  palette=["#d62728", "#1f77b4"])
    ax1.axvspan(*band, color="#2ca02c", alpha=0.15)
    ax1.set(xlim=(0, horizon * 1.02), xlabel="epoch", ylabel="",
            title=f"Where each run bottoms out (band: {V.band_text(band)})")
    ax1.legend(fontsize=7, loc="lower left")
    sns.stripplot(data=runs, x="contrast", y="source", order=order, ax=ax2, color="0.25", size=6)
    ax2.axvline(0, color="0.3", lw=1, ls=":")
    ax2.set(xlabel=f"mean {metric_label_} over the last {V.END_WINDOW} epochs − mean over {V.band_text(band)}\n"
                   f"(> 0: worse at {horizon})", ylabel="", title=f"Does {horizon} go weird? One dot per run")
    return _save(fig, path)

