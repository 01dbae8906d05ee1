"""`python -m reports.reread HORIZON_CSV`: the epochs verdict of a committed `horizon.csv`, recomputed with
today's statistics (`reports.verdict`), without the stores that produced it.

A report's `horizon.csv` holds every horizon run's curve (run_id, source, epoch, the metric and its
re-scorings), which is all the verdict reads; so a result committed under an earlier version of the
statistics can be read again, and its numbers compared with the report beside it. Prints Markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gans.cli import Parser, main_guard
from gans.errors import UserError
from reports import verdict as V
from reports.build import add_band_arg
from reports.sections import ci, plural


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m reports.reread", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("horizon_csv", type=Path, help="a report's horizon.csv")
    p.add_argument("--metric", default="fid", help="the column the verdict reads (default: fid)")
    add_band_arg(p)
    return p.parse_args(argv)


def summary(v: V.HorizonVerdict, metric: str) -> list[str]:
    """The verdict's figures as Markdown bullets."""
    b, used = V.band_text(v.band), v.used
    return [
        f"- **{v.sentence}**",
        f"- {plural(len(used), 'run')} of {plural(v.k, 'configuration')} to {v.horizon} epochs; median best epoch "
        f"{V.fmt(v.best_epoch.value)}, CI {ci(v.best_epoch)}.",
        f"- P(best epoch in {b}): {int(used['in_band'].sum())} of {len(used)} runs, exact CI {ci(v.in_band)}; "
        f"{int(v.configurations['in_band'].sum())} of {plural(v.k, 'configuration')}, exact CI {ci(v.in_band_configurations)}.",
        f"- Band best − best: median {V.fmt(v.gap.value)}, CI {ci(v.gap)}; within noise for {v.gap_within_noise} "
        f"of {len(used)} runs (noise per run: the larger of re-scoring SD, median "
        f"{V.fmt(float(used['rescore_sd'].median()))}, and jitter SD, median {V.fmt(float(used['jitter_sd'].median()))}).",
        f"- End − band {metric}: median {V.fmt(v.contrast.value)}, CI {ci(v.contrast)}; worse at the end in "
        f"{v.worse_configurations} of {plural(v.k, 'configuration')} (seed-averaged), exact sign-flip p = {V.fmt(v.contrast_p, 2)}.",
        "- Per configuration (seed-averaged curve): "
        + "; ".join(f"{r['source']}: best epoch {V.fmt(r['best_epoch'])}, end − band {V.fmt(r['contrast'])}"
                    for _, r in v.configurations.iterrows()) + ".",
    ]


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.horizon_csv.is_file():
        raise UserError(f"{args.horizon_csv}: no such file; name a report's horizon.csv")
    frame = pd.read_csv(args.horizon_csv)
    if args.metric not in frame:
        raise UserError(f"--metric {args.metric}: no such column; the file has {', '.join(frame.columns)}")
    curves, noise = V.curves_and_noise(frame, args.metric)
    horizon = int(frame.groupby("run_id")["epoch"].max().max())
    try:
        v = V.horizon_verdict(curves, horizon=horizon, noise=noise, metric=args.metric.upper(), band=args.band)
    except ValueError as e:
        raise UserError(f"{args.horizon_csv}: {e}") from None
    print("\n".join(summary(v, args.metric.upper())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
