"""`python -m study.run`: the Optuna study. Searches the training config, prunes on FID (or KID), and
logs every trial as a nested MLflow run under one parent run per study.

Running the same command again continues the study until it holds `--trials` finished trials
(complete, pruned, or failed with a reason such as a NaN loss). Stores default to `sqlite:///optuna.db` and `sqlite:///mlflow.db` in
the working folder (with `--workers K > 1`, Optuna's default becomes the journal file
`optuna.journal`, which is safe for parallel processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import warnings
from pathlib import Path

from gans.cli import add_config_flags, config_overrides, main_guard
from gans.config import TrainConfig, UserError
from study.baselines import fitting
from study.engine import (PRUNERS, SAMPLERS, StudySettings, open_storage, quiet_libraries, resolve_storage,
                          run_trials)
from study.objective import STUDY_METRICS, TrialContext, train_data
from study.presets import PRESETS, preset_config
from study.space import FAMILY, apply_overrides, default_space, load_space_file, split_fixed, validate

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m study.run", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nA training flag fixes its field for every trial; the "
        "others are searched or come from the preset (defaults shown: --preset full).")
    g = p.add_argument_group("study")
    g.add_argument("--trials", type=int, help="finished trials the study should hold (default: the preset's: "
                   + ", ".join(f"{k} {v.trials}" for k, v in PRESETS.items()) + ")")
    g.add_argument("--preset", default="full", choices=list(PRESETS),
                   help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()) + " (default: full)")
    g.add_argument("--space", metavar="FILE", help="YAML or TOML file narrowing or fixing search-space entries")
    g.add_argument("--study-name", help="names the Optuna study and the MLflow experiment "
                   "(default: [PRESET-]MODEL-DATA, e.g. quick-mlp-mnist)")
    g.add_argument("--storage", metavar="URL", help="Optuna storage: sqlite:///F.db, postgresql://..., "
                   "redis://..., or a journal FILE (default: sqlite:///optuna.db; optuna.journal with --workers > 1)")
    g.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: sqlite:///mlflow.db, "
                   "artifacts in mlruns/ beside it)")
    g.add_argument("--sampler", default="tpe", choices=list(SAMPLERS), help="Optuna sampler (default: tpe)")
    g.add_argument("--sampler-seed", type=int, help="seed of the sampler (default: random)")
    g.add_argument("--pruner", default="median", choices=list(PRUNERS), help="Optuna pruner (default: median)")
    g.add_argument("--metric", default="fid", choices=list(STUDY_METRICS), help="metric to minimise (default: fid)")
    g.add_argument("--workers", type=int, default=1, help="trials run at once, in separate processes (default: 1)")
    g.add_argument("--checkpoints", default="checkpoints", metavar="DIR",
                   help="working folder of trial checkpoints, DIR/STUDY/trial-NNN (default: checkpoints)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p, defaults=TrainConfig(**PRESETS["full"].config))
    return p.parse_args(argv)


def data_label(data: str) -> str:
    from gans.data import BUILTIN

    return data if data in BUILTIN else (Path(data).resolve().name or "data")


def data_id(data: str) -> str:
    """A data set's identity across runs: its name, or the absolute path of its folder."""
    from gans.data import BUILTIN

    return data if data in BUILTIN else str(Path(data).resolve())


def build_settings(args: argparse.Namespace) -> tuple[StudySettings, dict]:
    """The study's settings, and the searched space (field -> Param)."""
    if args.trials is not None and args.trials <= 0:
        raise UserError(f"--trials: must be > 0, got {args.trials}")
    if args.workers <= 0:
        raise UserError(f"--workers: must be > 0, got {args.workers}")
    preset = PRESETS[args.preset]
    overrides = config_overrides(args)
    model = overrides.get("model", preset.config.get("model", TrainConfig().model))
    space = default_space(model)
    space = apply_overrides(space, preset.space, f"--preset {preset.name}")
    if args.space:
        space = apply_overrides(space, load_space_file(args.space), f"--space {args.space}")
    for name in overrides:  # a flag on the command line fixes its field
        space.pop(name, None)
    searched, fixed_values = split_fixed(space)
    values = {**preset_config(preset, FAMILY[model]), **fixed_values, **overrides}
    metrics = [m.strip() for m in str(values.get("metrics", "")).split(",") if m.strip()]
    if args.metric not in metrics:
        metrics.append(args.metric)  # the study cannot run without its own metric
    values["metrics"] = ",".join(metrics)
    base = TrainConfig(**values)
    validate(searched, base, f"--space {args.space}" if args.space else "search space")

    epochs = searched["epochs"] if "epochs" in searched else None
    max_epochs = epochs.high if epochs is not None else base.epochs
    min_epochs = epochs.low if epochs is not None else base.epochs
    study_name = args.study_name or "-".join(
        ([preset.name] if preset.name != "full" else []) + [base.model, data_label(base.data)])
    from tracking.mlflow_log import resolve_tracking_uri

    settings = StudySettings(
        study_name=study_name,
        storage=resolve_storage(args.storage, args.workers),
        tracking_uri=resolve_tracking_uri(args.tracking_uri),
        metric=args.metric,
        sampler=args.sampler,
        pruner=args.pruner,
        trials=args.trials or preset.trials,
        ctx=TrialContext(study_name=study_name, base=base, space=searched, metric=args.metric,
                         checkpoints=str(Path(args.checkpoints).resolve())),
        sampler_seed=args.sampler_seed,
        pruner_startup=preset.pruner_startup,
        min_resource=min(base.eval_every or min_epochs, min_epochs),
        max_resource=max_epochs,
        workers=args.workers,
    )
    return settings, searched


def check_data(settings: StudySettings, searched: dict) -> None:
    """Load the images once up front: a missing data set or a batch larger than the data set is
    one error now rather than a failure in every trial."""
    base = settings.ctx.base
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n = len(train_data(base))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    p = searched.get("batch_size")
    largest = max(p.values_to_check()) if p is not None else base.batch_size
    if largest > n:
        flag = "--space batch_size" if p is not None else "--batch-size"
        raise UserError(f"{flag}: batch sizes up to {largest} exceed the {n} training images; narrow it")


def open_study(settings: StudySettings, preset: str, searched: dict):
    """Create the study or load it to continue; baselines are enqueued once, when it is created.
    Returns the study and lines saying which baselines were enqueued or skipped."""
    import optuna

    from study.engine import make_sampler

    base = settings.ctx.base
    data = data_id(base.data)
    storage = open_storage(settings.storage)
    study = optuna.create_study(study_name=settings.study_name, storage=storage, direction="minimize",
                                sampler=make_sampler(settings), pruner=PRUNERS[settings.pruner](settings),
                                load_if_exists=True)
    attrs = study.user_attrs
    if "metric" in attrs:
        for key, flag, now in (("metric", "--metric", settings.metric), ("model", "--model", base.model),
                               ("data", "--data", data)):
            if attrs.get(key) != now:
                raise UserError(f"{flag} {now}: study {settings.study_name!r} in {settings.storage} was made "
                                f"with {flag} {attrs.get(key)}; pass that or another --study-name")
    else:
        for key, value in (("metric", settings.metric), ("direction", "minimize"), ("model", base.model),
                           ("data", data), ("preset", preset),
                           ("space", {k: p.describe() for k, p in searched.items()})):
            study.set_user_attr(key, value)
    study.set_user_attr("tracking_uri", settings.tracking_uri)
    study.set_user_attr("checkpoints", settings.ctx.checkpoints)

    notes = []
    if "baselines" not in study.user_attrs:
        fit, skipped = fitting(base.model, base.data, searched)
        for b, params in fit:
            study.enqueue_trial(params, user_attrs={"baseline": b.name})
            notes.append(f"baseline {b.name} enqueued ({b.source})")
        notes += [f"baseline {line}: not enqueued" for line in skipped]
        study.set_user_attr("baselines", [b.name for b, _ in fit])
    return study, notes


def finished_count(study) -> int:
    """Trials that count towards `--trials`: complete, pruned, and failed with a recorded reason
    (diverged, out of memory). A trial failed by Ctrl-C or a crash has no reason and is run again."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(t.state != TrialState.FAIL or "fail_reason" in t.user_attrs for t in trials)


def commands(s: StudySettings) -> dict[str, str]:
    q = shlex.quote
    tracking = s.tracking_uri
    ui = (f"mlflow ui --backend-store-uri {q(tracking)}" if not tracking.startswith(("http://", "https://"))
          else f"open {tracking}")
    return {
        "open the MLflow UI": ui,
        "list the trials": f"optuna trials --study-name {q(s.study_name)} --storage {q(s.storage)}",
        "build the report": (f"python -m reports.build --study-name {q(s.study_name)} --storage {q(s.storage)} "
                             f"--tracking-uri {q(tracking)} --out {q('report-' + s.study_name)}"),
    }


def run_workers(settings: StudySettings, remaining: int, study, progress) -> None:
    """Run `remaining` trials in `settings.workers` processes; the parent only watches the storage."""
    import multiprocessing as mp

    from study.engine import worker_main

    k = min(settings.workers, remaining)
    shares = [remaining // k + (i < remaining % k) for i in range(k)]
    ctx = mp.get_context("spawn")  # fork after torch/sqlite initialisation is unsafe
    procs = [ctx.Process(target=worker_main, args=(settings, i, n), name=f"study-worker-{i}")
             for i, n in enumerate(shares)]
    for proc in procs:
        proc.start()
    try:
        while any(proc.is_alive() for proc in procs):
            time.sleep(2.0)
            for t in study.get_trials(deepcopy=False):
                progress.trial_finished(t)
    finally:
        for proc in procs:
            proc.join(timeout=60)
    for t in study.get_trials(deepcopy=False):
        progress.trial_finished(t)
    bad = [f"{p.name} exited with code {p.exitcode}" for p in procs if p.exitcode]
    if bad:
        raise RuntimeError("; ".join(bad))


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, searched = build_settings(args)
    quiet_libraries()
    check_data(settings, searched)
    study, notes = open_study(settings, args.preset, searched)

    from study.console import StudyProgress, print_summary
    from tracking import mlflow_log as ml

    client = ml.connect(settings.tracking_uri)
    experiment_id = ml.ensure_experiment(client, settings.study_name)
    parent = ml.study_run(client, experiment_id, settings.study_name, tags={
        "metric": settings.metric, "sampler": settings.sampler, "pruner": settings.pruner,
        "preset": args.preset, "model": settings.ctx.base.model, "data": settings.ctx.base.data,
        "trials": settings.trials, "optuna_storage": settings.storage,
    })
    client.log_dict(parent, {k: vars(p) for k, p in searched.items()}, "search_space.json")
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr("mlflow_parent_run_id", parent)
    settings = dataclasses.replace(settings, ctx=dataclasses.replace(
        settings.ctx, experiment_id=experiment_id, parent_run_id=parent))

    done = finished_count(study)
    remaining = settings.trials - done
    print(f"study {settings.study_name}: {done} finished trials, target {settings.trials}; "
          f"optuna storage {settings.storage}; mlflow {settings.tracking_uri}", file=sys.stderr)
    if settings.workers > 1 and settings.storage.startswith("sqlite"):
        print("warning: SQLite is not safe for parallel writers; with --workers prefer the default journal "
              "file or postgresql://", file=sys.stderr)
    for line in notes:
        print(line, file=sys.stderr)
    status = "FINISHED"
    try:
        if remaining > 0:
            with StudyProgress(settings.study_name, settings.trials, settings.metric,
                               enabled=not args.no_progress) as progress:
                progress.sync(study.get_trials(deepcopy=False))
                if settings.workers == 1:
                    run_trials(settings, remaining, progress=progress)
                else:
                    run_workers(settings, remaining, study, progress)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        client.set_terminated(parent, status)
    print_summary(study.get_trials(deepcopy=False), settings.metric, commands(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
