"""The report's image panels: sample grids fetched from MLflow (the top trials at their best epochs, one
horizon run along its curve) beside the data set's first real images, drawn by `reports.charts.samples`.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gans.errors import UserError
from gans.metric_keys import display_name
from reports import charts as C
from reports import stores
from reports import verdict as V
from reports.analysis import Analysis, Horizon, run_seed
from tracking import query


def horizon_samples(data, hz: Horizon, path: Path) -> Path:
    """Grids of the run whose end is furthest above its band (end − band largest) at about a fifth and
    three fifths of the band's start, the band's middle and H epochs, beside real images."""
    run = hz.verdict.used.sort_values("contrast", ascending=False).iloc[0]
    steps = query.image_steps(data.client, run["run_id"], "samples")
    if not steps:
        raise C.NoChart("the horizon runs logged no sample grids")
    b0, b1 = hz.verdict.band
    wanted = (b0 // 5, 3 * b0 // 5, (b0 + b1) // 2, hz.horizon)
    picked = list(dict.fromkeys(min(steps, key=lambda s: (abs(s - w), s)) for w in wanted))
    curve = hz.frame[hz.frame["run_id"] == run["run_id"]].set_index("epoch")[data.metric]
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for step in picked:
            file = query.download(data.client, run["run_id"], steps[step], Path(tmp) / str(step))
            with Image.open(file) as im:
                panels.append((f"epoch {step}: {display_name(data.metric)} {V.fmt(float(curve.get(step, math.nan)))}",
                               np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)))
    title = (f"{run['source']}, seed {run_seed(hz, run['run_id'])}: the horizon run with the largest end − band "
             f"{display_name(data.metric)} ({V.fmt(float(run['contrast']))}: last {V.END_WINDOW} epochs against "
             f"{V.band_text(hz.verdict.band)})")
    # Every configuration of a study trains on the same images: any trial's row names them.
    return C.samples(panels, real_panel(data, int(data.trials["number"].min())), path, title=title)


def real_panel(data, number) -> tuple[str, Any]:
    """The first real images of trial `number`'s data set as a panel (or why there are none)."""
    try:
        row = data.trial_row(int(number))
        grid = stores.real_grid(row.to_dict())
        return f"real images ({row['data']})", grid.permute(1, 2, 0).numpy()
    except (UserError, OSError, ValueError, KeyError, RuntimeError, TypeError, IndexError) as e:
        return "real images", f"real images unavailable:\n{e}"


def top_samples(data, a: Analysis, path: Path) -> Path:
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
                panels.append((f"#{rank + 1} trial {number}, epoch {step}\n{display_name(data.metric)} "
                               f"{V.fmt(_metric_at(data, number, step))}", np.asarray(im.convert("RGB")
                                                                                       if im.mode not in ("L", "RGB")
                                                                                       else im)))
    if not panels:
        raise C.NoChart("the top trials logged no sample grids to MLflow")
    return C.samples(panels, real_panel(data, a.top[0]), path)


def _isna(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "<NA>"


def _metric_at(data, number: int, step: int) -> float:
    h = data.history
    v = h[(h["number"] == number) & (h["key"] == data.metric) & (h["step"] == step)]["value"]
    return float(v.iloc[0]) if not v.empty else math.nan
