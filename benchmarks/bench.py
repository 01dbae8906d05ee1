"""`python -m benchmarks.bench`: measures our trainer against the seed-style loop, in one run on one device.

Sections (each prints rows of a table; all figures go to a JSON file and are appended to
`benchmarks/RESULTS.md`):
- train: images/s of the seed-style loop vs our trainer (DCGAN 64 px on the cat photos at batch 32
  and 128; MLP GAN on MNIST at batch 200), their ratio, achieved TFLOP/s and model-FLOPs utilisation;
- memory: host RSS / device memory after every epoch and every trial (growth = a leak);
- precision: fp32 vs bf16 loss curves on a fixed seed (devices with native bf16);
- trials: trials per hour of a short fixed DCGAN study (`python -m study.run` itself, fresh stores)
  with 1, 2, 4 (at full size also 8) concurrent trials on the device, against the seed-style loop
  training the same trials one after another (its time counts training only: the seeds computed no
  metrics);
- eval: seconds to score FID+KID of 2k and 10k generated samples (domain extractor), with the real
  side's statistics computed afresh vs read from the cache;
- members: images/s per member and in all of K = 1, 3, 5, 8 runs trained together as one vectorized
  model (MLP GAN on 1,000 MNIST digits, DCGAN 64 px on 512 cat photos, batch 32), against the same K
  runs one after another (one run's measured rate: K runs take K times its time), in the threads
  `gans.trainer.worker_threads` gives a training process; on a CPU also where each K's step goes
  (profiled: the matrix products, Adam's update and the casts and copies, whose work grows with K,
  against the rest);
- packed: images/s in all of K = 1, 2, 4, 8 trials (separate trainers, as trials with different
  hyperparameters must be) trained at once in one process, stepped in turn on a CUDA stream each,
  against one trial alone, and device memory per trial;
- threads: images/s of one training process (subprocess) with torch's default threads, one thread,
  and the default with OMP_WAIT_POLICY=PASSIVE, alone and beside a busy loop on every core: the
  measurements behind `gans.trainer.worker_threads`.

Every figure is a fixed number of steps after warm-up. The run records the machine (CPU model,
cores, torch, threads, niceness) and how many cores other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.seed_loop import mnist_loader, photo_loader, seed_train
from gans import metrics
from gans.cache import cache_dir
from gans.cli import main_guard
from gans.config import TrainConfig
from gans.data import ImageData, load_images
from gans.errors import UserError
from gans.extractors import build_extractor
from gans.trainer import (GRAPH_WARMUP, Trainer, load_train_data, resolve_device, resolve_precision,
                          worker_threads)
from study.estimate import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"

# Work per section at each size: `full` is the benchmark, `--quick` fits in minutes on a CPU, `--toy`
# only proves that every path runs (tests); its numbers mean nothing.
# members: (K values, MNIST digits, cat photos, per model (warm-up steps, timed steps, rounds));
# threads: (models, added loads, per model (warm-up steps, timed steps, seconds after which fewer steps do)).
_MEMBERS = ((1, 3, 5, 8), 1000, 512, {"mlp": (5, 40, 3), "dcgan": (2, 4, 2)})
# packed: (K values, warm-up steps, timed steps, rounds) of K trials stepped in turn on K streams.
_PACKED = ((1, 2, 4, 8), 2, 4, 2)
_THREADS = (("mlp", "dcgan"), ("none", "busy"), {"mlp": (5, 60, 6.0), "dcgan": (1, 4, 10.0)})
SIZES: dict[str, dict[str, Any]] = {
    "full": {"cat_limit": 2000, "mnist_limit": 0, "train_epochs": 2, "memory": (10, 4), "precision_epochs": 20,
             "study": (8, 20, 10, 2000, 2000), "workers": (1, 2, 4, 8), "eval_samples": (2000, 10000),
             "eval_limit": 2000, "members": _MEMBERS, "packed": _PACKED, "threads": _THREADS},
    "quick": {"cat_limit": 256, "mnist_limit": 12000, "train_epochs": 2, "memory": (4, 3), "precision_epochs": 5,
              "study": (4, 4, 2, 128, 256), "workers": (1, 2, 4), "eval_samples": (500, 2000), "eval_limit": 512,
              "members": _MEMBERS, "packed": _PACKED, "threads": _THREADS},
    "toy": {"cat_limit": 128, "mnist_limit": 1000, "train_epochs": 1, "memory": (2, 2), "precision_epochs": 2,
            "study": (2, 1, 1, 64, 64), "workers": (1, 2), "eval_samples": (64, 128), "eval_limit": 64,
            "members": ((1, 2), 256, 64, {"mlp": (1, 2, 1), "dcgan": (1, 1, 1)}), "packed": ((1, 2), 1, 2, 1),
            "threads": (("mlp",), ("busy",), {"mlp": (1, 3, 2.0)})},
}

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, printed beside the measured one.
NOMINAL_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0}


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int, reps: int) -> float:
    """TFLOP/s of `reps` n x n matrix products in `dtype` on `device`, after one untimed."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def device_peak_tflops(device: torch.device, precision: str = "fp32") -> tuple[float, str]:
    """(peak TFLOP/s, where the number comes from) for the MFU denominator: what a large matrix product
    achieves on this device, bf16 on a GPU (the precision our trainer computes in there), else the
    training precision. A data sheet's peak is not reached in practice (an H100: 794 measured, 989
    on paper), so an MFU against it would understate what was left on the table."""
    if device.type == "cuda":
        return matmul_tflops(device, torch.bfloat16, 8192, 10), "measured bf16 matmul, 8192 x 8192"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return matmul_tflops(device, dtype, 2048, 5), f"measured {precision} matmul, 2048 x 2048"


def datasheet_tflops(device: torch.device) -> float | None:
    """The vendor's dense bf16 peak of this GPU, when `NOMINAL_PEAK_TFLOPS` knows it."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in NOMINAL_PEAK_TFLOPS.items() if key in name), None)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings end there); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rss_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_flops_per_image(trainer: Trainer) -> float:
    """FLOPs of one training step (D step + G step) per image of one run, counted on a fresh eager
    trainer of `trainer`'s first run: the trainer measured keeps its weights and random streams, and
    K members are never counted as K, since torch's counter takes a grouped convolution's weight
    gradient (the form K members' convolutions take) for K times its work (the DCGAN at K = 5: 4.77
    GFLOP per image against 2.27 for one run)."""
    one = Trainer(trainer.config, trainer.data, graph=False)
    with FlopCounterMode(display=False) as counter:
        one.train_step()
    return counter.get_total_flops() / trainer.config.batch_size


def device_steps(device: torch.device, warmup: int, steps: int) -> tuple[int, int]:
    """(warm-up, timed) steps of a size's timing on `device`: on CUDA at least past the whole-step
    graph's capture, and enough steps of milliseconds to time."""
    if device.type == "cuda":
        return max(warmup, GRAPH_WARMUP + 2), max(steps, 50)
    return warmup, steps


def timed_steps(step: Callable[[], None], device: torch.device, warmup: int,
                done: Callable[[int, float], bool], sync_every: int = 0) -> tuple[float, int]:
    """(seconds, calls) of `step` called after `warmup` untimed calls until `done(calls, seconds so far)`,
    the device's queue drained before and after (and every `sync_every` calls, so that "seconds so far"
    is the device's time, not the host's running ahead of it). The one timing loop of the benchmarks."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    while not done(n, time.perf_counter() - t0):
        step()
        n += 1
        if sync_every and n % sync_every == 0:
            sync(device)
    sync(device)
    return time.perf_counter() - t0, n


def member_images_per_s(trainer: Trainer, warmup: int, steps: int,
                        max_seconds: float = float("inf")) -> tuple[float, int]:
    """(images/s of one member, steps timed): `warmup` untimed steps, then `steps` timed ones, fewer
    (at least 2) once `max_seconds` have passed."""
    seconds, n = timed_steps(trainer.train_step, trainer.device, warmup,
                             lambda n, t: n >= steps or (n >= 2 and t >= max_seconds))
    return trainer.config.batch_size * n / seconds, n


# The work that grows with the number of members K: the matrix products and convolutions (FLOPs),
# Adam's update and the casts and copies (memory traffic). The rest of a step (elementwise ops on small
# tensors, autograd's bookkeeping, Python) is mostly per-op overhead, which K runs as one model pay once.
GROWING_KINDS = ("matmul and conv", "Adam", "casts and copies")


def op_kind(name: str) -> str:
    """The kind of profiled op `name` (a torch.profiler event key): one of GROWING_KINDS or "rest"."""
    if not name.startswith("aten::"):  # autograd nodes, record_function ranges: bookkeeping
        return "rest"
    op = name.removeprefix("aten::")
    if op in ("mm", "addmm", "bmm", "baddbmm", "addbmm") or "conv" in op:
        return "matmul and conv"
    if "adam" in op.lower() or op.startswith("_foreach_"):
        return "Adam"
    if op in ("copy_", "_to_copy"):
        return "casts and copies"
    return "rest"


def step_seconds_by_kind(trainer: Trainer, steps: int) -> dict[str, float]:
    """CPU seconds per step spent in each of GROWING_KINDS (ops' own time, profiled over `steps` steps;
    it trains). CPU only: on a GPU the time that matters is the kernels', named otherwise."""
    assert trainer.device.type == "cpu", "profiled by op name on the CPU only"
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    own = {kind: 0.0 for kind in GROWING_KINDS}
    for event in prof.key_averages():
        kind = op_kind(event.key)
        if kind in own:
            own[kind] += event.self_cpu_time_total / 1e6 / steps
    return own


def bench_ours(config: TrainConfig, data, epochs: int, graph: bool | None = None) -> dict[str, Any]:
    """Our trainer's images/s over `epochs` (the last one), FLOPs per image and memory; `graph`: the
    whole-step CUDA graph (default: on CUDA), or eager."""
    trainer = Trainer(config, data, graph=graph)
    flops = train_flops_per_image(trainer)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    rss = []
    records = []
    for r in trainer.run():
        records.append(r)
        rss.append(rss_mib())
    last = records[-1]  # the first epoch pays for allocation and autotuning
    out = {
        "images_per_s": last["images_per_s"],
        "flops_per_image": flops,
        "tflops": flops * last["images_per_s"] / 1e12,
        "rss_mib_per_epoch": rss,
    }
    if trainer.device.type == "cuda":
        out["peak_device_mib"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
    out["graph_state"] = trainer.graph_state
    return out


def bench_seed(config: TrainConfig, loader, channels: int, device: torch.device, epochs: int) -> float:
    results = list(seed_train(config.replace(epochs=epochs), loader, channels, str(device)))
    images, seconds = results[-1]
    return images / seconds


def section_train(args, device: torch.device, peak: float) -> list[dict[str, Any]]:
    """The seed-style loop against ours (on CUDA through the whole-step graph and eager) for the DCGAN
    on the cat photos at batch 32 and 128 and the MLP GAN on MNIST at batch 200 and 32."""
    cats = str(Path(args.data_root) / "pets" / "cat")
    size = SIZES[args.size]
    limit, epochs = size["cat_limit"], size["train_epochs"]
    rows = []
    cat_data = load_images(cats, image_size=64, limit=limit)
    for batch in (32, 128):
        c = TrainConfig(model="dcgan", data=cats, image_size=64, limit=limit, batch_size=batch, nz=100,
                        ngf=64, ndf=64, augment="jitter-blur", epochs=epochs, device=str(device),
                        precision=args.precision)
        seed = bench_seed(c.replace(precision="fp32"), photo_loader(cats, 64, batch, limit), 3, device, epochs)
        ours = _ours_both(c, cat_data, epochs, device)
        rows.append(_train_row(f"DCGAN 64px cats, batch {batch}", seed, *ours, peak))
    with tempfile.TemporaryDirectory() as tmp:
        # torchvision extracts the raw files next to themselves: work on a copy.
        shutil.copytree(Path(args.data_root) / "MNIST", Path(tmp) / "MNIST")
        mlimit = size["mnist_limit"]
        for batch in (200, 32):
            c = TrainConfig(model="mlp", data="mnist", data_root=tmp, image_size=28, limit=mlimit, batch_size=batch,
                            nz=100, hidden=256, epochs=epochs, device=str(device), precision=args.precision)
            seed = bench_seed(c.replace(precision="fp32"), mnist_loader(tmp, batch, mlimit), 1, device, epochs)
            rows.append(_train_row(f"MLP GAN MNIST, batch {batch}", seed, *_ours_both(c, None, epochs, device), peak))
    return rows


def _ours_both(config: TrainConfig, data, epochs: int, device: torch.device) -> tuple[dict, dict | None]:
    """Ours as it trains on the device (graphed on CUDA), and on CUDA eager too (else None)."""
    eager = bench_ours(config, data, epochs, graph=False) if device.type == "cuda" else None
    return bench_ours(config, data, epochs), eager


def _train_row(name: str, seed: float, ours: dict[str, Any], eager: dict[str, Any] | None,
               peak: float) -> dict[str, Any]:
    row = {
        "case": name,
        "seed_images_per_s": seed,
        "ours_images_per_s": ours["images_per_s"],
        "ratio": ours["images_per_s"] / seed,
        "tflops": ours["tflops"],
        "mfu": ours["tflops"] / peak,
        "flops_per_image": ours["flops_per_image"],
        "rss_mib_first_last_epoch": [ours["rss_mib_per_epoch"][0], ours["rss_mib_per_epoch"][-1]],
    }
    if "peak_device_mib" in ours:
        row["peak_device_mib"] = ours["peak_device_mib"]
    if eager is not None:
        row["ours_eager_images_per_s"] = eager["images_per_s"]
        row["graph_state"] = ours["graph_state"]
    return row


def section_memory(args, device: torch.device) -> dict[str, Any]:
    """Host RSS and device memory after every epoch of several consecutive trials."""
    epochs, trials = SIZES[args.size]["memory"]
    c = TrainConfig(model="dcgan", data=str(Path(args.data_root) / "pets" / "cat"), image_size=32, limit=512,
                    batch_size=64, ngf=32, ndf=32, epochs=epochs, device=str(device), precision=args.precision)

    data = load_train_data(c)
    per_trial = []
    for t in range(trials):
        trainer = Trainer(c.replace(seed=t), data)
        rss = [rss_mib() for _ in trainer.run()]
        dev = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
        del trainer
        gc.collect()
        per_trial.append({"rss_mib_per_epoch": rss, "device_mib_after": dev})
    first, last = per_trial[1]["rss_mib_per_epoch"][-1], per_trial[-1]["rss_mib_per_epoch"][-1]
    # Trial 0 pays one-off allocations (allocator pools, oneDNN caches); growth is measured after it.
    return {"trials": per_trial, "rss_growth_mib_after_warmup": last - first}


def section_precision(args, device: torch.device) -> dict[str, Any] | None:
    """fp32 vs bf16 loss curves on one seed, where the device computes bf16 natively."""
    if resolve_precision("auto", device) != "bf16":
        return None
    c = TrainConfig(model="dcgan", data=str(Path(args.data_root) / "pets" / "cat"), image_size=64,
                    limit=512 if args.size != "toy" else 128, batch_size=64,
                    epochs=SIZES[args.size]["precision_epochs"], device=str(device))
    curves = {p: [r["loss_d"] for r in Trainer(c.replace(precision=p)).run()] for p in ("fp32", "bf16")}
    diff = [abs(a - b) for a, b in zip(curves["fp32"], curves["bf16"])]
    # GAN trajectories are chaotic: any rounding change (even another conv kernel) makes them drift
    # apart epoch by epoch, so the first epoch shows the precision's own effect.
    return {"loss_d_fp32": curves["fp32"], "loss_d_bf16": curves["bf16"], "first_epoch_abs_diff": diff[0],
            "max_abs_diff": max(diff)}


def section_trials(args, device: torch.device) -> dict[str, Any]:
    """Wall time of the same small study run by the real CLI with 1, 2 and 4 workers."""
    import subprocess

    cats = str(Path(args.data_root) / "pets" / "cat")
    trials, epochs, every, limit, samples = SIZES[args.size]["study"]
    flags = ["--model", "dcgan", "--data", cats, "--image-size", "64", "--limit", str(limit),
             "--epochs", str(epochs), "--eval-every", str(every), "--batch-size", "32", "--nz", "100",
             "--ngf", "64", "--ndf", "64", "--augment", "jitter-blur", "--metrics", "fid,kid",
             "--extractor", "domain", *(["--domain-weights", str(args.domain_weights)] if args.domain_weights else
                                        ["--domain-data", str(Path(args.data_root) / "pets")]),
             "--num-samples", str(samples), "--device", str(device), "--precision", args.precision,
             "--sampler", "random", "--pruner", "none", "--no-progress",
             "--confirm-top", "0", "--no-report"]  # the seeds' loop ran trials only: compare like with like

    def study(workers: int, n: int, folder: Path) -> float:
        cmd = [sys.executable, "-m", "study.run", *flags, "--trials", str(n), "--workers", str(workers),
               "--study-name", f"bench-{workers}", "--storage", str(folder / "optuna.journal"),
               "--tracking-uri", f"sqlite:///{folder}/mlflow.db", "--checkpoints", str(folder / "ck")]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"study.run --workers {workers} failed:\n{done.stderr[-2000:]}")
        return time.perf_counter() - t0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # One untimed trial trains and caches the domain classifier and the real statistics (the toy's
        # figures mean nothing: it skips this).
        if args.size != "toy":
            study(1, 1, Path(tmp) / "warm-up")
        for workers in SIZES[args.size]["workers"]:
            seconds = study(workers, trials, Path(tmp) / f"w{workers}")
            rows.append({"workers": workers, "trials": trials, "epochs": epochs, "seconds": seconds,
                         "trials_per_hour": 3600 * trials / seconds})
        c = TrainConfig(model="dcgan", data=cats, image_size=64, limit=limit, batch_size=32, nz=100, ngf=64,
                        ndf=64, augment="jitter-blur", epochs=epochs, device=str(device))
        loader = photo_loader(cats, 64, 32, limit)
        t0 = time.perf_counter()
        bench_seed(c, loader, 3, device, epochs)
        seed_trial = time.perf_counter() - t0
    best = max(rows, key=lambda r: r["trials_per_hour"])
    return {"rows": rows, "seed_trial_seconds": seed_trial, "seed_trials_per_hour": 3600 / seed_trial,
            "seed_includes_eval": False, "best_workers": best["workers"],
            "ratio": best["trials_per_hour"] * seed_trial / 3600}


def section_eval(args, device: torch.device) -> list[dict[str, Any]]:
    """Seconds to score FID+KID of N generated samples, real statistics cached or not."""
    cats = str(Path(args.data_root) / "pets" / "cat")
    sizes = SIZES[args.size]["eval_samples"]
    c = TrainConfig(model="dcgan", data=cats, image_size=64, limit=SIZES[args.size]["eval_limit"], nz=100,
                    metrics="fid,kid", extractor="domain", domain_data=str(Path(args.data_root) / "pets"),
                    device=str(device), precision=args.precision)
    # An untrained generator: scoring cost does not depend on what the samples look like.
    trainer = Trainer(c)
    rows = []
    user_cache = os.environ.get("GAN_STUDY_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        # A private cache, so that dropping the real statistics leaves the user's cache alone; the
        # domain classifier is copied over (or trained once) outside the timings.
        if (cache_dir() / "domain").is_dir():
            shutil.copytree(cache_dir() / "domain", Path(tmp) / "domain")
        os.environ["GAN_STUDY_CACHE"] = tmp
        try:
            extractor = build_extractor(c, device)
            for n in sizes:
                config = c.replace(num_samples=n)
                times = {}
                for cached in (False, True):
                    if not cached:
                        for sub in ("real", "fidelity"):
                            shutil.rmtree(Path(tmp) / sub, ignore_errors=True)
                    source = metrics.GeneratorSource(trainer.sample, c.nz, trainer.data.num_classes, trainer.device,
                                                     num_samples=n)
                    sync(device)
                    t0 = time.perf_counter()
                    metrics.calculate(source, metrics.real_set(config), extractor, ("fid", "kid"), num_samples=n,
                                      kid_subset_size=config.kid_subset_size, device=trainer.device)
                    sync(device)
                    times[cached] = time.perf_counter() - t0
                rows.append({"samples": n, "real_images": len(trainer.data), "seconds_uncached": times[False],
                             "seconds_cached": times[True]})
        finally:
            if user_cache is None:
                os.environ.pop("GAN_STUDY_CACHE", None)
            else:
                os.environ["GAN_STUDY_CACHE"] = user_cache
    return rows


def _machine_busy_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (fields + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended."""
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(r.ru_utime + r.ru_stime for r in usage)


class CpuShare:
    """How many cores processes other than this one and its (ended) children kept busy, on average,
    since it was made: the machine's busy time less our own over the wall time (None off Linux)."""

    def __init__(self) -> None:
        self.t0, self.busy0, self.own0 = time.perf_counter(), _machine_busy_s(), _own_cpu_s()

    def others_cores(self) -> float | None:
        busy = _machine_busy_s()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        return max(0.0, (busy - self.busy0 - (_own_cpu_s() - self.own0)) / wall)


def member_configs(args, device: torch.device) -> dict[str, tuple[str, TrainConfig]]:
    """model -> (case name, configuration) of the members and threads sections: batch 32, seed 0."""
    _, digits, photos, _ = SIZES[args.size]["members"]
    common = dict(batch_size=32, nz=100, device=str(device), precision=args.precision)
    return {
        "mlp": (f"MLP GAN, {digits:,} MNIST digits, batch 32",
                TrainConfig(model="mlp", data="mnist", data_root=str(args.data_root), image_size=28, limit=digits,
                            hidden=256, **common)),
        "dcgan": (f"DCGAN 64 px, {photos} cat photos, batch 32",
                  TrainConfig(model="dcgan", data=str(Path(args.data_root) / "pets" / "cat"), image_size=64,
                              limit=photos, ngf=64, ndf=64, augment="jitter-blur", **common)),
    }


def section_members(args, device: torch.device) -> dict[str, Any]:
    """Images/s of K runs trained together (one `Trainer` of K seeds) against K runs one after another.

    One after another is one run's measured rate: K runs take K times its time, so their total rate
    is that rate. The K values are measured in interleaved rounds (median per K), so that a change
    in the machine's load meanwhile hits each alike. Training threads: `gans.trainer.worker_threads`."""
    ks, _, _, steps = SIZES[args.size]["members"]
    assert ks[0] == 1, "the first K is the single run every ratio is against"
    before = torch.get_num_threads()
    rule = worker_threads(1) if device.type == "cpu" else 0
    if rule:
        torch.set_num_threads(rule)
    share = CpuShare()
    rows = []
    try:
        for model, (case, config) in member_configs(args, device).items():
            warmup, n, rounds = steps[model]
            warmup, n = device_steps(device, warmup, n)
            data = load_train_data(config)
            trainers = {k: Trainer([config.replace(seed=s) for s in range(k)], data) for k in ks}
            rates: dict[int, list[float]] = {k: [] for k in ks}
            for r in range(rounds):
                for k in ks:
                    rates[k].append(member_images_per_s(trainers[k], warmup if r == 0 else 1, n)[0])
            growing = {k: step_seconds_by_kind(trainers[k], n) for k in ks} if device.type == "cpu" else {}
            del trainers
            gc.collect()
            single = statistics.median(rates[1])
            for k in ks:
                per = statistics.median(rates[k])
                rows.append({"model": model, "case": case, "members": k, "threads": torch.get_num_threads(),
                             "steps": n, "rounds": rounds, "member_images_per_s": per, "total_images_per_s": k * per,
                             "one_after_another_images_per_s": single, "ratio": k * per / single,
                             "step_s": config.batch_size / per, **({"growing_s": growing[k]} if growing else {})})
    finally:
        torch.set_num_threads(before)
    goals: dict[str, Any] = {}
    mlp5 = [r for r in rows if r["model"] == "mlp" and r["members"] == 5]
    if mlp5:
        goals["mlp_5_members_ratio"] = mlp5[0]["ratio"]
        goals["mlp_goal_met"] = mlp5[0]["ratio"] >= 3
        mlp1 = next(r for r in rows if r["model"] == "mlp" and r["members"] == 1)
        if "growing_s" in mlp1:
            goals["mlp_5_members_bound"] = arithmetic_bound(mlp1, mlp5[0])
    dcgan = [r for r in rows if r["model"] == "dcgan" and r["members"] > 1]
    if dcgan:
        goals["dcgan_min_ratio"] = min(r["ratio"] for r in dcgan)
        goals["dcgan_goal_met"] = goals["dcgan_min_ratio"] >= 1
    return {"threads": rows[0]["threads"] if rows else before, "rows": rows, "goals": goals,
            "others_cores": share.others_cores(),
            "one_after_another": "one run's measured rate (K runs one after another take K times its time)"}


def arithmetic_bound(one: dict[str, Any], k: dict[str, Any]) -> float:
    """The ratio K members together would reach over one run if nothing but their matrix products
    and Adam's update grew with K: one run's step plus the growth of those two, as profiled (the
    casts and copies, elementwise ops, autograd and Python paid once for all members)."""
    def work(r: dict[str, Any]) -> float:
        return r["growing_s"]["matmul and conv"] + r["growing_s"]["Adam"]

    return k["members"] * one["step_s"] / (one["step_s"] + work(k) - work(one))


def packed_images_per_s(trainers: list[Trainer], warmup: int, steps: int) -> float:
    """Images/s in all of `trainers` (K trials: each its own model, optimizers and data order) stepped in
    turn from one thread, on CUDA each on a stream of its own: a graphed step is one launch, so one
    thread keeps K streams fed and the GPU may overlap their kernels (on a CPU they run in turn)."""
    device = trainers[0].device
    cuda = device.type == "cuda"
    streams = [torch.cuda.Stream(device) if cuda else None for _ in trainers]
    for s in streams:
        if s is not None:  # the trainers' tensors were made on the default stream
            s.wait_stream(torch.cuda.current_stream(device))

    def turn() -> None:
        for trainer, s in zip(trainers, streams):
            with torch.cuda.stream(s) if s is not None else contextlib.nullcontext():
                trainer.train_step()

    seconds, _ = timed_steps(turn, device, warmup, lambda n, t: n >= steps)
    return sum(t.config.batch_size for t in trainers) * steps / seconds


def section_packed(args, device: torch.device) -> dict[str, Any]:
    """K trials of the DCGAN (64 px, batch 32; seeds 0..K-1, each its own `Trainer`) trained at once in
    one process, stepped in turn on K CUDA streams, against one trial alone: images/s in all, and device
    memory per trial. Unlike the members section's one vectorized model, this packs trials whatever their
    hyperparameters (architectures too); rounds interleave the K values, median per K."""
    ks, warmup, n, rounds = SIZES[args.size]["packed"]
    assert ks[0] == 1, "the first K is the single trial every ratio is against"
    warmup, n = device_steps(device, warmup, n)
    case, config = member_configs(args, device)["dcgan"]
    data = load_train_data(config)
    rates: dict[int, list[float]] = {k: [] for k in ks}
    memory: dict[int, float | None] = {}
    for r in range(rounds):
        for k in ks:
            before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
            trainers = [Trainer(config.replace(seed=s), data) for s in range(k)]
            rates[k].append(packed_images_per_s(trainers, warmup, n))
            if device.type == "cuda":
                memory[k] = (torch.cuda.memory_allocated(device) - before) / k / 2**20
            del trainers
            gc.collect()
    single = statistics.median(rates[1])
    rows = [{"case": case, "trials": k, "steps": n, "rounds": rounds, "images_per_s": statistics.median(rates[k]),
             "ratio": statistics.median(rates[k]) / single, "device_mib_per_trial": memory.get(k)} for k in ks]
    return {"rows": rows, "streams": device.type == "cuda"}


def probe(spec_json: str) -> None:
    """A `threads` measurement in a fresh process (so that OMP_WAIT_POLICY, read when torch loads
    its OpenMP runtime, takes effect): prints one JSON line."""
    spec = json.loads(spec_json)
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    blob = torch.load(spec["data"], weights_only=True)
    data = ImageData(blob["images"], blob["labels"], tuple(blob["class_names"]), blob["name"])
    trainer = Trainer(TrainConfig(**spec["config"]), data)
    rate, steps = member_images_per_s(trainer, spec["warmup"], spec["steps"], spec["max_seconds"])
    print(json.dumps({"images_per_s": rate, "steps": steps, "threads": torch.get_num_threads()}))


PROBE = "import sys; from benchmarks.bench import probe; probe(sys.argv[1])"


@contextlib.contextmanager
def busy_loops(n: int):
    """`n` Python processes spinning `while True: pass` (a competing load), ended on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def section_threads(args, device: torch.device) -> dict[str, Any] | None:
    """Images/s of one training process with torch's default threads, one thread, and the default
    with OMP_WAIT_POLICY=PASSIVE, with no load added and beside a busy loop on every core (CPU only)."""
    if device.type != "cpu":
        return None

    models, loads, steps = SIZES[args.size]["threads"]
    cores = os.cpu_count() or 1
    settings = [("default", 0, {}), ("1 thread", 1, {}), ("default, OMP_WAIT_POLICY=PASSIVE", 0,
                                                         {"OMP_WAIT_POLICY": "PASSIVE"})]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    configs = member_configs(args, device)
    share = CpuShare()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            case, config = configs[model]
            data = load_train_data(config)
            data_file = Path(tmp) / f"{model}.pt"  # decoded once, not in every probe
            torch.save({"images": data.images, "labels": data.labels, "class_names": list(data.class_names),
                        "name": data.name}, data_file)
            warmup, n, max_seconds = steps[model]
            for load in loads:
                with busy_loops(cores if load == "busy" else 0):
                    for label, threads, extra in settings:
                        spec = {"config": dataclasses.asdict(config), "data": str(data_file), "threads": threads,
                                "warmup": warmup, "steps": n, "max_seconds": max_seconds}
                        cmd = [sys.executable, "-c", PROBE, json.dumps(spec)]
                        done = subprocess.run(cmd, cwd=REPO, env={**env, **extra}, capture_output=True, text=True)
                        if done.returncode != 0:
                            raise RuntimeError(f"threads probe ({model}, {label}) failed:\n{done.stderr[-2000:]}")
                        out = json.loads(done.stdout.strip().splitlines()[-1])
                        rows.append({"model": model, "case": case, "load": load, "setting": label,
                                     "threads": out["threads"], "images_per_s": out["images_per_s"],
                                     "steps": out["steps"]})
    return {"rows": rows, "cores": cores, "rule_threads": worker_threads(1),
            "load_busy": f"one `while True: pass` process per core ({cores})", "others_cores": share.others_cores()}


def print_table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def append_results(results: dict[str, Any], path: Path) -> None:
    """Append one benchmark's results to `path` (Markdown; headed when new), section by section."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a") as f:
        if new:
            f.write("# Benchmark results\n\nAppended by `python -m benchmarks.bench`; newest last.\n")
        f.write(f"\n## {results['date']} — {results['device']} ({results['size']})\n\n")
        if results.get("skipped"):
            f.write(f"Not run, past `--budget {results['budget_s']:g}` s: {', '.join(results['skipped'])}.\n\n")
        for write in (_write_machine, _write_train, _write_trials, _write_notes, _write_members, _write_packed,
                      _write_threads):
            write(f, results)


def _write_machine(f, results: dict[str, Any]) -> None:
    """The machine: CPU, cores, torch, load, and whether other processes shared it."""
    m = results.get("machine")
    if m:
        others = m.get("others_cores")
        shared = ("" if others is None else
                  f"; other processes kept {others:.2f} of the {m['cores']} cores busy on average meanwhile"
                  + (" (they shared the machine: every figure is under that load)" if others >= 0.1 else ""))
        f.write(f"Machine: CPU {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch_threads']} torch "
                f"threads by default, niceness {m['niceness']}, precision {results['precision']}; "
                f"load average {m['load_average_start']:.2f} at the start, {m['load_average_end']:.2f} at the end"
                f"{shared}; {results['seconds']:.0f} s in all.\n\n")


def _write_train(f, results: dict[str, Any]) -> None:
    """The training throughput table, seed-style loop against ours (graphed and eager on CUDA), with MFU."""
    rows = results["train"]
    if rows:
        eager = any("ours_eager_images_per_s" in r for r in rows)
        f.write("| case | seed-style images/s | ours images/s " + ("| ours eager images/s " if eager else "")
                + "| ratio | TFLOP/s | MFU |\n|---|---|---|" + ("---|" if eager else "") + "---|---|---|\n")
        for r in rows:
            f.write(f"| {r['case']} | {r['seed_images_per_s']:.1f} | {r['ours_images_per_s']:.1f} | "
                    + (f"{r.get('ours_eager_images_per_s', float('nan')):.1f} | " if eager else "")
                    + f"{r['ratio']:.2f}× | {r['tflops']:.3g} | {100 * r['mfu']:.1f} % |\n")
        sheet = results.get("datasheet_tflops")
        f.write(f"\nMFU denominator: {results['peak_tflops']:.3g} TFLOP/s ({results['peak_source']})"
                + (f"; the data sheet says {sheet:.3g}" if sheet else "") + ". FLOPs counted by "
                "`torch.utils.flop_counter` on one run's step" + (" (ours: through the whole-step CUDA graph; "
                "eager: the same step without it)" if eager else "") + ".\n")
        for r in rows:  # a failed capture trains eagerly: its "ours" is not the graph's
            if r.get("graph_state", "captured") != "captured":
                f.write(f"- {r['case']}: the step was not captured as a CUDA graph ({r['graph_state']}).\n")


def _write_trials(f, results: dict[str, Any]) -> None:
    """Trials per hour by workers, against the seed-style loop."""
    trials = results.get("trials")
    if trials:
        f.write("\n| workers | trials × epochs | wall s | trials/hour |\n|---|---|---|---|\n")
        for r in trials["rows"]:
            f.write(f"| {r['workers']} | {r['trials']} × {r['epochs']} | {r['seconds']:.0f} | "
                    f"{r['trials_per_hour']:.3g} |\n")
        f.write(f"\nSeed-style loop (training only): {trials['seed_trials_per_hour']:.3g} trials/hour; "
                f"ratio {trials['ratio']:.2f}×.\n")


def _write_notes(f, results: dict[str, Any]) -> None:
    """One line each on scoring time, fp32 against bf16, and memory growth."""
    f.write("\n")
    for r in results.get("eval") or []:
        f.write(f"- scoring {r['samples']} samples (FID+KID, domain): {r['seconds_uncached']:.1f} s with the "
                f"real statistics computed, {r['seconds_cached']:.1f} s cached\n")
    pr = results.get("precision_check")
    if pr:
        f.write(f"- fp32 vs bf16 (DCGAN 64 px, same seed): |loss_d difference| {pr['first_epoch_abs_diff']:.3g} at "
                f"epoch 1, at most {pr['max_abs_diff']:.3g} over {len(pr['loss_d_fp32'])} epochs\n")
    mem = results.get("memory")
    if mem:
        f.write(f"- memory: host RSS growth after the first trial {mem['rss_growth_mib_after_warmup']:.1f} MiB\n")
    f.write("\n")


def _write_members(f, results: dict[str, Any]) -> None:
    """Runs trained together against one after another, with the goals and where a step's time goes."""
    members = results.get("members")
    if members:
        f.write(f"Runs trained together (one vectorized model of K seeds) vs K runs one after another "
                f"({members['one_after_another']}); {members['threads']} training thread(s); median of interleaved "
                f"rounds of a fixed number of steps after warm-up:\n\n")
        f.write("| case | K | steps × rounds | images/s per member | images/s in all "
                "| one after another, images/s | together / one after another |\n|---|---|---|---|---|---|---|\n")
        for r in members["rows"]:
            f.write(f"| {r['case']} | {r['members']} | {r['steps']} × {r['rounds']} | "
                    f"{r['member_images_per_s']:.1f} | {r['total_images_per_s']:.1f} | "
                    f"{r['one_after_another_images_per_s']:.1f} | {r['ratio']:.2f}× |\n")
        g = members["goals"]
        f.write("\n")
        if "mlp_5_members_ratio" in g:
            f.write(f"- goal, MLP: 5 members at once >= 3x one run's throughput: {g['mlp_5_members_ratio']:.2f}x, "
                    f"{'met' if g['mlp_goal_met'] else 'NOT met'}\n")
        if "mlp_5_members_bound" in g:
            f.write(f"- at most {g['mlp_5_members_bound']:.2f}x if only the matrix products and Adam's update grew "
                    "with K (one run's step plus their growth from K = 1 to 5 in the table below)\n")
        if "dcgan_min_ratio" in g:
            f.write(f"- goal, DCGAN: K together no slower in all than K one after another: at worst "
                    f"{g['dcgan_min_ratio']:.2f}x, {'met' if g['dcgan_goal_met'] else 'NOT met'}\n")
        if members.get("others_cores") is not None:
            f.write(f"- other processes kept {members['others_cores']:.2f} cores busy on average "
                    "during this table\n")
        _write_growing(f, members["rows"])
        f.write("\n")


def _write_packed(f, results: dict[str, Any]) -> None:
    """K trials at once in one process, against one alone."""
    packed = results.get("packed")
    if packed:
        how = "each on a CUDA stream of its own" if packed["streams"] else "in turn (no streams on a CPU)"
        f.write(f"K trials (separate trainers, seeds 0..K-1) stepped {how} from one thread, median of "
                "interleaved rounds:\n\n| case | K | steps × rounds | images/s in all | against one trial | "
                "device MiB per trial |\n|---|---|---|---|---|---|\n")
        for r in packed["rows"]:
            mib = "" if r["device_mib_per_trial"] is None else f"{r['device_mib_per_trial']:.0f}"
            f.write(f"| {r['case']} | {r['trials']} | {r['steps']} × {r['rounds']} | {r['images_per_s']:.1f} | "
                    f"{r['ratio']:.2f}× | {mib} |\n")
        f.write("\n")


def _write_growing(f, rows: list[dict[str, Any]]) -> None:
    """Where a step's time goes: the work that grows with K against the rest (CPU profiles)."""
    rows = [r for r in rows if "growing_s" in r]
    if not rows:
        return
    f.write(f"\nWhere a step of the K-member model goes, ms (ops' own CPU time, profiled over the same steps; "
            f"the rest = the timed step minus those: elementwise ops, autograd, Python):\n\n"
            f"| case | K | step | {' | '.join(GROWING_KINDS)} | rest |\n|---|---|---|{'---|' * len(GROWING_KINDS)}---|\n")
    for r in rows:
        grow = [r["growing_s"][kind] for kind in GROWING_KINDS]
        cells = " | ".join(f"{1e3 * v:.2f}" for v in (r["step_s"], *grow, r["step_s"] - sum(grow)))
        f.write(f"| {r['case']} | {r['members']} | {cells} |\n")


def _write_threads(f, results: dict[str, Any]) -> None:
    """One training process's throughput by threads, with and without load."""
    threads = results.get("threads")
    if threads:
        f.write(f"One training process (batch 32) by threads, with no load added and beside "
                f"{threads['load_busy']}:\n\n| case | added load | threads | images/s | steps timed |\n"
                "|---|---|---|---|---|\n")
        for r in threads["rows"]:
            setting = r["setting"].replace("default", f"{r['threads']} (torch default)")
            f.write(f"| {r['case']} | {'busy loop per core' if r['load'] == 'busy' else 'none'} | {setting} | "
                    f"{r['images_per_s']:.1f} | {r['steps']} |\n")
        rule = threads["rule_threads"] or "torch's default (OMP_NUM_THREADS set)"
        f.write(f"\nRule (`gans.trainer.worker_threads`): {rule} thread(s) per training process"
                + ("" if threads.get("others_cores") is None else
                   f"; other processes kept {threads['others_cores']:.2f} cores busy on average during this "
                   "table (the busy loops are ours, not counted)") + ".\n\n")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--quick", action="store_true", help="small sizes: minutes on a CPU")
    p.add_argument("--toy", action="store_true", help="smallest sizes, to check every path runs (tests); "
                   "the figures mean nothing")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="folder with MNIST/raw and pets/cat")
    p.add_argument("--precision", default="auto", help="our trainer's precision: auto | fp32 | bf16 (default: auto, "
                   "bf16 where the device computes it natively; the seed-style loop always runs fp32)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help="comma-separated sections to run, in this order (default: all)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds after which no further section starts (a short GPU sitting; default: none)")
    p.add_argument("--domain-weights", type=Path, default=None,
                   help="the trials section's domain classifier file (default: trained on DATA_ROOT/pets, cats and "
                        "dogs; the study's device call carries only the cats and this file, .carry-study/domain.pt)")
    p.add_argument("--from-json", type=Path, default=None,
                   help="run nothing: append the Markdown of a run's saved JSON (one stopped midway, e.g. by a "
                        "device call's timeout) to --results")
    p.add_argument("--json", type=Path, default=Path("benchmarks/bench.json"), help="where to write the JSON")
    p.add_argument("--results", type=Path, default=Path("benchmarks/RESULTS.md"), help="Markdown file to append to")
    return p.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for, print each, and record the results (JSON, and appended to the Markdown)."""
    args = parse_args(argv)
    if args.from_json is not None:
        append_results(read_results(args.from_json), args.results)
        print(f"appended {args.from_json} to {args.results}")
        return 0
    args.size = "toy" if args.toy else "quick" if args.quick else "full"
    device = resolve_device(args.device)
    args.precision = resolve_precision(args.precision, device)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise UserError(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if not (Path(args.data_root) / "pets" / "cat").is_dir():
        raise UserError(f"--data-root {args.data_root}: no pets/cat folder there")
    share = CpuShare()
    results = _results_head(args, device)
    results["train"] = []
    t0 = time.perf_counter()

    def save() -> None:
        results["seconds"] = time.perf_counter() - t0
        machine = results["machine"]
        machine["load_average_end"] = os.getloadavg()[0]
        machine["others_cores"] = share.others_cores()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))

    save()  # a run stopped before its first section ends still leaves its head
    _run_sections(args, device, sections, results, save)
    save()
    append_results(results, args.results)
    print(f"\nwrote {args.json} and appended to {args.results} ({results['seconds']:.0f} s)")
    return 0


def read_results(path: Path) -> dict[str, Any]:
    """A run's saved JSON, or a UserError naming `--from-json`."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--from-json {path}: not a benchmark's JSON ({e})") from None
    if not isinstance(results, dict) or not {"date", "device", "size", "machine"} <= set(results):
        raise UserError(f"--from-json {path}: not a benchmark's JSON (no date, device, size, machine)")
    results.setdefault("train", [])
    return results


def _results_head(args, device: torch.device) -> dict[str, Any]:
    """The results before any section: date, device, size, precision, the MFU denominator, the machine."""
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__,
               "torch_threads": torch.get_num_threads(), "niceness": os.nice(0),
               "load_average_start": os.getloadavg()[0]}
    peak, source = device_peak_tflops(device, args.precision)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU {machine['cpu']} ({machine['cores']} cores, {machine['torch_threads']} threads)")
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "device": name, "size": args.size, "precision": args.precision,
            "peak_tflops": peak, "peak_source": source, "datasheet_tflops": datasheet_tflops(device),
            "budget_s": args.budget,
            "torch": torch.__version__, "machine": machine}


def _run_sections(args, device: torch.device, sections: list[str], results: dict[str, Any],
                  save: Callable[[], None]) -> None:
    """Run each section asked for, in the order asked, into `results`, printing its table and saving
    the results after it (a run stopped from outside keeps the finished sections). With `--budget`,
    no section starts after that many seconds: those are listed under `skipped`."""
    t0 = time.perf_counter()
    for section in sections:
        if args.budget is not None and time.perf_counter() - t0 > args.budget:
            results.setdefault("skipped", []).append(section)
            print(f"\n== {section}: skipped, {time.perf_counter() - t0:.0f} s is past --budget {args.budget:g} ==")
            continue
        RUNNERS[section](args, device, results)
        save()


def _train(args, device: torch.device, results: dict[str, Any]) -> None:
    results["train"] = section_train(args, device, results["peak_tflops"])
    print(f"\n== training throughput on {results['device']} ({args.precision}) ==")
    print_table(results["train"], ["case", "seed_images_per_s", "ours_images_per_s", "ours_eager_images_per_s",
                                   "ratio", "tflops", "mfu", "graph_state"])


def _memory(args, device: torch.device, results: dict[str, Any]) -> None:
    results["memory"] = section_memory(args, device)
    print(f"\n== memory == host RSS growth after the first trial: "
          f"{results['memory']['rss_growth_mib_after_warmup']:.1f} MiB")


def _precision(args, device: torch.device, results: dict[str, Any]) -> None:
    results["precision_check"] = pr = section_precision(args, device)
    if pr:
        print(f"\n== fp32 vs bf16 == |loss_d difference| at epoch 1: {pr['first_epoch_abs_diff']:.3g}, "
              f"largest over {len(pr['loss_d_fp32'])} epochs: {pr['max_abs_diff']:.3g}")


def _trials(args, device: torch.device, results: dict[str, Any]) -> None:
    results["trials"] = t = section_trials(args, device)
    print("\n== trials per hour (DCGAN 64 px, same study, study.run) ==")
    print_table(t["rows"], ["workers", "trials", "epochs", "seconds", "trials_per_hour"])
    print(f"seed-style loop: {t['seed_trials_per_hour']:.3g} trials/hour (training only); "
          f"ratio ours ({t['best_workers']} workers) / seed: {t['ratio']:.2f}x")


def _eval(args, device: torch.device, results: dict[str, Any]) -> None:
    results["eval"] = section_eval(args, device)
    print("\n== evaluation (FID+KID, domain extractor) ==")
    print_table(results["eval"], ["samples", "real_images", "seconds_uncached", "seconds_cached"])


def _members(args, device: torch.device, results: dict[str, Any]) -> None:
    results["members"] = m = section_members(args, device)
    print(f"\n== runs trained together vs one after another ({m['threads']} thread(s)) ==")
    print_table(m["rows"], ["case", "members", "member_images_per_s", "total_images_per_s",
                            "one_after_another_images_per_s", "ratio"])
    print("goals:", json.dumps(m["goals"]))


def _packed(args, device: torch.device, results: dict[str, Any]) -> None:
    results["packed"] = section_packed(args, device)
    print("\n== trials packed on one device (K trainers stepped in turn" +
          (", one CUDA stream each) ==" if results["packed"]["streams"] else ") =="))
    print_table(results["packed"]["rows"], ["case", "trials", "images_per_s", "ratio", "device_mib_per_trial"])


def _threads(args, device: torch.device, results: dict[str, Any]) -> None:
    results["threads"] = t = section_threads(args, device)
    if t:
        print(f"\n== one training process by threads (busy load: {t['load_busy']}) ==")
        print_table(t["rows"], ["case", "load", "setting", "threads", "images_per_s", "steps"])
        print(f"rule (gans.trainer.worker_threads): {t['rule_threads']} thread(s) per process")


RUNNERS: dict[str, Callable[[Any, torch.device, dict[str, Any]], None]] = {
    "train": _train, "memory": _memory, "precision": _precision, "trials": _trials, "eval": _eval,
    "members": _members, "packed": _packed, "threads": _threads}
"""section -> what runs it into the results and prints its table"""
SECTIONS = tuple(RUNNERS)
"""every section, in the order a run without --sections takes them"""


if __name__ == "__main__":
    sys.exit(main())
