"""`python -m benchmarks.study_clock`: where the GPU study's wall time went, sitting by sitting and summed.

The 50-trial DCGAN study (`benchmarks/gpu_study.sh`) runs in sittings of a few minutes on a lent GPU.
On the device, `--record FILE` reads the study's stores after the sitting and writes its record: wall
seconds, the study's trials by state, and the sitting's clock — start-up (command start to the first
trial), trials running (at least one), no trial running (between trials, after the last), and inside
the trials' runs: training (the epochs' own seconds), evaluation, the rest (set-up, graph capture,
samples, logging, checkpoints). Back here, `--save OUT` files a sitting's output under
`benchmarks/gpu-study/` (the stores the next sitting continues, `sitting-N.json`, `sitting-N.log`) and
appends the sum over all sittings to `benchmarks/RESULTS.md`, with the trials per hour and the
projected wall time of the whole study at that rate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from gans.cli import Parser, main_guard
from gans.errors import UserError
from study.objective import takes_a_slot
from tracking.mlflow_log import metric_name
from tracking.query import open_client
from tracking.urls import sqlite_path

FOLDER = Path("benchmarks/gpu-study")
"""where the sittings' records and the stores the next sitting continues are kept"""
RESULTS = Path("benchmarks/RESULTS.md")
TARGET = 50
"""finished trials the study aims at (gpu_study.sh's --trials)"""
CLOCK = ("startup_s", "idle_s", "busy_s", "train_s", "eval_s", "trial_other_s")
LOG_LIMIT = 2**20
"""a sitting's log is kept in the repository up to this size (its tail beyond)"""


def clock(spans: Iterable[dict[str, float]], started: float, ended: float) -> dict[str, float]:
    """A sitting's wall time from `started` to `ended` (epoch seconds) split by its trials' runs: each
    span has `start`, `end` (epoch seconds; clipped to the sitting), `train_s` and `eval_s`. Returns the
    start-up before the first run, the time at least one run was going (`busy_s`), the rest
    (`idle_s`), and the runs' own seconds: training, evaluation and the rest of their time."""
    cut = sorted(((max(s["start"], started), min(s["end"], ended), s) for s in spans), key=lambda c: c[:2])
    cut = [c for c in cut if c[1] > c[0]]
    wall = ended - started
    startup = cut[0][0] - started if cut else wall
    busy, reach = 0.0, started
    for a, b, _ in cut:
        busy += max(0.0, b - max(a, reach))
        reach = max(reach, b)
    run_s = sum(b - a for a, b, _ in cut)
    train = sum(s["train_s"] for *_, s in cut)
    evaluation = sum(s["eval_s"] for *_, s in cut)
    return {"wall_s": wall, "startup_s": startup, "busy_s": busy, "idle_s": wall - startup - busy,
            "run_s": run_s, "train_s": train, "eval_s": evaluation, "trial_other_s": run_s - train - evaluation}


def run_span(client, run_id: str) -> dict[str, float] | None:
    """A trial run's start and end (epoch seconds; a run still open ends now), its epochs' training
    and evaluation seconds and the images it trained on; None when the store lacks the run. A run that
    resumed a stopped one holds that one's history too, logged before it started: not counted again."""
    from mlflow.exceptions import MlflowException

    try:
        info = client.get_run(run_id).info
    except MlflowException:
        return None
    history = {key: [m for m in client.get_metric_history(run_id, metric_name(key)) if m.timestamp >= info.start_time]
               for key in ("seconds", "eval_seconds", "images_per_s")}
    speed = {m.step: m.value for m in history["images_per_s"]}
    return {"start": info.start_time / 1000, "end": (info.end_time or time.time() * 1000) / 1000,
            "train_s": sum(m.value for m in history["seconds"]),
            "eval_s": sum(m.value for m in history["eval_seconds"]),
            "images": sum(m.value * speed.get(m.step, 0.0) for m in history["seconds"])}


def study_state(storage: str, tracking_uri: str, study_name: str) -> tuple[dict[str, int], list[dict[str, float]]]:
    """The study's trials by state (`finished`: those that count towards --trials) and its trial runs' spans;
    none when the sitting ended before the study's stores were made."""
    import optuna

    from study.engine import open_storage

    if not all(p is None or p.is_file() for p in (sqlite_path(storage), sqlite_path(tracking_uri))):
        return {"finished": 0}, []
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    except KeyError:
        raise UserError(f"--study-name {study_name}: no such study in {storage}") from None
    trials = study.get_trials(deepcopy=False)
    counts = {"finished": sum(takes_a_slot(t) for t in trials)}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    client = open_client(tracking_uri)
    spans = [run_span(client, t.user_attrs["mlflow_run_id"]) for t in trials if t.user_attrs.get("mlflow_run_id")]
    return counts, [s for s in spans if s is not None]


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"


def record(args: argparse.Namespace) -> dict[str, Any]:
    """This sitting's record (see the module's docstring), from the stores as the sitting left them."""
    counts, spans = study_state(args.storage, args.tracking_uri, args.study_name)
    mine = [s for s in spans if s["end"] > args.started and s["start"] < args.ended]
    return {"device": device_name(), "started": args.started, "ended": args.ended, "budget_s": args.budget,
            "exit_status": args.exit_status, "trials": counts, "runs": len(mine),
            "images": sum(s["images"] for s in mine), **clock(mine, args.started, args.ended)}


def summary(sittings: list[dict[str, Any]], target: int = TARGET) -> dict[str, Any]:
    """The sittings summed: wall, clock, images; the study's trials as the last one left them, finished
    trials per hour of wall, and the wall the whole study would take in one command at that pace: one
    start-up, and the rest of the wall (trials lost to a sitting's end included) per finished trial
    (None before a trial finished)."""
    total = {k: sum(s[k] for s in sittings) for k in ("wall_s", "run_s", "images", *CLOCK)}
    finished = sittings[-1]["trials"]["finished"] if sittings else 0
    per_hour = 3600 * finished / total["wall_s"] if finished and total["wall_s"] > 0 else None
    projected = (sittings[0]["startup_s"] + (total["wall_s"] - total["startup_s"]) * target / finished
                 if finished else None)
    return {**total, "sittings": len(sittings), "trials": sittings[-1]["trials"] if sittings else {},
            "finished": finished, "trials_per_hour": per_hour, "projected_s": projected,
            "devices": sorted({s["device"] for s in sittings}), "each": sittings}


def table(total: dict[str, Any], wall_label: str = "wall time, all sittings") -> list[str]:
    """Markdown rows of where the wall time went."""
    wall = total["wall_s"] or 1.0
    rows = [(wall_label, total["wall_s"]),
            ("start-up (command start to the first trial)", total["startup_s"]),
            ("at least one trial running", total["busy_s"]),
            ("no trial running (between trials, after the last)", total["idle_s"]),
            ("trial runs' seconds (overlap when workers > 1)", total["run_s"]),
            ("... training epochs", total["train_s"]),
            ("... evaluation (FID/KID)", total["eval_s"]),
            ("... rest of the runs (set-up, capture, samples, logging)", total["trial_other_s"])]
    return ["| where | seconds | of wall |", "|---|---:|---:|",
            *(f"| {name} | {s:.1f} | {100 * s / wall:.1f} % |" for name, s in rows)]


def sitting_rows(sittings: list[dict[str, Any]]) -> list[str]:
    """Markdown rows, one per sitting: its device, wall, budget, exit status, runs and the study after it."""
    return ["| sitting | device | wall s | budget s | exit | trial runs | M images | finished trials after |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
            *(f"| {i} | {s['device']} | {s['wall_s']:.0f} | {s['budget_s']:.0f} | {s['exit_status']}"
              f"{' (budget)' if s['exit_status'] == 124 else ''} | {s['runs']} | {s['images'] / 1e6:.2f} | "
              f"{s['trials']['finished']} |" for i, s in enumerate(sittings, 1))]


def trial_counts(trials: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in trials.items() if k != "finished")


def markdown(total: dict[str, Any], target: int = TARGET) -> str:
    trials = trial_counts(total["trials"])
    lines = [f"## The {target}-trial DCGAN study on {' / '.join(total['devices'])}, "
             f"{time.strftime('%Y-%m-%d %H:%M')} (benchmarks/gpu_study.sh)", "",
             f"{total['sittings']} sitting(s); the study holds {total['finished']} of {target} finished trials "
             f"({trials}); {total['images'] / 1e6:.2f} M images trained. Scored with the domain extractor "
             "(cat vs dog), not Inception: see benchmarks/gpu_study.sh.", "", *sitting_rows(total["each"]), "",
             *table(total), ""]
    if total["trials_per_hour"]:
        lines.append(f"{total['trials_per_hour']:.1f} finished trials per hour of wall time. At the pace so far, one "
                     f"command running all {target} trials would take about {total['projected_s'] / 60:.0f} minutes "
                     "(one start-up, then the rest of the wall per finished trial, trials that a sitting's end cut "
                     "short included; the seeds' baselines run first and pruning starts after 5 trials, so the "
                     "pace of the first trials is not that of the rest). Goal: 10 minutes.")
    else:
        lines.append("No trial has finished yet: no rate to project from.")
    return "\n".join(lines) + "\n"


def save(out: Path, folder: Path, results: Path) -> dict[str, Any]:
    """File a sitting's $OUT under `folder` (the stores replaced, when the sitting got as far as making
    them; the record and log numbered) and append the sum over the sittings to `results`."""
    if not (out / "sitting.json").is_file():
        raise UserError(f"--save {out}: no sitting.json there; is it the output of benchmarks/gpu_study.sh?")
    folder.mkdir(parents=True, exist_ok=True)
    n = len(sorted(folder.glob("sitting-*.json"))) + 1
    if (out / "stores.tar.xz").is_file():
        shutil.copyfile(out / "stores.tar.xz", folder / "stores.tar.xz")
    shutil.copyfile(out / "sitting.json", folder / f"sitting-{n}.json")
    if (out / "study.log").is_file():
        log = (out / "study.log").read_bytes()
        (folder / f"sitting-{n}.log").write_bytes(log[-LOG_LIMIT:])
    sittings = [json.loads(p.read_text()) for p in sorted(folder.glob("sitting-*.json"),
                                                            key=lambda p: int(p.stem.split("-")[1]))]
    total = summary(sittings)
    with results.open("a") as f:
        f.write("\n" + markdown(total))
    return total


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m benchmarks.study_clock", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path, metavar="FILE", help="on the device: write this sitting's record to FILE")
    g.add_argument("--save", type=Path, metavar="OUT", help="here: file the sitting's output folder OUT")
    p.add_argument("--started", type=float, help="with --record: the sitting's start, epoch seconds")
    p.add_argument("--ended", type=float, help="with --record: the sitting's end, epoch seconds")
    p.add_argument("--budget", type=float, help="with --record: the sitting's --budget, seconds")
    p.add_argument("--exit-status", type=int, help="with --record: study.run's exit status (124: the budget ran out)")
    p.add_argument("--storage", help="with --record: the study's Optuna storage")
    p.add_argument("--tracking-uri", help="with --record: the study's MLflow tracking URI")
    p.add_argument("--study-name", help="with --record: the study's name")
    p.add_argument("--folder", type=Path, default=FOLDER, help=f"with --save: where sittings are kept (default: {FOLDER})")
    p.add_argument("--results", type=Path, default=RESULTS, help=f"with --save: the results file (default: {RESULTS})")
    args = p.parse_args(argv)
    if args.record is not None:
        missing = [f for f in ("started", "ended", "storage", "tracking_uri", "study_name")
                   if getattr(args, f) is None]
        if missing:
            raise UserError(f"--record needs --{missing[0].replace('_', '-')}")
    return args


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.save is not None:
        total = save(args.save, args.folder, args.results)
        print(markdown(total))
        return 0
    sitting = record(args)
    args.record.write_text(json.dumps(sitting, indent=1) + "\n")
    print("\n".join(table(sitting, "wall time, this sitting")))
    print(f"exit status {sitting['exit_status']}; {sitting['runs']} trial runs this sitting, "
          f"{sitting['images'] / 1e6:.2f} M images; the study holds {sitting['trials']['finished']} finished trials "
          f"({trial_counts(sitting['trials'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
