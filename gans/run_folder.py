"""One run's folder of outputs, as `python -m gans.train` and the folklore sitting (`study.folklore`)
write it: `config.json`, `samples/epoch_NNNN.png` at evaluated epochs, `records.csv` + `records.json`,
`losses.png`, and `checkpoint.pt` once training completed.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

from PIL import Image

from gans.cli import ensure_writable_dir
from gans.config import TrainConfig
from gans.trainer import Record, Trainer


def save_png(image_uint8, path: Path) -> None:
    """Save a uint8 C x H x W tensor as PNG."""
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
    import matplotlib  # heavy: only a finished run draws its plot

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
