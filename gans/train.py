"""`python -m gans.train`: train a GAN and write its sample grids, loss plot, records and checkpoint.

Writes to `--out DIR`: `samples/epoch_NNNN.png` at evaluated epochs, `losses.png`,
`records.csv` + `records.json`, `config.json`, and `checkpoint.pt` (only once training completed;
`gans.run_folder`).
`--seeds 1,2,3` trains those seeds at once as one vectorized model (`gans.trainer`) and writes one
such folder per seed, `DIR/seed-<s>/`; a seed that diverges is recorded as such while the others go on.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from gans.cli import Parser, add_config_flags, config_overrides, describe, ensure_writable_dir, main_guard
from gans.config import TrainConfig, follow_data
from gans.errors import UserError
from gans.extractors import auto_extractor
from gans.metric_keys import HEADLINE
from gans.metrics import build_evaluator
from gans.run_folder import RunFolder
from gans.trainer import Trainer, load_train_data, resolve_device, use_worker_threads


def parse_seeds(text: str | None) -> list[int]:
    """`--seeds 1,2,3` as integers, each once (None: not given)."""
    if text is None:
        return []
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {text}: give comma-separated integers, e.g. --seeds 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text}: give each seed once, e.g. --seeds 1,2,3")
    return seeds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m gans.train", description=describe(__doc__))
    p.add_argument("--out", required=True, type=Path, help="output folder (required)")
    p.add_argument("--seeds", metavar="S1,S2,...",
                   help="train these seeds at once, one folder each: OUT/seed-<s>/ (default: one run, of --seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(p)
    return p.parse_args(argv)


def train_folders(trainer: Trainer, folders: list[RunFolder], bar=None) -> dict[int, str]:
    """Train every member into its folder; member -> divergence reason for those that diverged."""
    for records in trainer.run_members():
        for i, record in records.items():
            folders[i].add(record, trainer, i)
            if "diverged" in record:
                folders[i].finish(None, i)
        if bar is not None:
            shown = next(r for r in records.values())
            metrics = {m: f"{shown[m]:.4g}" for m in HEADLINE if m in shown}
            bar.set_postfix(loss_d=f"{shown['loss_d']:.3f}", loss_g=f"{shown['loss_g']:.3f}",
                            img_s=f"{shown['images_per_s'] * shown['members']:.0f}", **metrics)
            bar.update()
    for i in trainer.alive:
        folders[i].finish(trainer, i)
    return dict(trainer.diverged)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = TrainConfig(**follow_data(config_overrides(args)))
    if config.metric_names and "extractor" not in config_overrides(args):
        config, notes = auto_extractor(config, resolve_device(config.device))  # a photo folder without labels
        for line in notes:
            print(line, file=sys.stderr)
    seeds = parse_seeds(args.seeds)
    configs = [config.replace(seed=s) for s in seeds] or [config]
    # The metrics' domain classifier reports its held-out accuracy through logging when it is trained.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    out = ensure_writable_dir(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_train_data(config)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    use_worker_threads(1)  # the thread rule of every training process (it says why)
    trainer = Trainer(configs, data, evaluator=build_evaluator(config))
    folders = [RunFolder(out / f"seed-{c.seed}" if seeds else out, c) for c in configs]

    from tqdm import tqdm

    bar = tqdm(total=config.epochs, unit="epoch", disable=args.no_progress, file=sys.stderr,
               desc=f"{config.model} on {Path(config.data).name}" + (f" x {len(configs)} seeds" if seeds else ""))
    diverged = train_folders(trainer, folders, bar)
    bar.close()
    for i, reason in diverged.items():
        print(f"error: seed {configs[i].seed} stopped: {reason}; its records are in {folders[i].out}, "
              f"no checkpoint written", file=sys.stderr)
    if not trainer.alive:
        return 1
    last = folders[trainer.alive[0]].records[-1]
    print(f"done: {config.epochs} epochs of {len(trainer.alive)} run(s), {last['images_per_s'] * last['members']:.0f} "
          f"images/s in all in the last epoch; wrote {out}")
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main())
