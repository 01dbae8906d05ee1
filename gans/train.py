"""`python -m gans.train`: train one GAN and write its sample grids, loss plot, records and checkpoint.

Writes to `--out DIR`: `samples/epoch_NNNN.png` at evaluated epochs, `losses.png`,
`records.csv` + `records.json`, `config.json`, and `checkpoint.pt` (only once training completed).
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

from gans.cli import add_config_flags, config_overrides, main_guard
from gans.config import TrainConfig, UserError, follow_data
from gans.trainer import Diverged, Record, Trainer, load_train_data


def ensure_writable_dir(path: Path, flag: str = "--out") -> Path:
    """Create `path` if needed and prove it writable, or raise a UserError naming `flag`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write there ({e.strerror or e})") from None
    return path


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gans.train", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(p)
    return p.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = TrainConfig(**follow_data(config_overrides(args)))
    # The metrics' domain classifier reports its held-out accuracy through logging when it is trained.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    out = ensure_writable_dir(args.out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_train_data(config)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    from gans.metrics import build_evaluator  # torch-fidelity is imported only when scoring

    trainer = Trainer(config, data, evaluator=build_evaluator(config))
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1))
    (out / "samples").mkdir(exist_ok=True)
    (out / "checkpoint.pt").unlink(missing_ok=True)  # a stale one would pass for this run's

    from tqdm import tqdm

    records: list[Record] = []
    bar = tqdm(total=config.epochs, unit="epoch", disable=args.no_progress, file=sys.stderr,
               desc=f"{config.model} on {Path(config.data).name}")
    try:
        for record in trainer.run():
            records.append(record)
            if record["evaluated"]:
                save_png(trainer.grid(), out / "samples" / f"epoch_{record['epoch']:04d}.png")
            shown = {m: f"{record[m]:.4g}" for m in ("fid", "kid", "is") if m in record}
            bar.set_postfix(loss_d=f"{record['loss_d']:.3f}", loss_g=f"{record['loss_g']:.3f}",
                            img_s=f"{record['images_per_s']:.0f}", **shown)
            bar.update()
    except Diverged as e:
        bar.close()
        write_records(records, out)
        print(f"error: training stopped: {e.reason}; records so far are in {out}, no checkpoint written",
              file=sys.stderr)
        return 1
    bar.close()
    write_records(records, out)
    plot_losses(records, out / "losses.png")
    trainer.save(out / "checkpoint.pt")
    last = records[-1]
    print(f"done: {config.epochs} epochs, {last['images_per_s']:.0f} images/s in the last epoch; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
