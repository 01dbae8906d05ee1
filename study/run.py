"""`python -m study.run`: the Optuna study. Searches the training config, prunes on FID (or KID), and
logs every trial as a nested MLflow run under one parent run per study.

Running the same command again continues the study until it holds `--trials` finished trials
(complete, pruned, or failed with a reason such as a NaN loss); a trial stopped by Ctrl-C, SIGTERM or
a killed process is retried from its last checkpoint. The same command on several machines, pointed
at one storage, shares the trials out. Stores default to `sqlite:///optuna.db` and
`sqlite:///mlflow.db` in the working folder (with `--workers K > 1`, Optuna's default becomes the
journal file `optuna.journal`, which is safe for parallel processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import signal
import sys
import time
import warnings
from pathlib import Path

from gans.cli import Parser, add_config_flags, config_overrides, main_guard
from gans.config import TrainConfig, follow_data
from gans.data import BUILTIN, load_images
from gans.errors import UserError, first_line
from gans.extractors import auto_extractor
from gans.metric_keys import STUDY_METRICS
from gans.metrics import build_evaluator
from gans.trainer import resolve_device, use_worker_threads, worker_threads
from reports.build import add_band_arg, build, default_report_dir
from study import estimate as E
from study import folklore
from study.baselines import fitting
from study.confirm import MAX_MEMBERS, run_horizon
from study.console import StudyProgress, print_summary
from study.engine import (PRUNERS, SAMPLERS, Retry, StudySettings, fail_dead_trials, make_sampler, open_storage,
                          run_trials, stop_note, stop_on_signals, worker_main)
from study.objective import TrialContext, takes_a_slot, train_data
from study.pinned_extractor import device_default, fit_metrics, pin
from study.presets import PRESETS
from study.sitting import import_sitting
from study.space import apply_overrides, default_space, load_space_file, split_fixed, validate
from tracking import mlflow_log as ml
from tracking.mlflow_log import resolve_tracking_uri, ui_url
from tracking.stores import quiet_libraries, resolve_storage
from tracking.urls import mask_text, mask_url

# Flags that fix a field of every folklore configuration (the configurations' own values otherwise).
FOLKLORE_FIXABLE = ("nz", "ngf", "ndf", "lr_g", "lr_d", "beta1", "real_label", "fake_label", "augment")
# Below this many photos in a folder, the folklore experiment's held-out reference is small: it says so.
FOLKLORE_FEW = 1500
# Median pruning waits until this fraction of the longest budget: in a 12-trial MLP study here it
# stopped 5 trials at epoch 25, their first report, where FID says little about epoch 500.
PRUNE_WARMUP = 0.25


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(
        prog="python -m study.run", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nA training flag fixes its field for every trial; the "
        "others are searched or come from the preset (defaults shown: --preset full). Without --preset a "
        "machine with a GPU runs the full study and one without runs the cpu preset.")
    g = p.add_argument_group("study")
    g.add_argument("--trials", type=int, help="finished trials the study should hold (default: the preset's: "
                   + ", ".join(f"{k} {v.trials}" for k, v in PRESETS.items()) + ")")
    g.add_argument("--preset", choices=list(PRESETS),
                   help="; ".join(f"{k}: {v.description}" for k, v in PRESETS.items())
                   + " (default: full with a GPU, cpu without)")
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
    g.add_argument("--workers", type=int, help="trials (and horizon runs) trained at once, in separate processes "
                   "(default: the preset's: " + ", ".join(f"{k} {v.workers}" for k, v in PRESETS.items()) + ")")
    g.add_argument("--prune-warmup", type=float, default=PRUNE_WARMUP, metavar="FRACTION",
                   help="no trial is pruned before this fraction of the longest epoch budget (default: "
                        f"{PRUNE_WARMUP}): a GAN's early FID says little about its FID hundreds of epochs later")
    g.add_argument("--checkpoints", default="checkpoints", metavar="DIR",
                   help="working folder of trial checkpoints, DIR/STUDY/trial-NNN (default: checkpoints)")
    g.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="also save a resumable checkpoint every N epochs (default: 0, at evaluated epochs only)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars: one line per trial and per stage")
    g.add_argument("--no-system-metrics", action="store_true",
                   help="do not log CPU, memory and GPU use of the trial runs (MLflow's system/ metrics, sampled "
                        "every $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds, default 10)")
    h = p.add_argument_group("after the search: horizon runs and the report")
    h.add_argument("--confirm-top", type=int, metavar="K",
                   help="best configurations retrained to the horizon, with every fitting seed baseline "
                        "(default: the preset's; 0 skips the horizon runs)")
    h.add_argument("--confirm-seeds", type=int, metavar="N", help="fresh seeds per horizon configuration "
                   "(default: the preset's; 0 skips the horizon runs)")
    h.add_argument("--confirm-random", type=int, metavar="R",
                   help="random configurations of the search space retrained to the horizon beside them, as "
                        "unselected controls (default: the preset's; python -m study.confirm --random)")
    h.add_argument("--confirm-batch-seeds", type=int, metavar="K",
                   help="seeds of one configuration trained together as one vectorized model in the horizon runs "
                        "(default: all of them; 1 = one run at a time; python -m study.confirm --batch-seeds)")
    h.add_argument("--horizon", type=int, metavar="H", help="epochs of every horizon run (default: the preset's "
                   "1000, raised to the longest searched budget)")
    h.add_argument("--report", metavar="DIR", help="folder of the report built at the end (default: report-STUDY)")
    h.add_argument("--no-report", action="store_true", help="build no report at the end")
    add_band_arg(h)
    add_config_flags(p, defaults=TrainConfig(**PRESETS["full"].config))
    args = p.parse_args(argv)
    args.machine_preset = args.preset is None  # the machine picks it, and main says so
    if args.preset is None:
        args.preset = machine_preset(args.device)
    return args


def data_label(data: str) -> str:
    return data if data in BUILTIN else (Path(data).resolve().name or "data")


def data_id(data: str) -> str:
    """A data set's identity across runs: its name, or the absolute path of its folder."""
    return data if data in BUILTIN else str(Path(data).resolve())


def build_settings(args: argparse.Namespace) -> tuple[StudySettings, dict]:
    """The study's settings, and the searched space (field -> Param)."""
    preset = PRESETS[args.preset]
    trials, workers = _check_counts(args, preset)
    searched, base = _space_and_base(args, preset)
    epochs = searched["epochs"] if "epochs" in searched else None
    max_epochs = epochs.high if epochs is not None else base.epochs
    min_epochs = epochs.low if epochs is not None else base.epochs
    study_name = args.study_name or "-".join(
        ([preset.name] if preset.name != "full" else []) + [base.model, data_label(base.data)])

    settings = StudySettings(
        study_name=study_name,
        storage=resolve_storage(args.storage, workers),
        tracking_uri=resolve_tracking_uri(args.tracking_uri),
        metric=args.metric,
        sampler=args.sampler,
        pruner=args.pruner,
        trials=trials,
        ctx=TrialContext(study_name=study_name, base=base, space=searched, metric=args.metric,
                         checkpoints=str(Path(args.checkpoints).resolve()), checkpoint_every=args.checkpoint_every,
                         memory_capped=workers > 1 and base.device != "cpu",
                         system_metrics=not args.no_system_metrics),
        sampler_seed=args.sampler_seed,
        pruner_startup=preset.pruner_startup,
        min_resource=min(base.eval_every or min_epochs, min_epochs),
        max_resource=max_epochs,
        workers=workers,
        prune_warmup=int(args.prune_warmup * max_epochs),
        horizon=args.horizon or max(preset.horizon, max_epochs),
        horizon_eval_every=preset.horizon_eval_every,
    )
    return settings, searched


def _check_counts(args: argparse.Namespace, preset) -> tuple[int, int]:
    """The trials and workers the study runs, after refusing counts and fractions out of range."""
    if args.trials is not None and args.trials <= 0:
        raise UserError(f"--trials: must be > 0, got {args.trials}")
    trials = args.trials or preset.trials
    workers = args.workers if args.workers is not None else min(preset.workers, trials)
    if workers <= 0:
        raise UserError(f"--workers: must be > 0, got {workers}")
    if args.checkpoint_every < 0:
        raise UserError(f"--checkpoint-every: must be >= 0, got {args.checkpoint_every}")
    if not 0 <= args.prune_warmup <= 1:
        raise UserError(f"--prune-warmup: a fraction in [0, 1], got {args.prune_warmup}")
    if args.confirm_batch_seeds is not None and args.confirm_batch_seeds < 1:
        raise UserError(f"--confirm-batch-seeds: must be >= 1, got {args.confirm_batch_seeds}")
    for name in ("confirm_top", "confirm_seeds", "confirm_random", "horizon"):
        if getattr(args, name) is not None and getattr(args, name) < (1 if name == "horizon" else 0):
            raise UserError(f"--{name.replace('_', '-')}: must be >= {1 if name == 'horizon' else 0}, "
                            f"got {getattr(args, name)}")
    if workers > trials:
        raise UserError(f"--workers {workers}: more workers than the {trials} trials (--trials)")
    return trials, workers


def _space_and_base(args: argparse.Namespace, preset) -> tuple[dict, TrainConfig]:
    """The searched space (the model's default, the preset's and `--space` changes, less the fields a flag
    fixes) and the base config of the fixed values, its metrics including the study's."""
    overrides = config_overrides(args)
    model = follow_data({**preset.config, **overrides})["model"]
    space = default_space(model)
    space = apply_overrides(space, preset.space, f"--preset {preset.name}")
    if args.space:
        space = apply_overrides(space, load_space_file(args.space), f"--space {args.space}")
    for name in overrides:  # a flag on the command line fixes its field
        space.pop(name, None)
    searched, fixed_values = split_fixed(space)
    values = follow_data({**preset.config, **fixed_values, **overrides})
    metrics = [m.strip() for m in str(values.get("metrics", "")).split(",") if m.strip()]
    if args.metric not in metrics:
        metrics.append(args.metric)  # the study cannot run without its own metric
    values["metrics"] = ",".join(metrics)
    base = TrainConfig(**values)
    validate(searched, base, f"--space {args.space}" if args.space else "search space")
    return searched, base


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
        fits = 1 << max(0, (n // 2).bit_length() - 1)  # a power of two, at most half the images
        if p is None:
            raise UserError(f"--batch-size {largest}: more than the {n} training images; pass --batch-size {fits}")
        raise UserError(f"--batch-size: the search space tries batch sizes up to {largest}, more than the {n} "
                        f"training images; pass --batch-size {fits} (or narrow batch_size in a --space file)")


def open_study(settings: StudySettings, preset: str, searched: dict, *, retry: Retry | None = None,
               wait_s: float = 60.0):
    """Create the study, or load it to continue (checking it was made for the same metric, model and
    data). Its creator enqueues the baselines; `top_up` then fills the queue to `--trials`. `retry`
    handles trials its storage's heartbeat finds dead. Returns the study and lines saying which
    baselines were enqueued or skipped."""
    import optuna
    from optuna.exceptions import DuplicatedStudyError

    base = settings.ctx.base
    storage = open_storage(settings.storage, on_stale=retry)
    where = f"study {settings.study_name!r} in {mask_url(settings.storage)}"
    sampler, pruner = make_sampler(settings), PRUNERS[settings.pruner](settings)
    notes: list[str] = []
    try:
        study = optuna.create_study(study_name=settings.study_name, storage=storage, direction="minimize",
                                    sampler=sampler, pruner=pruner)
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=settings.study_name, storage=storage, sampler=sampler, pruner=pruner)
        if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
            raise UserError(f"--study-name {settings.study_name}: {where} was made to "
                            f"{'/'.join(d.name.lower() for d in study.directions)}, not to minimise "
                            f"{settings.metric}; choose another --study-name") from None
        # Another command (another machine) may be setting it up right now: wait for it to finish
        # ("target" is its last step); a study made by other means shows no sign of it and is adopted.
        start = time.monotonic()
        while "target" not in study.user_attrs and time.monotonic() - start < (
                wait_s if "metric" in study.user_attrs else min(wait_s, 3.0)):
            time.sleep(0.5)
        attrs = study.user_attrs
        if "metric" in attrs and "target" not in attrs:
            raise UserError(f"--study-name {settings.study_name}: {where} is still being set up after {wait_s:.0f} s "
                            "(its creator died?); choose another --study-name") from None
        for key, flag, now in (("metric", "--metric", settings.metric), ("model", "--model", base.model),
                               ("data", "--data", data_id(base.data))):
            if key in attrs and attrs[key] != now:
                raise UserError(f"{flag} {now}: {where} was made with {flag} {attrs[key]}; "
                                "pass that or another --study-name")
        if "metric" not in attrs:
            notes = adopt(study, settings, preset, searched)
    else:
        notes = adopt(study, settings, preset, searched)
    study.set_user_attr("tracking_uri", mask_url(settings.tracking_uri))
    study.set_user_attr("checkpoints", settings.ctx.checkpoints)
    return study, notes


def adopt(study, settings: StudySettings, preset: str, searched: dict) -> list[str]:
    """Set up a study this tool has not run yet: its attributes, the fitting baselines first in the
    queue, then empty trials up to `--trials` (the last step, marked by the "target" attribute)."""
    base = settings.ctx.base
    for key, value in (("metric", settings.metric), ("direction", "minimize"), ("model", base.model),
                       ("data", data_id(base.data)), ("preset", preset), ("horizon", settings.horizon),
                       ("horizon_eval_every", settings.horizon_eval_every),
                       ("space", {k: p.describe() for k, p in searched.items()})):
        study.set_user_attr(key, value)
    fit, skipped = fitting(base.model, base.data, searched)
    fit = fit[:settings.trials]
    notes = []
    for b, params in fit:
        study.enqueue_trial(params, user_attrs={"baseline": b.name})
        notes.append(f"baseline {b.name} enqueued ({b.source})")
    notes += [f"baseline {line}: not enqueued" for line in skipped]
    study.set_user_attr("baselines", [b.name for b, _ in fit])
    top_up(study, settings.trials)
    return notes


def slot_counts(study) -> dict[str, int]:
    """How the study's slots stand: finished (see `finished_count`), running and waiting trials."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return {"finished": finished_count(study),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
            "waiting": sum(t.state == TrialState.WAITING for t in trials)}


def top_up(study, target: int) -> int:
    """Enqueue empty trials (the sampler fills them in) until finished + running + waiting trials
    make `target`; records the target. Returns how many were enqueued."""
    need = target - sum(slot_counts(study).values())
    for _ in range(max(0, need)):
        study.enqueue_trial({})
    study.set_user_attr("target", max(target, int(study.user_attrs.get("target", 0))))
    return max(0, need)


def finished_count(study) -> int:
    """Trials that count towards `--trials` (`study.objective.takes_a_slot`)."""
    return sum(takes_a_slot(t) for t in study.get_trials(deepcopy=False))


def commands(s: StudySettings) -> dict[str, str]:
    """Follow-up commands, passwords masked (the user types theirs back in)."""
    q = shlex.quote
    tracking, storage = mask_url(s.tracking_uri), mask_url(s.storage)

    exp = s.ctx.experiment_id or "ID"
    # The UI command and the URL on lines of their own: each is pasted whole, into a shell or a browser.
    if tracking.startswith(("http://", "https://")):  # a tracking server is its own UI
        ui = {"open the trials in the MLflow UI": ui_url(tracking, exp, s.metric)}
    else:
        ui = {"start the MLflow UI": f"mlflow ui --backend-store-uri {q(tracking)}",
              "then open the trials in it": ui_url("http://127.0.0.1:5000", exp, s.metric)}
    return {
        **ui,
        "list the trials": f"optuna trials --study-name {q(s.study_name)} --storage {q(storage)}",
        "build the report": (f"python -m reports.build --study-name {q(s.study_name)} --storage {q(storage)} "
                             f"--tracking-uri {q(tracking)}"),
    }


def run_workers(settings: StudySettings, waiting: int, study, progress) -> None:
    """Run the waiting trials in up to `settings.workers` processes; the parent only watches the
    storage, and passes Ctrl-C/SIGTERM on so that every worker marks its trial."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("spawn")  # fork after torch/sqlite initialisation is unsafe
    errors = ctx.Queue()
    procs = [ctx.Process(target=worker_main, args=(settings, i, errors), name=f"study-worker-{i}")
             for i in range(min(settings.workers, waiting))]
    for proc in procs:
        proc.start()
    try:
        while any(proc.is_alive() for proc in procs):
            next(proc for proc in procs if proc.is_alive()).join(timeout=2.0)  # back at once when one ends
            for t in study.get_trials(deepcopy=False):
                progress.trial_finished(t)
    except KeyboardInterrupt:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker fails its trial cleanly and enqueues the retry
        raise
    finally:
        for proc in procs:
            proc.join(timeout=120)
    for t in study.get_trials(deepcopy=False):
        progress.trial_finished(t)
    try:
        raise UserError(errors.get(timeout=1.0))
    except queue.Empty:
        pass
    bad = [f"{p.name} exited with code {p.exitcode}" for p in procs if p.exitcode]
    if bad:
        raise RuntimeError("; ".join(bad))


def connect_tracking(settings: StudySettings):
    """(MLflow client, the study's experiment id), or one user error naming `--tracking-uri` when the
    store cannot be reached or written, before anything is written to the Optuna storage."""
    try:
        client = ml.connect(settings.tracking_uri)
        return client, ml.ensure_experiment(client, settings.study_name)
    except Exception as e:  # OSError, MlflowException, sqlalchemy and requests errors
        raise UserError(mask_text(f"--tracking-uri {settings.tracking_uri}: cannot write there "
                                  f"({first_line(e) or type(e).__name__})",
                                  settings.tracking_uri)) from None


def machine_preset(device: str | None) -> str:
    """The study this machine can answer: `full` where training runs on a GPU, else `cpu`."""
    return "full" if resolve_device(device or "auto").type != "cpu" else "cpu"


@main_guard
def main(argv: list[str] | None = None) -> int:
    """Run the study the command line asks for: its trials, then its horizon runs and its report."""
    command = shlex.join(["python", "-m", "study.run", *(sys.argv[1:] if argv is None else argv)])
    args = parse_args(argv)
    if args.machine_preset and args.preset == "cpu":  # the user did not ask for it: say so
        print("no GPU here: running the `cpu` preset, the study that answers on a CPU (python -m study.run --help "
              "says what it holds); `--preset full` runs the whole study", file=sys.stderr, flush=True)
    if args.preset == "folklore":
        return run_folklore(args)
    settings, searched = build_settings(args)
    quiet_libraries()
    check_data(settings, searched)
    client, experiment_id = connect_tracking(settings)
    retry = Retry(settings.ctx, client)
    study, notes = open_study(settings, args.preset, searched, retry=retry)
    parent = start_parent_run(client, experiment_id, settings, args.preset, searched, study)
    base = pinned_base(args, settings, study, client, parent, notes)
    settings = dataclasses.replace(settings, ctx=dataclasses.replace(
        settings.ctx, experiment_id=experiment_id, parent_run_id=parent, base=base))
    counts = catch_up(study, settings, retry, notes)
    top, seeds, randoms = horizon_counts(args)
    if counts["waiting"] > 0:
        announce_estimate(settings, searched,
                          len(study.user_attrs.get("baselines", [])) + top + randoms if top and seeds else 0,
                          seeds, counts["waiting"], progress=not args.no_progress,
                          together=min(seeds, args.confirm_batch_seeds or seeds, MAX_MEMBERS))
    run_waiting(settings, study, counts["waiting"], client, parent, progress=not args.no_progress,
                command=command)
    print_summary(study.get_trials(deepcopy=False), settings.metric, commands(settings))
    if top > 0 and seeds > 0:
        stage(f"horizon runs: top {top} configurations, the seed baselines and {randoms} random ones, "
              f"{seeds} seeds each, "
              f"{settings.horizon} epochs")
        run_horizon(settings.study_name, settings.storage, settings.tracking_uri, top=top, seeds=seeds,
                    epochs=settings.horizon, eval_every=settings.horizon_eval_every, workers=settings.workers,
                    checkpoints=settings.ctx.checkpoints, batch_seeds=args.confirm_batch_seeds, randoms=randoms,
                    log=lambda line: print(line, file=sys.stderr, flush=True))
    if not args.no_report:
        out = Path(args.report or default_report_dir(settings.study_name))
        stage(f"report: {out}")
        headline = build(settings.study_name, settings.storage, settings.tracking_uri, out, band=args.band)
        print(f"\n{headline}\nreport: {out / 'report.md'}")
    return 0


def start_parent_run(client, experiment_id: str, settings: StudySettings, preset: str, searched: dict, study) -> str:
    """The study's parent MLflow run (tags, search space), recorded on the study; its id."""
    parent = ml.study_run(client, experiment_id, settings.study_name, tags={
        "metric": settings.metric, "sampler": settings.sampler, "pruner": settings.pruner,
        "preset": preset, "model": settings.ctx.base.model, "data": settings.ctx.base.data,
        "trials": settings.trials, "optuna_storage": mask_url(settings.storage),
    })
    client.log_dict(parent, {k: vars(p) for k, p in searched.items()}, "search_space.json")
    study.set_user_attr("mlflow_experiment_id", experiment_id)
    study.set_user_attr("mlflow_parent_run_id", parent)
    return parent


def pinned_base(args: argparse.Namespace, settings: StudySettings, study, client, parent: str,
                notes: list[str]) -> TrainConfig:
    """The base config with its extractor and metrics fitted to the machine and its extractor pinned for
    the study (notes on what changed appended to `notes`)."""
    overrides = config_overrides(args)
    base = settings.ctx.base
    if "extractor" not in overrides:
        base, more = device_default(base, by_device=args.preset == "full")
        notes += more
    base, more = fit_metrics(base, explicit="metrics" in overrides, required=settings.metric)
    notes += more
    # One extractor for every trial, worker and machine, resolved (trained) before any of them starts.
    return pin(study, client, parent, base, follow="extractor" not in overrides)


def catch_up(study, settings: StudySettings, retry: Retry, notes: list[str]) -> dict[str, int]:
    """Fail dead trials, queue the trials up to `--trials`, and print where the study stands with the
    notes; its slot counts."""
    for number in fail_dead_trials(study, retry):
        notes.append(f"trial {number}: its worker died; failed, and retried from its last checkpoint")
    top_up(study, settings.trials)
    target = int(study.user_attrs.get("target", settings.trials))
    if target > settings.trials:
        notes.append(f"warning: --trials {settings.trials} is below the study's target of {target} (set earlier); "
                     "its queued trials still run")
    counts = slot_counts(study)
    print(f"study {settings.study_name}: {counts['finished']} finished trials, target {settings.trials}; "
          f"optuna storage {mask_url(settings.storage)}; mlflow {mask_url(settings.tracking_uri)}", file=sys.stderr)
    if settings.workers > 1 and settings.storage.startswith("sqlite"):
        print("warning: SQLite is not safe for parallel writers; with --workers prefer the default journal "
              "file or postgresql://", file=sys.stderr)
    for line in notes:
        print(line, file=sys.stderr)
    return counts


def horizon_counts(args: argparse.Namespace) -> tuple[int, int, int]:
    """Top configurations, seeds and random configurations of the horizon runs (flags, else the preset)."""
    preset = PRESETS[args.preset]
    top = preset.confirm_top if args.confirm_top is None else args.confirm_top
    seeds = preset.confirm_seeds if args.confirm_seeds is None else args.confirm_seeds
    randoms = preset.confirm_random if args.confirm_random is None else args.confirm_random
    return top, seeds, randoms


def run_waiting(settings: StudySettings, study, waiting: int, client, parent: str, *, progress: bool,
                command: str) -> None:
    """Run the `waiting` trials (in this process or in workers), then end the parent run with how they
    ended; Ctrl-C says how to resume."""
    status = "FINISHED"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stop_on_signals()
    try:
        if waiting > 0:
            with StudyProgress(settings.study_name, settings.trials, settings.metric, enabled=progress) as shown:
                shown.sync(study.get_trials(deepcopy=False))
                if settings.workers == 1:
                    run_trials(settings, progress=shown)
                else:
                    run_workers(settings, waiting, study, shown)
    except KeyboardInterrupt:
        status = "KILLED"
        print(f"stopped; to resume, run the same command again ({stop_note(study)}):\n"
              f"  {mask_text(command, settings.storage, settings.tracking_uri)}", file=sys.stderr)
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        client.set_terminated(parent, status)


def folklore_base(args: argparse.Namespace) -> TrainConfig:
    """The folklore experiment's shared config: `study.folklore`'s, with the user's flags."""
    overrides = config_overrides(args)
    if "data" not in overrides:
        raise UserError("--preset folklore: name the photo folder with --data PATH, e.g. --data ../shared/data/pets/cat")
    device = resolve_device(overrides.get("device", "auto"))
    overrides["epochs"] = args.horizon or folklore.HORIZON
    base = folklore.base_config(**{"extractor": "inception" if device.type == "cuda" else "domain", **overrides})
    if "extractor" not in overrides:  # a folder without labelled data gets Inception, on any device
        base, notes = auto_extractor(base, device)
        for line in notes:
            print(line, file=sys.stderr)
    if base.extractor != "inception":
        print("warning: on this machine the metrics use the domain extractor, not Inception FID: not the folklore's "
              "measurement (run the experiment on a GPU, or pass --extractor inception)", file=sys.stderr)
    return base


def folklore_split(base: TrainConfig) -> None:
    """Say how the folder was split into training and held-out photos (a UserError when it cannot be)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        n_train = len(train_data(base))
        n_held = len(load_images(base.data, image_size=base.image_size, limit=base.limit, split="heldout"))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if n_train < base.limit:
        raise UserError(f"--limit {base.limit}: {base.data} has only {n_train} readable photos")
    note = "" if n_train + n_held >= FOLKLORE_FEW else f" (fewer than {FOLKLORE_FEW} photos: a small reference)"
    print(f"{base.data}: the first {n_train} photos train, the other {n_held} are the held-out reference{note}",
          file=sys.stderr)


def folklore_plan(groups, seeds: int, base: TrainConfig) -> float:
    """Print the planned cost (runs x epochs x photos) and, from a short measurement at the largest
    group's size, its duration; returns the predicted seconds."""
    runs = sum(len(g) for g in groups) * seeds
    photos = len(train_data(base))
    steps = photos // base.batch_size
    images = runs * base.epochs * steps * base.batch_size
    # Every group is costed at the largest group's measured step: an upper bound for the smaller ones.
    costs = E.measure(base, worker_threads(1), members=max(len(g) for g in groups) * seeds)
    total = sum(folklore.group_cost(g, seeds, costs.epoch_s / steps, costs.eval_s, steps) for g in groups)
    print(f"plan: {runs} runs ({len(groups)} groups trained together) x {base.epochs} epochs x {photos} "
          f"photos = {images:,} image-iterations; about {E.hours(total)} on {costs.device} "
          f"({costs.epoch_s:.2g} s per epoch of the largest group, {costs.eval_s:.2g} s per evaluation, measured)",
          file=sys.stderr, flush=True)
    return total


def run_folklore(args: argparse.Namespace) -> int:
    """`--preset folklore`: no search; every configuration of `study.folklore` with `--confirm-seeds`
    seeds to `--horizon` epochs, trained into run folders, packed as a GPU sitting packs them,
    imported into the study (`study.sitting`) and reported."""
    import tarfile

    base = folklore_base(args)
    seeds = args.confirm_seeds or PRESETS["folklore"].confirm_seeds
    name = args.study_name or f"folklore-{data_label(base.data)}"
    folklore_split(base)
    use_worker_threads(1)
    shapes = {k: v for k, v in config_overrides(args).items() if k in FOLKLORE_FIXABLE}
    randoms = PRESETS["folklore"].confirm_random if args.confirm_random is None else args.confirm_random
    groups = folklore.together(folklore.configurations(base, randoms, fixed=shapes))
    folklore_plan(groups, seeds, base)
    evaluator = build_evaluator(base)
    work = Path(args.checkpoints) / name
    runs_dir = work / "runs"
    for group in groups:
        stage(f"{', '.join(c.name for c in group)}: {len(group) * seeds} runs trained together")
        folklore.train_group(group, seeds, train_data(base), evaluator, runs_dir,
                             log=lambda line: print(line, file=sys.stderr, flush=True))
    archive = work / "runs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(runs_dir, arcname="runs")
    stage(f"import: {archive} into study {name}")
    import_sitting([archive], name, args.storage, args.tracking_uri,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    if not args.no_report:
        out = Path(args.report or default_report_dir(name))
        stage(f"report: {out}")
        headline = build(name, args.storage, args.tracking_uri, out, band=args.band)
        print(f"\n{headline}\nreport: {out / 'report.md'}")
    return 0


def stage(text: str) -> None:
    print(f"== {text}", file=sys.stderr, flush=True)


def announce_estimate(settings: StudySettings, searched: dict, horizon_configs: int, seeds: int, trials: int,
                      progress: bool = True, together: int = 1) -> None:
    """Measure this device on a mid-space configuration and print how long the study will take; on
    a machine without a GPU, a study beyond `CPU_WARN_HOURS` names the `cpu` preset (and goes on).
    The horizon runs are costed as groups of `together` seeds trained as one model (measured so)."""
    from rich.console import Console

    threads = worker_threads(settings.workers)
    config = E.middle(searched, settings.ctx.base)
    console = Console(stderr=True, highlight=False)
    what = "measuring this device (a dozen steps, one evaluation, the domain classifier)"
    together = max(1, together)

    def measure():
        single = E.measure(config, threads)
        return single, (E.measure(config, threads, members=together) if together > 1 and horizon_configs else single)

    if console.is_terminal and progress:
        with console.status(what):  # a spinner: the set-up can take half a minute
            costs, group = measure()
    else:
        print(what, file=sys.stderr, flush=True)
        costs, group = measure()
    epochs = searched.get("epochs")
    groups = horizon_configs * math.ceil(seeds / together) if seeds else 0
    plan = E.Plan(trials=trials, mean_budget=(epochs.low + epochs.high) / 2 if epochs else config.epochs,
                  eval_every=config.eval_every, horizon_runs=groups, horizon=settings.horizon,
                  horizon_eval_every=settings.horizon_eval_every, workers=settings.workers)
    search, _ = E.seconds(plan, costs)
    # A group trains its seeds as one model and evaluates each of them.
    _, horizon = E.seconds(plan, E.Costs(group.epoch_s, costs.eval_s * together, costs.device))
    print(f"estimate on {costs.device} ({costs.epoch_s:.2g} s per epoch, {costs.eval_s:.2g} s per evaluation, "
          f"{'measured earlier on this machine' if costs.cached else 'measured'}): search up to "
          f"{E.hours(search)} ({trials} trials, none pruned), horizon runs "
          f"{E.hours(horizon)} ({horizon_configs * seeds} runs of {settings.horizon} epochs"
          + (f", {together} seeds trained together" if together > 1 else "") + "); "
          f"about {E.hours(search + horizon)} in all on {settings.workers} worker(s)", file=sys.stderr, flush=True)
    if costs.device == "cpu" and (search + horizon) / 3600 > E.CPU_WARN_HOURS:
        print(f"warning: without a GPU this study takes about {E.hours(search + horizon)}; `--preset cpu` answers "
              "the epochs question on 2 cores in about an hour (MLP GAN, 1,000 MNIST digits); going on",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
