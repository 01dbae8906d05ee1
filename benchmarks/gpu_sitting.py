"""`python -m benchmarks.gpu_sitting`: the folklore's experiment in one short GPU sitting.

A lent GPU comes for minutes (DEVELOPERS.md: 15 of device time, 10 per command, machine start
included), with torch but without optuna or mlflow. This script needs only torch, torchvision and
torch-fidelity, and does, within `--budget` seconds of its own start:

1. checks the device in seconds;
2. measures the training step (~`--measure` s): one run eager, members together at K = 5, 10, 15
   eager and through a whole-step CUDA graph, and the seed notebooks' loop (`benchmarks/seed_loop.py`)
   for the ratio; and one evaluation;
3. trains the experiment's configurations (`study.folklore`) in order, whole configurations only:
   each group's own step is timed first (its widths and augmentation set that time, and whether the
   step is captured as a CUDA graph), and one that cannot finish all its seeds to the horizon in the
   time left is left for the next sitting (`--skip` names those a sitting already ran);
4. writes to `--out`: `runs.tar.gz` (one folder per run: config, records, kept sample grids),
   `timing.json` + `timing.md` (the measurements and where the time went).

The CPU machine turns the returned runs into the study's MLflow runs and the report
(`python -m study.sitting`). On a CPU the same stages run at toy size (tests/test_sitting.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
import traceback
from pathlib import Path

import torch

from benchmarks.bench import matmul_tflops, sync, timed_steps
from benchmarks.seed_loop import photo_loader, seed_train
from gans.cli import ensure_writable_dir, main_guard
from gans.config import TrainConfig
from gans.data import load_images
from gans.extractors import auto_extractor
from gans.metrics import build_evaluator
from gans.trainer import GRAPH_WARMUP, Trainer, load_train_data, resolve_device
from study import folklore

MARGIN_S = 20
"""seconds kept for packing and the table at the end"""
GROUP_MEASURE_S = 2.0
"""seconds of timing a group's own step before deciding whether it fits"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_sitting", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="photo folder (the first --limit train, the rest are held out)")
    p.add_argument("--out", required=True, type=Path, help="output folder ($OUT on the device)")
    p.add_argument("--budget", type=float, default=540, help="seconds this script may take in all (default: 540)")
    p.add_argument("--measure", type=float, default=45, help="seconds of step measurements (default: 45)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--limit", type=int, default=folklore.LIMIT, help=f"training photos (default: {folklore.LIMIT})")
    p.add_argument("--horizon", type=int, default=folklore.HORIZON, help=f"epochs (default: {folklore.HORIZON})")
    p.add_argument("--eval-every", type=int, default=folklore.EVAL_EVERY,
                   help=f"evaluation grid in epochs (default: {folklore.EVAL_EVERY})")
    p.add_argument("--seeds", type=int, default=folklore.SEEDS, help=f"seeds per configuration (default: {folklore.SEEDS})")
    p.add_argument("--randoms", type=int, default=folklore.RANDOM_CONTROLS,
                   help=f"random control configurations (default: {folklore.RANDOM_CONTROLS})")
    p.add_argument("--num-samples", type=int, default=folklore.NUM_SAMPLES,
                   help=f"generated images per evaluation (default: {folklore.NUM_SAMPLES})")
    p.add_argument("--extractor", default=None, help="inception (default on CUDA, and for photos without "
                   "--domain-data) | domain (default on a CPU with --domain-data)")
    p.add_argument("--domain-data", default="", help="labelled data set of the domain extractor: mnist | "
                   "fashion-mnist | PATH of class folders (default: none)")
    p.add_argument("--skip", default="", help="comma-separated configurations already run by an earlier sitting")
    p.add_argument("--toy", action="store_true", help="tiny models (CPU rehearsal): ngf = ndf = 8, nz = 16")
    return p.parse_args(argv)


class Clock:
    """Seconds since the script started, and what is left of the budget."""

    def __init__(self, budget: float):
        self.t0, self.budget = time.perf_counter(), budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def device_facts(device: torch.device) -> dict:
    facts = {"device": str(device), "torch": str(torch.__version__)}
    if device.type == "cuda":
        facts["name"] = torch.cuda.get_device_name(device)
        facts["bf16_matmul_tflops"] = matmul_tflops(device, torch.bfloat16, 4096, 20)
    else:
        facts["name"] = "cpu"
    return facts


def time_steps(trainer: Trainer, seconds: float, min_steps: int = 5) -> float:
    """Seconds per training step of every member together, after warm-up (graph capture included)."""
    took, n = timed_steps(trainer.train_step, trainer.device, GRAPH_WARMUP + 2,
                          lambda n, t: n >= min_steps and t >= seconds, sync_every=10)
    return took / n


def seed_loop_rate(config: TrainConfig, data: str, device: torch.device, seconds: float) -> float:
    """Images per second of the seed notebooks' loop (PIL + DataLoader, fp32, .item() every step)."""
    loader = photo_loader(data, config.image_size, config.batch_size, config.limit, jitter_blur=False)
    steps = max(3, min(config.limit // config.batch_size, int(seconds * 4)))
    best = 0.0
    for images, took in seed_train(config.replace(epochs=2), loader, 3, str(device), max_steps=steps):
        best = max(best, images / took)  # the second epoch: warm
    return best


def measure(base: TrainConfig, data, device: torch.device, seconds: float, photos: str) -> list[dict]:
    """The step's speed per variant: (members, graph) -> seconds per step and images/s in all."""
    variants = [(1, False), (5, False)]
    if device.type == "cuda":
        variants += [(5, True), (10, True), (15, True), (1, True)]
    else:
        variants += [(10, False)]
    rows = []
    each = seconds / (len(variants) + 1)
    for k, graph in variants:
        members = [base.replace(seed=s) for s in range(1, k + 1)]
        name = f"K={k} {'graph' if graph else 'eager'}"
        try:
            trainer = Trainer(members, data, graph=graph)
            step_s = time_steps(trainer, each)
        except Exception as e:  # one variant failing must not cost the others
            log(f"  {name}: failed ({type(e).__name__}: {e})")
            continue
        rows.append({"variant": name, "members": k, "graph": graph, "graph_state": trainer.graph_state,
                     "step_ms": step_s * 1e3, "images_per_s": k * base.batch_size / step_s})
        log(f"  {name}: {step_s * 1e3:.2f} ms/step, {rows[-1]['images_per_s']:.0f} images/s"
            + (f" ({trainer.graph_state})" if trainer.graph_failure else ""))
        del trainer
    try:
        rate = seed_loop_rate(base.replace(precision="fp32"), photos, device, each)
    except Exception as e:
        log(f"  seed loop: failed ({type(e).__name__}: {e})")
        return rows
    rows.append({"variant": "seed loop (DataLoader, fp32)", "members": 1, "graph": False, "graph_state": "eager",
                 "step_ms": base.batch_size / rate * 1e3, "images_per_s": rate})
    log(f"  seed loop: {rate:.0f} images/s")
    return rows


def group_step(part: list, seeds: int, data, seconds: float) -> tuple[float, str]:
    """Seconds per step of a group's own runs trained together, timed on a trainer built for them (a
    configuration's widths and augmentation set its step's time, and whether its step can be captured
    as a CUDA graph); and how that trainer ran its step (`Trainer.graph_state`)."""
    trainer = Trainer([c for conf in part for c in conf.runs(seeds)], data)
    return time_steps(trainer, seconds), trainer.graph_state


def eval_seconds(evaluator, base: TrainConfig, data) -> float:
    """Seconds of one evaluation of one member (the real side's features computed before)."""
    trainer = Trainer(base.replace(seed=1), data, evaluator=evaluator)
    evaluator(trainer, member=0)  # the real sides' features: once
    times = []
    for _ in range(3):  # the first may still tune cuDNN's kernels for the extractor
        sync(trainer.device)
        t = time.perf_counter()
        evaluator(trainer, member=0)
        sync(trainer.device)
        times.append(time.perf_counter() - t)
    return min(times)


def write_outputs(out: Path, runs_dir: Path, timing: dict) -> None:
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        tar.add(runs_dir, arcname="runs")
    (out / "timing.json").write_text(json.dumps(timing, indent=1))
    (out / "timing.md").write_text(timing_table(timing))


def timing_table(timing: dict) -> str:
    f = timing["device"]
    lines = [f"Device: {f['name']} (torch {f['torch']})"
             + (f", bf16 matmul {f['bf16_matmul_tflops']:.0f} TFLOP/s" if "bf16_matmul_tflops" in f else ""), "",
             "| step variant | ms/step | images/s in all |", "|---|---:|---:|"]
    lines += [f"| {r['variant']} | {r['step_ms']:.2f} | {r['images_per_s']:.0f} |" for r in timing["measured"]]
    lines += ["", f"One evaluation of one run: {timing['eval_s']:.2f} s", "",
              "| configurations | members | ms/step | complete | predicted s | wall s | training s | evaluation s "
              "| step |", "|---|---:|---:|---|---:|---:|---:|---:|---|"]
    lines += [f"| {', '.join(g['configurations'])} | {g['members']} | {g['step_ms']:.2f} | {g['complete']} | "
              f"{g['predicted_s']:.0f} | {g['wall_s']:.0f} | {g['train_s']:.0f} | {g['eval_s']:.0f} | "
              f"{g['graph_state']} |" for g in timing["groups"]]
    lines += ["", f"Left for a later sitting: {', '.join(timing['left']) or 'nothing'}",
              f"Wall: {timing['wall_s']:.0f} s of a {timing['budget_s']:.0f} s budget "
              f"(start-up and checks {timing['startup_s']:.0f} s, measurements {timing['measure_s']:.0f} s)"]
    return "\n".join(lines) + "\n"


@main_guard
def main(argv: list[str] | None = None) -> int:
    """Measure the step, train as many groups of the folklore sitting as the budget allows, write the timing."""
    args = parse_args(argv)
    clock = Clock(args.budget)
    out = ensure_writable_dir(args.out)
    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    facts = device_facts(device)
    log(f"device: {facts['name']} ({clock.elapsed():.0f} s)")
    base = sitting_base(args, device)
    configs = folklore.configurations(base, args.randoms, fixed={"ngf": 8, "ndf": 8, "nz": 16} if args.toy else None)
    data = load_train_data(base)
    log(f"{len(data)} training photos, {len(load_images(args.data, image_size=64, limit=args.limit, split='heldout'))} "
        f"held out")
    evaluator = build_evaluator(base)
    eval_s = eval_seconds(evaluator, base, data)  # the first computes the real sides' features
    startup = clock.elapsed()
    log(f"measuring the step ({args.measure:.0f} s); one evaluation: {eval_s:.2f} s")
    t = clock.elapsed()
    errors: list[str] = []
    # On the first configuration of the experiment in every sitting: tables comparable across sittings.
    rows = measure_or_skip(configs[0].config, data, device, args, errors)
    measure_s = clock.elapsed() - t
    runs_dir = out.parent / (out.name + "-runs") if device.type != "cuda" else Path("/tmp/sitting-runs")
    runs_dir.mkdir(parents=True, exist_ok=True)
    skip = {s for s in args.skip.split(",") if s}
    groups, left = train_in_time([c for c in configs if c.name not in skip], args, data, evaluator, runs_dir,
                                 steps=len(data) // base.batch_size, eval_s=eval_s, clock=clock,
                                 facts=facts, errors=errors)
    timing = {"device": facts, "measured": rows, "eval_s": eval_s, "groups": groups, "left": left, "errors": errors,
              "startup_s": startup, "measure_s": measure_s, "budget_s": args.budget,
              "seeds": args.seeds, "horizon": args.horizon, "limit": args.limit}
    timing["wall_s"] = clock.elapsed()
    write_outputs(out, runs_dir, timing)
    print(timing_table(timing))
    return 0


def sitting_base(args: argparse.Namespace, device: torch.device) -> TrainConfig:
    """The folklore's base config on this device; Inception for photos without labelled data."""
    extractor = args.extractor or ("inception" if device.type == "cuda" else "domain")
    base = folklore.base_config(args.data, limit=args.limit, epochs=args.horizon, eval_every=args.eval_every,
                                num_samples=args.num_samples, kid_subset_size=args.num_samples,
                                extractor=extractor, domain_data=args.domain_data, device=str(device))
    if not args.extractor:  # photos without labelled data get Inception, on any device
        base, notes = auto_extractor(base, device)
        for line in notes:
            log(line)
    if device.type != "cuda" and base.extractor == "domain":
        log("warning: on a CPU the metrics use the domain extractor: not the folklore's measurement "
            "(Inception FID), a rehearsal")
    return base


def measure_or_skip(config: TrainConfig, data, device: torch.device, args: argparse.Namespace,
                    errors: list[str]) -> list[dict]:
    """The measured step rows; none when measuring fails (the error kept in `errors`): the table is for
    the record, each group times its own step before it trains."""
    try:
        return measure(config, data, device, args.measure, args.data)
    except Exception:  # the experiment matters more than the table
        errors.append(traceback.format_exc())
        log(f"measurement failed; going on without the table:\n{errors[-1]}")
        return []


def train_in_time(configs: list, args: argparse.Namespace, data, evaluator, runs_dir: Path, *, steps: int,
                  eval_s: float, clock: Clock, facts: dict,
                  errors: list[str]) -> tuple[list, list[str]]:
    """Train each group of configurations trained together (else its first alone) that fits the time left;
    the groups trained, and the names left untrained. `steps`: training steps per epoch."""
    groups, left = [], []
    for group in folklore.together(configs):
        for part in ([group] if len(group) == 1 else [group, group[:1]]):
            try:
                step_s, graph_state = group_step(part, args.seeds, data, GROUP_MEASURE_S)
            except Exception:  # e.g. out of memory at this many members: try the next part
                errors.append(traceback.format_exc())
                log(f"timing {', '.join(c.name for c in part)} failed:\n{errors[-1]}")
                continue
            if graph_state.startswith("eager:"):
                log(f"  no CUDA graph for {', '.join(c.name for c in part)}, eager steps: {graph_state}")
            cost = folklore.group_cost(part, args.seeds, step_s, eval_s, steps)
            if cost < clock.left() - MARGIN_S:
                log(f"training {', '.join(c.name for c in part)}: {len(part) * args.seeds} runs x {part[0].config.epochs} "
                    f"epochs, about {cost:.0f} s ({clock.left():.0f} s left)")
                try:
                    groups.append(folklore.train_group(part, args.seeds, data, evaluator, runs_dir,
                                                       graph=graph_state == "captured",
                                                       out_of_time=lambda: clock.left() < MARGIN_S / 2,
                                                       log=log, device=facts))
                    groups[-1].update(predicted_s=cost, step_ms=step_s * 1e3)  # to check the prediction
                except Exception:  # keep what the other groups trained
                    errors.append(traceback.format_exc())
                    log(f"training {', '.join(c.name for c in part)} failed:\n{errors[-1]}")
                    left += [c.name for c in part]
                left += [c.name for c in group if c not in part]
                break
            log(f"not enough time for {', '.join(c.name for c in part)}: about {cost:.0f} s, {clock.left():.0f} s left")
        else:
            left += [c.name for c in group]
    return groups, left


if __name__ == "__main__":
    sys.exit(main())
