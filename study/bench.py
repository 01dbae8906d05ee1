"""`python -m study.bench`: measures our trainer against the seed-style loop, in one run on one device.

Sections (each prints rows of a table; all figures go to a JSON file and are appended to
`benchmarks/RESULTS.md`):
- train: images/s of the seed-style loop vs our trainer (DCGAN 64 px on the cat photos at batch 32
  and 128; MLP GAN on MNIST at batch 200), their ratio, achieved TFLOP/s and model-FLOPs utilisation;
- memory: host RSS / device memory after every epoch and every trial (growth = a leak);
- precision: fp32 vs bf16 loss curves on a fixed seed (GPU only).
Not yet measured here (issue 6 remains open): trials per hour at 1/2/4 concurrent workers and
the time to score 2k/10k samples with real statistics cached vs not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gans.cli import main_guard
from gans.config import TrainConfig, UserError
from gans.trainer import Trainer, resolve_device

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, for MFU.
NOMINAL_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0}


def device_peak_tflops(device: torch.device) -> tuple[float, str]:
    """(peak TFLOP/s, where the number comes from) for the MFU denominator."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in NOMINAL_PEAK_TFLOPS.items():
            if key in name:
                return peak, f"{key} dense bf16 data-sheet peak"
    # No data-sheet number: measure a large fp32 matmul, the best this device does in practice.
    n = 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    reps = 5
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12, "measured fp32 matmul peak"


def _sync(device: torch.device) -> None:
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
    """FLOPs of one training step (D step + G step) divided by the batch size."""
    from torch.utils.flop_counter import FlopCounterMode

    idx = torch.arange(trainer.config.batch_size, device=trainer.device)
    real, labels = trainer.data.batch(idx)
    state = trainer.state_dict()  # the counted step must not change the weights being benchmarked
    with FlopCounterMode(display=False) as counter:
        trainer._step(real, labels)
    trainer.load_state_dict(state)
    return counter.get_total_flops() / trainer.config.batch_size


def bench_ours(config: TrainConfig, data, epochs: int) -> dict[str, Any]:
    trainer = Trainer(config, data)
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
    return out


def bench_seed(config: TrainConfig, loader, channels: int, device: torch.device, epochs: int) -> float:
    from study.seed_loop import seed_train

    results = list(seed_train(config.replace(epochs=epochs), loader, channels, str(device)))
    images, seconds = results[-1]
    return images / seconds


def section_train(args, device: torch.device, peak: float) -> list[dict[str, Any]]:
    from gans.data import load_images
    from study.seed_loop import mnist_loader, photo_loader

    cats = str(Path(args.data_root) / "pets" / "cat")
    limit = 256 if args.quick else 2000
    epochs = 2
    rows = []
    cat_data = load_images(cats, image_size=64, limit=limit)
    for batch in (32, 128):
        c = TrainConfig(model="dcgan", data=cats, image_size=64, limit=limit, batch_size=batch, nz=100,
                        ngf=64, ndf=64, augment="jitter-blur", epochs=epochs, device=str(device),
                        precision=args.precision)
        seed = bench_seed(c.replace(precision="fp32"), photo_loader(cats, 64, batch, limit), 3, device, epochs)
        ours = bench_ours(c, cat_data, epochs)
        rows.append(_train_row(f"DCGAN 64px cats, batch {batch}", seed, ours, peak))
    with tempfile.TemporaryDirectory() as tmp:
        # torchvision extracts the raw files next to themselves: work on a copy.
        shutil.copytree(Path(args.data_root) / "MNIST", Path(tmp) / "MNIST")
        mlimit = 12000 if args.quick else 0
        c = TrainConfig(model="mlp", data="mnist", data_root=tmp, image_size=28, limit=mlimit, batch_size=200,
                        nz=100, hidden=256, epochs=epochs, device=str(device), precision=args.precision)
        seed = bench_seed(c.replace(precision="fp32"), mnist_loader(tmp, 200, mlimit), 1, device, epochs)
        ours = bench_ours(c, None, epochs)
        rows.append(_train_row("MLP GAN MNIST, batch 200", seed, ours, peak))
    return rows


def _train_row(name: str, seed: float, ours: dict[str, Any], peak: float) -> dict[str, Any]:
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
    return row


def section_memory(args, device: torch.device) -> dict[str, Any]:
    """Host RSS and device memory after every epoch of several consecutive trials."""
    epochs, trials = (4, 3) if args.quick else (10, 4)
    c = TrainConfig(model="dcgan", data=str(Path(args.data_root) / "pets" / "cat"), image_size=32, limit=512,
                    batch_size=64, ngf=32, ndf=32, epochs=epochs, device=str(device), precision=args.precision)
    from gans.trainer import load_train_data

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
    if device.type != "cuda":
        return None
    c = TrainConfig(model="dcgan", data=str(Path(args.data_root) / "pets" / "cat"), image_size=64, limit=512,
                    batch_size=64, epochs=5 if args.quick else 20, device=str(device))
    curves = {p: [r["loss_d"] for r in Trainer(c.replace(precision=p)).run()] for p in ("fp32", "bf16")}
    diff = [abs(a - b) for a, b in zip(curves["fp32"], curves["bf16"])]
    return {"loss_d_fp32": curves["fp32"], "loss_d_bf16": curves["bf16"], "max_abs_diff": max(diff)}


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
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a") as f:
        if new:
            f.write("# Benchmark results\n\nAppended by `python -m study.bench`; newest last.\n")
        f.write(f"\n## {results['date']} — {results['device']} ({'quick' if results['quick'] else 'full'})\n\n")
        f.write("| case | seed-style images/s | ours images/s | ratio | TFLOP/s | MFU |\n|---|---|---|---|---|---|\n")
        for r in results["train"]:
            f.write(f"| {r['case']} | {r['seed_images_per_s']:.1f} | {r['ours_images_per_s']:.1f} | "
                    f"{r['ratio']:.2f}× | {r['tflops']:.3g} | {100 * r['mfu']:.1f} % |\n")
        f.write(f"\nMFU denominator: {results['peak_tflops']:.3g} TFLOP/s ({results['peak_source']}).\n")
        mem = results.get("memory")
        if mem:
            f.write(f"\n- memory: host RSS growth after the first trial {mem['rss_growth_mib_after_warmup']:.1f} MiB\n")
        f.write("\n")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m study.bench", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--quick", action="store_true", help="small sizes: minutes on a CPU")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="folder with MNIST/raw and pets/cat")
    p.add_argument("--precision", default=None, help="fp32 | bf16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--sections", default="train,memory,precision",
                   help="comma-separated sections to run")
    p.add_argument("--json", type=Path, default=Path("benchmarks/bench.json"), help="where to write the JSON")
    p.add_argument("--results", type=Path, default=Path("benchmarks/RESULTS.md"), help="Markdown file to append to")
    return p.parse_args(argv)


SECTIONS = ("train", "memory", "precision")


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    args.precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise UserError(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if not (Path(args.data_root) / "pets" / "cat").is_dir():
        raise UserError(f"--data-root {args.data_root}: no pets/cat folder there")
    peak, source = device_peak_tflops(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    results: dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               "device": name, "quick": args.quick, "precision": args.precision,
                               "peak_tflops": peak, "peak_source": source, "torch": torch.__version__}
    t0 = time.perf_counter()
    if "train" in sections:
        results["train"] = section_train(args, device, peak)
        print(f"\n== training throughput on {name} ({args.precision}) ==")
        print_table(results["train"], ["case", "seed_images_per_s", "ours_images_per_s", "ratio", "tflops", "mfu"])
    if "memory" in sections:
        results["memory"] = section_memory(args, device)
        print(f"\n== memory == host RSS growth after the first trial: "
              f"{results['memory']['rss_growth_mib_after_warmup']:.1f} MiB")
    if "precision" in sections:
        results["precision"] = section_precision(args, device)
        if results["precision"]:
            print(f"\n== fp32 vs bf16 == max |loss_d difference| per epoch: {results['precision']['max_abs_diff']:.3g}")
    results["train"] = results.get("train", [])
    results["seconds"] = time.perf_counter() - t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    append_results(results, args.results)
    print(f"\nwrote {args.json} and appended to {args.results} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
