"""`python -m reports.build`: the Markdown report of one study, answering "is 500–600 epochs best?" (or
the band `--band` names).

Reads the stores (the Optuna study; the study's MLflow runs, metric histories and sample images)
and the data set's first images; never trains. Writes `DIR/report.md`, its PNG charts,
`DIR/trials.csv` (one row per trial) and `DIR/horizon.csv` (one row per horizon run and evaluated
epoch); a rebuild replaces them and removes charts it no longer makes. The same files, and the
verdict's headline as the run's note, go onto the study's parent MLflow run.

This module reads the stores (`reports.stores`), writes the files and attaches them; the report's jobs
live beside it: the numbers in `reports.analysis`, the Markdown in `reports.sections`, the figures in
`reports.charts` and `reports.diagnostics`, the sample panels in `reports.panels`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gans.cli import Parser, ensure_writable_dir, main_guard
from gans.errors import UserError
from gans.metric_keys import display_name
from reports import stores
from reports import verdict as V
from reports.analysis import Analysis, Horizon, analyse, num
from reports.sections import Report, headline, write_report
from tracking import query
from tracking.mlflow_log import attach_report

MANIFEST = ".report-files"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m reports.build", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--study-name", required=True, help="the Optuna study (and MLflow experiment) to report on")
    p.add_argument("--storage", metavar="URL", help="Optuna storage of the study (default: sqlite:///optuna.db)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: the one the study recorded, else sqlite:///mlflow.db)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder for report.md, charts and trials.csv (default: report-STUDY, as study.run writes)")
    p.add_argument("--top", type=int, default=3, help="top trials highlighted in curves and sample grids (default: 3)")
    add_band_arg(p)
    return p.parse_args(argv)


def band_arg(text: str) -> tuple[int, int]:
    try:
        return V.parse_band(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_band_arg(p: argparse.ArgumentParser) -> None:
    """`--band FIRST-LAST`, the epochs the folklore under test names as best (shared with study.run)."""
    p.add_argument("--band", type=band_arg, default=V.FOLKLORE_BAND, metavar="FIRST-LAST",
                   help=f"the epochs the folklore names as best (default: {V.FOLKLORE_BAND[0]}-{V.FOLKLORE_BAND[1]})")


def write(out: Path, r: Report, data, horizon: Horizon | None = None) -> None:
    """Write report.md and trials.csv; delete files an earlier build wrote that this one did not."""
    (out / "report.md").write_text("\n".join(r.lines).rstrip() + "\n")
    data.trials.to_csv(out / "trials.csv", index=False)
    written = {"report.md", "trials.csv", *r.files}
    if horizon is not None:
        horizon.frame.to_csv(out / "horizon.csv", index=False)
        written.add("horizon.csv")
    manifest = out / MANIFEST
    if manifest.exists():
        for name in manifest.read_text().split():
            if name not in written and "/" not in name:
                (out / name).unlink(missing_ok=True)
    manifest.write_text("\n".join(sorted(written)) + "\n")


def default_report_dir(study_name: str) -> Path:
    """Where a study's report goes unless told: one rule for study.run and reports.build."""
    return Path(f"report-{study_name}")


def build(study_name: str, storage: str | None = None, tracking_uri: str | None = None, out: Path | None = None,
          top: int = 3, band: tuple[int, int] = V.FOLKLORE_BAND) -> str:
    """Build the report of a study into `out` (default: `default_report_dir`); returns the verdict's headline."""
    if top <= 0:
        raise UserError(f"--top: must be > 0, got {top}")
    t0 = time.perf_counter()

    data = stores.load(study_name, storage, tracking_uri)
    out = ensure_writable_dir(Path(out) if out is not None else default_report_dir(study_name))
    a = analyse(data, top, band)
    r = write_report(data, a, out)
    write(out, r, data, a.horizon)
    attach(data, a, r, out)
    print(f"wrote {out / 'report.md'} with {len(r.files)} charts in {time.perf_counter() - t0:.1f} s"
          + (f" ({len(r.skipped)} left out: {', '.join(r.skipped)})" if r.skipped else ""), file=sys.stderr)
    return headline(r)


def attach(data, a: Analysis, r: Report, out: Path) -> None:
    """The report on the study's parent MLflow run: the verdict's headline and the best trial as the
    run's description, report.md and its charts as its artifacts (the UI's artifact view shows them)."""
    parent = data.study.user_attrs.get("mlflow_parent_run_id")
    if not parent or parent not in set(stores_run_ids(data)):
        return  # the study recorded no parent run in this tracking store
    best = (f"Best trial: {int(a.done.iloc[0]['number'])} ({display_name(data.metric)} "
            f"{V.fmt(a.done.iloc[0]['value'])} after {V.fmt(num(a.done.iloc[0]['last_epoch']))} epochs)."
            if not a.done.empty else "No search trial completed.")
    attach_report(data.client, parent, out, f"{headline(r)}\n\n{best}\n\nThe whole report: artifacts, report/report.md.")


def stores_run_ids(data) -> list[str]:
    return list(query.study_runs(data.client, data.experiment_id, data.study_name, role="study")["run_id"])


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(build(args.study_name, args.storage, args.tracking_uri, args.out, args.top, args.band))
    return 0


if __name__ == "__main__":
    sys.exit(main())
