"""`python -m study.confirm`: rerun a study's top configurations with fresh seeds (Lucic et al. 2018
found GAN scores to vary substantially with the random seed alone, so one run per configuration can
rank noise).

Each rerun trains the trial's full config (read back from its MLflow run) with a seed no run of that
configuration has used, through `study.objective.train_and_log` without pruning, and is logged as an
MLflow run of the study tagged `role=confirm`, `trial_number=<source trial>` and `seed`. `--seeds N`
is the number of finished confirmation runs each configuration should hold: running the command
again continues where it stopped instead of piling up runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gans.cli import main_guard, mask_url
from gans.config import UserError

ROLE_CONFIRM = "confirm"
COUNTED = ("FINISHED", "FAILED")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m study.confirm", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--study-name", required=True, help="the study whose top trials are rerun")
    p.add_argument("--storage", metavar="URL", help="Optuna storage of the study (default: sqlite:///optuna.db)")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: the one the study recorded, else sqlite:///mlflow.db)")
    p.add_argument("--top", type=int, default=3, help="how many of the best completed trials to rerun (default: 3)")
    p.add_argument("--seeds", type=int, default=5,
                   help="finished confirmation runs each configuration should hold (default: 5)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="working folder of the runs' best checkpoints (default: the study's)")
    p.add_argument("--device", help="override the trials' --device (auto | cpu | cuda | cuda:N)")
    return p.parse_args(argv)


def fresh_seeds(used: set[int], n: int) -> list[int]:
    """The `n` smallest non-negative seeds not in `used`."""
    out, s = [], 0
    while len(out) < n:
        if s not in used:
            out.append(s)
        s += 1
    return out


def top_trials(study, k: int):
    """The `k` best completed trials, best first."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction.name == "MAXIMIZE"
    return sorted(done, key=lambda t: (-t.value if reverse else t.value, t.number))[:k]


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.top <= 0:
        raise UserError(f"--top: must be > 0, got {args.top}")
    if args.seeds <= 0:
        raise UserError(f"--seeds: must be > 0, got {args.seeds}")

    import pandas as pd

    from study.existing import load_existing_study
    from study.objective import trial_dir, trial_name, train_and_log
    from tracking import mlflow_log as ml
    from tracking import query

    study, storage = load_existing_study(args.study_name, args.storage)
    attrs = study.user_attrs
    metric = attrs.get("metric", "fid")
    client = query.open_client(args.tracking_uri or attrs.get("tracking_uri") or ml.DEFAULT_TRACKING_URI)
    experiment_id = query.study_experiment_id(client, args.study_name, attrs.get("mlflow_experiment_id"))
    if experiment_id is None:
        raise UserError(f"--tracking-uri {mask_url(client.tracking_uri)}: no MLflow experiment named {args.study_name!r}")
    top = top_trials(study, args.top)
    if not top:
        raise UserError(f"--study-name {args.study_name}: the study has no completed trial to confirm")

    runs = query.study_runs(client, experiment_id, args.study_name)
    role = runs.get(f"tag.{ml.ROLE}", pd.Series(index=runs.index, dtype=object))
    number = runs.get(f"tag.{ml.TRIAL_NUMBER}", pd.Series(index=runs.index, dtype="Int64"))
    parent = attrs.get("mlflow_parent_run_id")
    if parent is not None and parent not in set(runs["run_id"]):
        parent = None  # recorded in another tracking store: log the runs unnested
    checkpoints = Path(args.checkpoints or attrs.get("checkpoints") or "checkpoints").resolve()

    plan = []
    for t in top:
        source = runs[(role == "trial") & (number == t.number)]
        if source.empty:
            raise UserError(f"--tracking-uri {mask_url(client.tracking_uri)}: trial {t.number} of {args.study_name!r} has "
                            "no MLflow run to read its config from")
        params = {k[len("param."):]: v for k, v in source.iloc[-1].items()
                  if k.startswith("param.") and isinstance(v, str)}
        config = query.config_from_params(params)
        if args.device:
            config = config.replace(device=args.device)
        mine = runs[(role == ROLE_CONFIRM) & (number == t.number)]
        used = {config.seed} | {int(s) for s in mine.get("param.seed", pd.Series(dtype=object)).dropna()}
        have = int(mine["status"].isin(COUNTED).sum()) if not mine.empty else 0
        for seed in fresh_seeds(used, max(0, args.seeds - have)):
            plan.append((t, config.replace(seed=seed)))
        print(f"trial {t.number} ({metric} {t.value:.4g}): {have} confirmation runs, "
              f"{max(0, args.seeds - have)} to go", file=sys.stderr)

    for i, (t, config) in enumerate(plan, 1):
        t0 = time.perf_counter()
        logger = ml.RunLogger(client, experiment_id, f"confirm-{trial_name(t.number)}-seed-{config.seed}",
                              parent_run_id=parent,
                              tags={ml.ROLE: ROLE_CONFIRM, ml.STUDY_NAME: args.study_name,
                                    ml.TRIAL_NUMBER: t.number, ml.BASELINE: t.user_attrs.get("baseline") or "",
                                    "seed": config.seed, "metric": metric})
        ckpt = trial_dir(checkpoints, args.study_name, t.number).with_name(
            f"confirm-{trial_name(t.number)}-seed-{config.seed}") / "best.pt"
        outcome = train_and_log(config, metric=metric, logger=logger, checkpoint=ckpt)
        took = time.perf_counter() - t0
        if outcome.state == "complete":
            print(f"[{i}/{len(plan)}] trial {t.number} seed {config.seed}: final {metric} {outcome.value:.4g}, "
                  f"best {outcome.best_value:.4g} at epoch {outcome.best_epoch} ({took:.0f} s)", file=sys.stderr)
        else:
            print(f"[{i}/{len(plan)}] trial {t.number} seed {config.seed}: {outcome.state}: {outcome.reason} "
                  f"({took:.0f} s)", file=sys.stderr)
    print(f"confirmation runs are in MLflow experiment {args.study_name!r} ({mask_url(client.tracking_uri)}); "
          f"report: python -m reports.build --study-name {args.study_name} --storage {mask_url(storage)} "
          f"--tracking-uri {mask_url(client.tracking_uri)} --out report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
