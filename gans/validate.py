"""Validation of a feature extractor (Heusel et al. 2017, Fig. 1): held-out real images against
training images give a small FID/KID, and every disturbance of `gans.disturb` raises both strictly at
every level. Prints a Markdown table (and writes it with `--out`), with the extractor's identity,
every N, and the CPU/GPU seconds per 1,000 images it measured.

    python -m gans.validate --extractor inception --data mnist --data ../shared/data/pets/cat \\
        --n 500 --data-root ../shared/data --out docs/results/validation/inception.md

A built-in data set compares its first N test images (disturbed) with its first N training images;
a folder compares images N+1..2N (disturbed) with its first N.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from gans.cli import Parser, main_guard
from gans.config import BUILTIN_DATA, TrainConfig
from gans.data import load_images
from gans.disturb import DISTURBANCES, LEVELS, disturb
from gans.errors import UserError
from gans.extractors import build_extractor, check_extractor_name
from gans.metrics import ImageSet, RealSet, calculate
from gans.trainer import resolve_device


@dataclass(frozen=True)
class Case:
    """One data set's validation: reference images (`real`) and as many other clean images."""

    data: str
    real: object  # gans.metrics.RealSet
    clean: torch.Tensor


def case(data: str, data_root: str, n: int, image_size: int) -> Case:
    if data in BUILTIN_DATA:
        clean = load_images(data, data_root=data_root, image_size=image_size, split="test", limit=n).images
        return Case(data, RealSet(data, data_root, "train", image_size, n), clean)
    images = load_images(data, image_size=image_size, limit=2 * n).images
    if len(images) < 2 * n:
        raise UserError(f"--data {data}: {len(images)} images, fewer than 2 x --n {n}")
    return Case(data, RealSet(data, data_root, "train", image_size, n), images[n:2 * n])


def disturbance_rows(extractor, c: Case, metrics=("fid", "kid"), device="cpu",
                     disturbances=tuple(DISTURBANCES), levels=(0, *LEVELS)) -> list[dict]:
    """One row per disturbance and level: the metrics of the disturbed clean images against `c.real`,
    with the seconds they took (level 0, the clean images themselves, is scored once and shared)."""
    def score(images: torch.Tensor) -> dict:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FID below the feature dimension: N is in the output
            m = calculate(ImageSet(images), c.real, extractor, metrics, num_samples=len(images),
                          kid_subset_size=len(images), device=device)
        return {**m, "seconds": time.perf_counter() - t0}

    clean = score(c.clean) if 0 in levels else None
    return [{"data": c.data, "disturbance": name, "level": level, "extractor": extractor.name,
             "extractor_sha256": extractor.sha256,
             **(clean if level == 0 else score(disturb(c.clean, name, level, seed=1)))}
            for name in disturbances for level in levels]


def rises_strictly(rows: list[dict], metric: str) -> dict[tuple[str, str], bool]:
    """(data, disturbance) -> whether `metric` rises strictly from each level to the next."""
    out: dict[tuple[str, str], bool] = {}
    for key in {(r["data"], r["disturbance"]) for r in rows}:
        values = [r[metric] for r in sorted(rows, key=lambda r: r["level"]) if (r["data"], r["disturbance"]) == key]
        out[key] = all(a < b for a, b in zip(values, values[1:]))
    return out


def label(data: str) -> str:
    return data if data in BUILTIN_DATA else Path(data).name


def markdown(rows: list[dict], device: str) -> str:
    """The table of `disturbance_rows` (of one or more data sets, each row naming its extractor),
    with every N, and the seconds per 1,000 disturbed images it took."""
    levels = sorted({r["level"] for r in rows})
    fid_ok, kid_ok = rises_strictly(rows, "fid"), rises_strictly(rows, "kid")
    timed = [r for r in rows if r["level"] > 0]  # the first clean set also computes the real side
    per_1000 = 1000 * sum(r["seconds"] for r in timed) / sum(r["num_fake"] for r in timed)
    used = dict.fromkeys((label(r["data"]), r["extractor"], r["extractor_sha256"], r["num_fake"], r["num_real"])
                         for r in rows)
    lines = [
        "Extractor per data set: " + "; ".join(
            f"{data}: `{name}` (weights SHA-256 `{sha[:16]}…`), N = {nf} disturbed held-out images against {nr} "
            f"training images" for data, name, sha, nf, nr in used) + ". "
        f"FID / KID × 1000; {per_1000:.0f} s per 1,000 disturbed images on {device}. "
        "Written by `python -m gans.validate`.",
        "",
        "| data set | disturbance | " + " | ".join(f"level {lv}" for lv in levels) + " | rises strictly |",
        "| --- | --- | " + " | ".join("---" for _ in levels) + " | --- |",
    ]
    for data, name in dict.fromkeys((r["data"], r["disturbance"]) for r in rows):
        cells = {r["level"]: f"{r['fid']:.1f} / {1000 * r['kid']:.2f}" for r in rows
                 if (r["data"], r["disturbance"]) == (data, name)}
        ok = "yes" if fid_ok[(data, name)] and kid_ok[(data, name)] else "**no**"
        lines.append(f"| {label(data)} | {name} | " + " | ".join(cells.get(lv, "") for lv in levels) + f" | {ok} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m gans.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--extractor", default=TrainConfig.extractor)
    p.add_argument("--data", action="append", help="mnist | fashion-mnist | FOLDER (repeatable; default mnist)")
    p.add_argument("--n", type=int, default=1000, help="images per side")
    p.add_argument("--data-root", default=TrainConfig.data_root)
    p.add_argument("--domain-data", default="", help="labelled data set of the domain classifier")
    p.add_argument("--inception-weights", default="")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="", help="write the Markdown table here (and the rows as JSON beside it)")
    args = p.parse_args(argv)
    if args.n < 2:
        raise UserError(f"--n {args.n}: must be at least 2")
    return args


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_extractor_name(args.extractor)
    device = resolve_device(args.device)
    rows: list[dict] = []
    for data in args.data or ["mnist"]:
        size = 28 if data in BUILTIN_DATA else 64
        config = TrainConfig(data=data, data_root=args.data_root, image_size=size,
                             model="mlp" if size == 28 else "dcgan", extractor=args.extractor,
                             domain_data=args.domain_data, inception_weights=args.inception_weights)
        extractor = build_extractor(config, device)
        c = case(data, args.data_root, args.n, size)
        case_rows = disturbance_rows(extractor, c, device=device)
        took = case_rows[0]["seconds"] + sum(r["seconds"] for r in case_rows if r["level"])
        print(f"{data}: {took:.0f} s", file=sys.stderr, flush=True)
        rows += case_rows
    text = markdown(rows, str(device))
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
