"""`python -m gans.train`: train a GAN and write its sample grids, loss plot, records and checkpoint.

Writes to `--out DIR`: `samples/epoch_NNNN.png` at evaluated epochs, `losses.png`,
`records.csv` + `records.json`, `config.json`, and `checkpoint.pt` (only once training completed).
`--seeds 1,2,3` trains those seeds at once as one vectorized model (`gans.trainer`) and writes one
such folder per seed, `DIR/seed-<s>/`; a seed that diverges is recorded as such while the others go on.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

from gans.cli import Parser, add_config_flags, config_overrides, describe, ensure_writable_dir, main_guard
from gans.config import TrainConfig, UserError, follow_data
from gans.extractors import auto_extractor
from gans.metrics import build_evaluator
from gans.trainer import Record, Trainer, load_train_data, resolve_device, use_worker_threads


def save_png(image_uint8, path: Path) -> None:
    """Save a uint8 C x H x W tensor as PNG."""
    from PIL import Image

    arr = image_uint8.permute(1, 2, 0).cpu().numpy()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(path)


def write_records(records: list[Record], out: Path) -> None:
    (out / "records.json").write_text(json.dumps(records, indent=1))
    keys = list(dict.fromkeys(k for r in records for k in r))
    with open(out / "records.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(records)


def plot_losses(records: list[Record], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [r["loss_d"] for r in records], label="loss_d")
    ax1.plot(epochs, [r["loss_g"] for r in records], label="loss_g")
    ax1.set(xlabel="epoch", ylabel="BCE loss (mean per step)", title="Losses")
    ax1.legend()
    ax2.plot(epochs, [r["d_real"] for r in records], label="D(x)")
    ax2.plot(epochs, [r["d_fake"] for r in records], label="D(G(z))")
    ax2.set(xlabel="epoch", ylabel="mean probability", ylim=(0, 1), title="Discriminator outputs")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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


class RunFolder:
    """The outputs of one run (one member of the trainer) in one folder."""

    def __init__(self, out: Path, config: TrainConfig):
        self.out = ensure_writable_dir(out)
        self.records: list[Record] = []
        (out / "config.json").write_text(json.dumps(asdict(config), indent=1))
        (out / "samples").mkdir(exist_ok=True)
        (out / "checkpoint.pt").unlink(missing_ok=True)  # a stale one would pass for this run's

    def add(self, record: Record, trainer: Trainer, member: int) -> None:
        self.records.append(record)
        if record.get("evaluated"):
            save_png(trainer.grid(member), self.out / "samples" / f"epoch_{record['epoch']:04d}.png")

    def finish(self, trainer: Trainer | None, member: int) -> None:
        """Records and loss plot; the checkpoint only when the run completed (`trainer` given)."""
        write_records(self.records, self.out)
        if self.records:
            plot_losses(self.records, self.out / "losses.png")
        if trainer is not None:
            trainer.save(self.out / "checkpoint.pt", member)


def train_folders(trainer: Trainer, folders: list[RunFolder], bar=None) -> dict[int, str]:
    """Train every member into its folder; member -> divergence reason for those that diverged."""
    for records in trainer.run_members():
        for i, record in records.items():
            folders[i].add(record, trainer, i)
            if "diverged" in record:
                folders[i].finish(None, i)
        if bar is not None:
            shown = next(r for r in records.values())
            metrics = {m: f"{shown[m]:.4g}" for m in ("fid", "kid", "is") if m in shown}
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
