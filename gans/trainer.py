"""The training loop: the seeds' loop done right, yielding one record per epoch.

The loop knows nothing of Optuna or MLflow. A consumer iterates `Trainer.run()`; stopping early is
simply stopping the iteration (or calling `.close()` on it). Losses are accumulated on the device and
read back once per epoch, so there is no host sync per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from gans.augment import get_augment
from gans.cache import atomic_write
from gans.config import TrainConfig, UserError, first_line
from gans.data import ImageData, load_images, to_uint8
from gans.models import build_models

Record = dict[str, Any]
# Called at evaluated epochs with the trainer; returns metric name -> value (and sample counts).
Evaluator = Callable[["Trainer"], dict[str, Any]]

CHECKPOINT_FORMAT = 1


class Diverged(RuntimeError):
    """A loss became NaN or infinite; `reason` says which and when."""

    def __init__(self, reason: str, epoch: int):
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available on this machine")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """`auto` -> bf16 on devices with native bf16 arithmetic (CUDA compute capability 8.0 and up; CPUs with
    AVX512-BF16 or AMX, where oneDNN runs these convolutions and matmuls about 1.4-1.6x faster than in
    fp32 with the same losses to three decimals), else fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        # is_bf16_supported() also says yes where bf16 is only emulated (T4, V100): slower than fp32.
        return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp32"
    if device.type == "cpu":
        native = (getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                  or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
        return "bf16" if native else "fp32"
    return "fp32"


def load_train_data(config: TrainConfig) -> ImageData:
    """The training images `config` asks for, on the CPU, decoded once per process and shared by its
    trials (nothing writes to an ImageData)."""
    return _train_images(config.data, config.data_root, config.image_size, config.limit)


@functools.lru_cache(maxsize=2)
def _train_images(data: str, data_root: str, image_size: int, limit: int) -> ImageData:
    return load_images(data, data_root=data_root, image_size=image_size, limit=limit, split="train")


def _adam(params, lr: float, beta1: float) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for the device (CUDA; CPU from torch 2.4): a
    small GAN's step is dominated by per-op overhead, and fusing the update made the MLP GAN at batch
    32 about 1.5x faster on this project's CPU."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), fused=True)
    except RuntimeError:  # older torch: no fused CPU kernel
        return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999))


class Trainer:
    """Owns the models, optimizers and data of one run; `run()` trains and yields epoch records."""

    def __init__(self, config: TrainConfig, data: ImageData | None = None, *,
                 evaluator: Evaluator | None = None, grid_size: int = 64):
        self.config = config
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.augment = get_augment(config.augment)
        data = data if data is not None else load_train_data(config)
        if len(data) < config.batch_size:
            raise UserError(
                f"--batch-size {config.batch_size}: only {len(data)} training images, fewer than one batch"
            )
        self.data = data.to(self.device)
        torch.manual_seed(config.seed)
        # cuDNN's NHWC kernels are the fast ones for these convolutions (tensor cores); CPUs gain nothing.
        self._memory_format = (torch.channels_last if self.device.type == "cuda" and config.model.endswith("dcgan")
                               else torch.contiguous_format)
        self.generator, self.discriminator = (
            m.to(self.device, memory_format=self._memory_format)
            for m in build_models(config, data.channels, data.num_classes)
        )
        self.opt_g = _adam(self.generator.parameters(), config.lr_g, config.beta1)
        self.opt_d = _adam(self.discriminator.parameters(), config.lr_d, config.beta1)
        self.fixed_z = torch.randn(grid_size, config.nz, device=self.device)
        self.fixed_labels = torch.arange(grid_size, device=self.device) % data.num_classes
        self.evaluator = evaluator
        self.epoch = 0  # epochs completed
        self._real_target = torch.full((config.batch_size,), config.real_label, device=self.device)
        self._fake_target = torch.full((config.batch_size,), config.fake_label, device=self.device)
        self._ones = torch.ones(config.batch_size, device=self.device)

    # ------------------------------------------------------------------ training

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data) // self.config.batch_size

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _labels(self, n: int) -> torch.Tensor:
        return torch.randint(0, self.data.num_classes, (n,), device=self.device)

    def _step(self, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One D step and one G step; returns (loss_d, loss_g, D(x), D(G(z))) on the device."""
        c, g, d = self.config, self.generator, self.discriminator
        n = real.shape[0]
        aug = self.augment.fn
        fake_labels = self._labels(n)
        z = torch.randn(n, c.nz, device=self.device)
        with self._autocast():
            fake = g(z, fake_labels)
            real_in = aug(real)
            fake_in = aug(fake.detach()) if self.augment.differentiable else fake.detach()
            logit_real = d(real_in, labels)
            logit_fake = d(fake_in, fake_labels)
            loss_d = (F.binary_cross_entropy_with_logits(logit_real.float(), self._real_target)
                      + F.binary_cross_entropy_with_logits(logit_fake.float(), self._fake_target))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        with self._autocast():
            # Non-saturating loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z))).
            logit_gen = d(aug(fake) if self.augment.differentiable else fake, fake_labels)
            loss_g = F.binary_cross_entropy_with_logits(logit_gen.float(), self._ones)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return torch.stack([
            loss_d.detach(), loss_g.detach(),
            torch.sigmoid(logit_real.detach().float()).mean(), torch.sigmoid(logit_fake.detach().float()).mean(),
        ])

    def is_eval_epoch(self, epoch: int) -> bool:
        k = self.config.eval_every
        return epoch == self.config.epochs or bool(k and epoch % k == 0)

    def run(self, on_step: Callable[[int, int, int], None] | None = None) -> Iterator[Record]:
        """Train from the current epoch to `config.epochs`, yielding one record per epoch.
        `on_step(epoch, step, steps_per_epoch)` is called after every optimizer step (a host-side
        count: it reads nothing from the device).

        Raises `Diverged` when a loss turns NaN/inf (checked once per epoch, at the one host sync).
        """
        c = self.config
        b, steps = c.batch_size, self.steps_per_epoch
        self.generator.train()
        self.discriminator.train()
        while self.epoch < c.epochs:
            epoch = self.epoch + 1
            t0 = time.perf_counter()
            totals = torch.zeros(4, device=self.device)
            perm = torch.randperm(len(self.data), device=self.device)
            for i in range(steps):
                real, labels = self.data.batch(perm[i * b:(i + 1) * b])
                totals += self._step(real.contiguous(memory_format=self._memory_format), labels)
                if on_step is not None:
                    on_step(epoch, i + 1, steps)
            loss_d, loss_g, d_real, d_fake = (totals / steps).tolist()  # the epoch's one sync
            seconds = time.perf_counter() - t0
            self.epoch = epoch
            record: Record = {
                "epoch": epoch, "loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
                "seconds": seconds, "images_per_s": steps * b / seconds,
            }
            for name in ("loss_d", "loss_g"):
                if not math.isfinite(record[name]):
                    raise Diverged(f"{name} became {record[name]} at epoch {epoch}", epoch)
            record["evaluated"] = self.is_eval_epoch(epoch)
            if record["evaluated"] and self.evaluator is not None:
                t1 = time.perf_counter()
                record.update(self.evaluator(self))
                record["eval_seconds"] = time.perf_counter() - t1
            yield record

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generator output in [-1, 1] for noise `z` (eval mode: BatchNorm running stats, no dropout)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            with self._autocast():
                return self.generator(z, labels if labels is not None else self._labels(z.shape[0])).float()
        finally:
            self.generator.train(was_training)

    def grid(self) -> torch.Tensor:
        """Sample grid of the fixed noise as a uint8 C x H x W image (rows of 8)."""
        from torchvision.utils import make_grid

        x = self.sample(self.fixed_z, self.fixed_labels)
        grid = make_grid(x.cpu(), nrow=8, padding=2, pad_value=-1)
        return to_uint8(grid[: x.shape[1]])  # make_grid tiles gray to 3 channels; keep gray gray

    # ------------------------------------------------------------------ checkpoints

    @property
    def resolved(self) -> dict[str, str]:
        """What `device="auto"` and `precision="auto"` became on this machine, and the torch that ran it:
        a checkpoint scored elsewhere is scored in the precision it was trained in."""
        # str(): a TorchVersion would not load with weights_only=True.
        return {"device": self.device.type, "precision": self.precision, "torch": str(torch.__version__)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "epoch": self.epoch,
            "channels": self.data.channels,
            "class_names": list(self.data.class_names),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "fixed_z": self.fixed_z,
            "resolved": self.resolved,
            "rng_cpu": torch.get_rng_state(),
            # Restoring both generators makes a resumed run continue exactly where it stopped.
            **({"rng_cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.fixed_z = state["fixed_z"].to(self.device)
        self.epoch = int(state["epoch"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write(path, lambda f: torch.save(self.state_dict(), f))  # never a half-written checkpoint


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by `Trainer.save`, loaded with `weights_only=True`."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint {path}: file not found") from None
    except Exception as e:
        raise UserError(f"checkpoint {path}: not a readable checkpoint ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"checkpoint {path}: not a gan-study checkpoint")
    return state


def generator_from_checkpoint(state: dict[str, Any], device: str | torch.device = "cpu"):
    """(config, generator in eval mode, number of classes) rebuilt from a loaded checkpoint."""
    config = TrainConfig(**state["config"])
    num_classes = len(state["class_names"])
    g, _ = build_models(config, state["channels"], num_classes)
    g.load_state_dict(state["generator"])
    return config, g.to(device).eval(), num_classes
