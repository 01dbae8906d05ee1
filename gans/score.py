"""`python -m gans.score`: FID / KID / IS of a folder of images or a `gans.train` checkpoint against
real images; prints one JSON object (metric values, every N used, the extractor).

    python -m gans.score --real mnist --fake samples/ --extractor domain --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from pathlib import Path

from gans.cli import Parser, add_config_flags, config_overrides, describe, main_guard
from gans.config import IMAGE_SIZES, TrainConfig
from gans.data import BUILTIN, IMAGE_EXTENSIONS, load_images
from gans.errors import UserError
from gans.extractors import auto_extractor, build_extractor, check_extractor_name
from gans.metrics import (GeneratorSource, ImageSet, RealSet, calculate, computable, effective_limit, parse_metrics,
                          sampler_of)
from gans.trainer import generator_from_checkpoint, load_checkpoint, resolve_device, resolve_precision

DEFAULT_METRICS = "fid,kid,is"
# The TrainConfig fields that mean something when scoring; the others are not offered as flags.
SCORE_FIELDS = ("extractor", "metrics", "num_samples", "data_root", "image_size", "limit", "num_real",
                "kid_subset_size", "domain_data", "inception_weights", "seed", "device")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(
        prog="python -m gans.score", description=describe(__doc__),
        epilog="With a folder as --fake, --num-samples caps the images read (default: all of them) and "
               "--image-size defaults to the size of its images; with a checkpoint, both come from the checkpoint "
               "unless given.",
    )
    p.add_argument("--real", required=True, help="real images: mnist | fashion-mnist | PATH of an image folder")
    p.add_argument("--fake", required=True, type=Path,
                   help="generated images: a folder of images, or a checkpoint.pt written by gans.train")
    p.add_argument("--split", choices=("train", "test"), default="train",
                   help="split of mnist / fashion-mnist behind the real statistics (default: train)")
    skip = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in SCORE_FIELDS]
    add_config_flags(p, defaults=TrainConfig(metrics=DEFAULT_METRICS), skip=skip)
    return p.parse_args(argv)


def folder_image_size(folder: Path) -> int:
    """Side of the (square) images in `folder`, read from its first image."""
    from PIL import Image

    first = next((p for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS), None)
    if first is None:
        raise UserError(f"--fake {folder}: no images in this folder")
    try:
        with Image.open(first) as im:
            w, h = im.size
    except OSError as e:
        raise UserError(f"--fake {first}: not a readable image ({e})") from None
    if w != h or w not in IMAGE_SIZES:
        raise UserError(f"--image-size: the images in {folder} are {w}x{h} px; pass --image-size "
                        f"{', '.join(map(str, IMAGE_SIZES))} to score them resized to that size")
    return w


def _renamed(e: UserError, flag: str) -> UserError:
    """A data-loading error (worded for --data) reworded for this CLI's flag."""
    return UserError(str(e).replace("--data ", f"{flag} ", 1))


def score(args: argparse.Namespace) -> dict:
    """Score `--fake` (a checkpoint's generator or a folder of images) against `--real`: the values, and
    what gave them (extractor, image size, seconds)."""
    over = config_overrides(args)
    chosen = "metrics" in over
    over.setdefault("metrics", DEFAULT_METRICS)
    metrics = parse_metrics(over["metrics"])
    check_extractor_name(over.get("extractor", TrainConfig.extractor))
    if args.real not in BUILTIN and not Path(args.real).is_dir():
        raise UserError(f"--real {args.real}: neither mnist, fashion-mnist nor a folder")
    fake_path: Path = args.fake
    if not fake_path.exists():
        raise UserError(f"--fake {fake_path}: not found")
    state, ckpt = _fake_checkpoint(fake_path) if fake_path.is_file() else (None, None)
    config = _score_config(args.real, fake_path, ckpt, over)
    device = resolve_device(config.device)
    if "extractor" not in over:  # a photo folder without labelled data: Inception, not a guessed classifier
        config, notes = auto_extractor(config, device)
        for line in notes:
            print(line, file=sys.stderr)

    t0 = time.perf_counter()
    extractor = build_extractor(config, device)
    if not chosen:  # the defaults this extractor computes (no IS without a classifier head)
        metrics = computable(metrics, extractor)
    fake, num_samples, generated = _fake_source(fake_path, state, ckpt, config, over, device)
    real = RealSet(config.data, config.data_root, args.split, config.image_size,
                   effective_limit(config.limit, config.num_real))
    try:
        out = calculate(fake, real, extractor, metrics, num_samples=num_samples,
                        kid_subset_size=config.kid_subset_size, seed=config.seed, device=device)
    except UserError as e:
        raise _renamed(e, "--real") from None
    out.update(generated)
    out.update(extractor=extractor.kind, extractor_name=extractor.name, extractor_sha256=extractor.sha256,
               **extractor.info,
               image_size=config.image_size, seconds=round(time.perf_counter() - t0, 2))
    return out


def _fake_checkpoint(path: Path) -> tuple[dict, TrainConfig]:
    """The checkpoint `--fake` names, and the config it was trained with."""
    try:
        state = load_checkpoint(path)
    except UserError as e:
        # Unpickling errors run over several lines; the first says enough.
        raise UserError(f"--fake {str(e).splitlines()[0]}") from None
    return state, TrainConfig(**state["config"])


def _score_config(real: str, fake_path: Path, ckpt: TrainConfig | None, over: dict) -> TrainConfig:
    """The config of the scoring, its image size the checkpoint's (`ckpt`) or the fake folder's; sets
    `over["image_size"]`."""
    if ckpt is not None:
        if over.get("image_size", ckpt.image_size) != ckpt.image_size:
            raise UserError(f"--image-size {over['image_size']}: the checkpoint generates {ckpt.image_size} px images")
        over["image_size"] = ckpt.image_size
        model = ckpt.model
    else:
        if "image_size" not in over:  # not setdefault: it would read (and refuse) the folder's size anyway
            over["image_size"] = folder_image_size(fake_path)
        model = "mlp"  # only to make the configuration valid at every image size; nothing is trained
    return TrainConfig(data=real, model=model, **over)


def _fake_source(fake_path: Path, state: dict | None, ckpt: TrainConfig | None, config: TrainConfig, over: dict,
                 device) -> tuple[object, int, dict]:
    """The fake images to score (a checkpoint's generator, or the folder's images), how many, and for a
    generator the precision it samples in and the device it was trained on."""
    if state is not None:
        _, generator, num_classes = generator_from_checkpoint(state, device)
        # In the precision it was trained in (checkpoints from before "resolved" was recorded: resolved here).
        precision = state.get("resolved", {}).get("precision") or resolve_precision(ckpt.precision, device)
        fake = GeneratorSource(sampler_of(generator, precision), ckpt.nz, num_classes, device, seed=config.seed,
                               num_samples=config.num_samples)
        return fake, config.num_samples, {"precision": precision,
                                          "trained_on": state.get("resolved", {}).get("device", "?")}
    try:
        images = load_images(str(fake_path), image_size=config.image_size,
                             limit=config.num_samples if "num_samples" in over else 0).images
    except UserError as e:
        raise _renamed(e, "--fake") from None
    return ImageSet(images), len(images), {}


@main_guard
def main(argv: list[str] | None = None) -> int:
    # The domain classifier reports its held-out accuracy through logging when it is trained.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = score(args)
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"warning: {w.message}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
