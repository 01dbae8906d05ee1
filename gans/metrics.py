"""Sample-quality metrics of a generator or an image set: FID, KID, IS and precision/recall,
computed by `torch_fidelity.calculate_metrics` with the extractor that `gans.extractors` provides.

Owns the metric registry, the real side (cached on disk per data set, split, image size, limit,
extractor and layer; the generated side never is), the generator wrapper (uint8, 3 channels,
uniformly drawn labels for conditional models) and the honest small-sample bookkeeping (every N
used, KID subsets no larger than the samples, a flag when FID has fewer samples than dimensions).
`build_evaluator` is the hook `gans.train` uses.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.utils.data import Dataset
from torch_fidelity import GenerativeModelBase, calculate_metrics

from gans.cache import cache_dir, data_key, read_json, write_json
from gans.config import TrainConfig, UserError
from gans.data import load_images, to_uint8

# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Metric:
    fidelity_flag: str
    """the calculate_metrics switch that computes it: fid | kid | isc | prc"""
    outputs: Mapping[str, str]
    """our record key -> torch-fidelity result key"""
    needs_real: bool


METRICS: dict[str, Metric] = {}


def register_metric(name: str, fidelity_flag: str, outputs: Mapping[str, str], *, needs_real: bool) -> None:
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"metric name must be alphanumeric, got {name!r}")
    if name in METRICS:
        raise ValueError(f"metric {name!r} is already registered")
    if fidelity_flag not in ("fid", "kid", "isc", "prc"):
        raise ValueError(f"metric {name!r}: unknown torch-fidelity metric {fidelity_flag!r}")
    if not outputs:
        raise ValueError(f"metric {name!r}: no outputs")
    METRICS[name] = Metric(fidelity_flag, dict(outputs), needs_real)


register_metric("fid", "fid", {"fid": "frechet_inception_distance"}, needs_real=True)
register_metric("kid", "kid", {"kid": "kernel_inception_distance_mean", "kid_std": "kernel_inception_distance_std"},
                needs_real=True)
register_metric("is", "isc", {"is": "inception_score_mean", "is_std": "inception_score_std"}, needs_real=False)
register_metric("precision", "prc", {"precision": "precision"}, needs_real=True)
register_metric("recall", "prc", {"recall": "recall"}, needs_real=True)

KID_SUBSETS = 100
IS_SPLITS = 10
IS_MIN_SPLIT = 20  # images per IS split, when there are fewer than 10 x 20
PRC_NEIGHBORHOOD = 3


def computable(names: Sequence[str], extractor) -> tuple[str, ...]:
    """The metrics of `names` that `extractor` has a layer for (no IS without a classifier head)."""
    return tuple(m for m in names if METRICS[m].fidelity_flag in extractor.layers)


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names from 'fid,kid,is' (or a sequence), checked against the registry."""
    names = tuple(m.strip() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip())
    if not names:
        raise UserError(f"--metrics: no metric named; choose from {', '.join(METRICS)}")
    for m in names:
        if m not in METRICS:
            raise UserError(f"--metrics: unknown metric {m!r}; choose from {', '.join(METRICS)}")
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------- inputs


def to_rgb_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images as uint8 N x 3 x H x W: floats in [-1, 1] are quantised, gray is tiled to 3 channels."""
    if x.dtype != torch.uint8:
        x = to_uint8(x)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x.contiguous()


class ImageSet(Dataset):
    """A fixed set of uint8 images as torch-fidelity reads them (3 x H x W each); `load` runs on first use."""

    def __init__(self, images: torch.Tensor | None = None, *, load: Callable[[], torch.Tensor] | None = None):
        if (images is None) == (load is None):
            raise ValueError("give images or load, not both")
        self._images = images
        self._load = load

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images = self._load()
        return self._images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_rgb_uint8(self.images[i:i + 1].cpu())[0]


Sampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class GeneratorSource(GenerativeModelBase):
    """A generator as torch-fidelity's input1: noise in, uint8 3-channel images out.

    Conditional models get labels drawn uniformly here, from a seeded generator of their own:
    torch-fidelity 0.4.0's own conditional path (`num_classes > 0`) calls `np.int`, which NumPy
    removed, so torch-fidelity is told the model is unconditional.
    """

    def __init__(self, sample: Sampler, nz: int, num_classes: int, device: torch.device | str, seed: int = 0):
        super().__init__()
        # Kept in a tuple so that nn.Module does not adopt a generator module: torch-fidelity calls
        # .cuda() on its input, which would move the caller's model to the default GPU.
        self._sample = (sample,)
        self._nz = nz
        self.classes = num_classes
        self.device = torch.device(device)
        self._rng = torch.Generator().manual_seed(seed)

    @property
    def z_size(self):
        return self._nz

    @property
    def z_type(self):
        return "normal"

    @property
    def num_classes(self):
        return 0

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        labels = torch.randint(0, max(self.classes, 1), (z.shape[0],), generator=self._rng)
        x = self._sample[0](z.to(self.device), labels.to(self.device))
        return to_rgb_uint8(x).to(z.device)


def sampler_of(generator: torch.nn.Module, precision: str = "fp32") -> Sampler:
    """`sample(z, labels)` of a bare generator module, in eval mode, computed in `precision` (as
    the trainer sampled it, so that a checkpoint scores as its run did)."""
    generator.eval()

    @torch.no_grad()
    def sample(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return generator(z, labels).float()

    return sample


@dataclass(frozen=True)
class RealSet:
    """The real images that metrics compare against: the first `limit` of a data set's split."""

    data: str
    data_root: str
    split: str
    image_size: int
    limit: int = 0

    @property
    def cache_name(self) -> str:
        # torch-fidelity appends "-<extractor>-features-<layer>" / "-<extractor>-stat-fid-<layer>".
        n = f"first{self.limit}" if self.limit else "all"
        return f"real-{data_key(self.data)}-{self.split}-{self.image_size}px-{n}"

    def load(self) -> torch.Tensor:
        return load_images(self.data, data_root=self.data_root, image_size=self.image_size,
                           limit=self.limit, split=self.split).images

    def dataset(self) -> ImageSet:
        """Lazy: decoded only when torch-fidelity has no cached features for it."""
        return ImageSet(load=self.load)

    def count(self, dataset: ImageSet | None = None) -> int:
        """Number of images, remembered on disk beside the features so that a cache hit needs no decoding."""
        meta = cache_dir() / "real" / f"{self.cache_name}.json"
        known = read_json(meta)
        if isinstance(known, dict) and isinstance(known.get("n"), int):
            return known["n"]
        n = len(dataset if dataset is not None else self.dataset())
        write_json(meta, {"n": n, "data": self.data, "split": self.split, "image_size": self.image_size,
                          "limit": self.limit})
        return n


def effective_limit(*limits: int) -> int:
    """The smallest positive limit (0 = no limit)."""
    positive = [n for n in limits if n > 0]
    return min(positive) if positive else 0


def real_set(config: TrainConfig, split: str = "train") -> RealSet:
    """The real side for a training configuration: its training images, at most `num_real` of them."""
    return RealSet(config.data, config.data_root, split, config.image_size,
                   effective_limit(config.limit, config.num_real))


# ---------------------------------------------------------------- computing


def calculate(fake: Dataset | GeneratorSource, real: RealSet | None, extractor, metrics: Sequence[str], *,
              num_samples: int = 2000, kid_subset_size: int = 1000, seed: int = 0,
              device: torch.device | str = "cpu", batch_size: int | None = None) -> dict[str, float | int]:
    """Metrics of `fake` (an image Dataset, or a generator drawing `num_samples` images) against `real`.

    Returns the requested metric values plus every N used: `num_fake`, `num_real`, `kid_subset_size`,
    `kid_subsets`, `is_splits`, `feature_dim`, and `fid_n_below_dim` (1 when FID had fewer samples
    than feature dimensions, which is also warned about).
    """
    names = parse_metrics(metrics)
    specs = [METRICS[m] for m in names]
    flags = {s.fidelity_flag for s in specs}
    extractor.check_metrics(flags)
    device = torch.device(device)
    # A GPU runs the extractor on 256 images at once for the price of a few; a CPU gains nothing.
    batch_size = batch_size or (256 if device.type == "cuda" else 64)
    n_fake = num_samples if isinstance(fake, GenerativeModelBase) else len(fake)
    out: dict[str, float | int] = {"num_fake": n_fake, "feature_dim": extractor.feature_dim}
    kwargs: dict[str, Any] = {
        "input1": fake, "input1_model_num_samples": n_fake,
        "fid": "fid" in flags, "kid": "kid" in flags, "isc": "isc" in flags, "prc": "prc" in flags,
        "cache": True, "cache_root": str(cache_dir() / "fidelity"),
        "rng_seed": seed, "batch_size": batch_size, "cuda": device.type == "cuda",
        # save_cpu_ram: no DataLoader worker processes (and the low-memory precision/recall).
        "verbose": False, "save_cpu_ram": True,
        **extractor.fidelity_kwargs(),
    }
    n_real = None
    if any(s.needs_real for s in specs):
        if real is None:
            raise ValueError(f"metrics {', '.join(names)} need real images")
        real_images = real.dataset()
        n_real = real.count(real_images)
        out["num_real"] = n_real
        kwargs.update(input2=real_images, input2_cache_name=real.cache_name)
    n_min = min(n_fake, n_real) if n_real is not None else n_fake
    if "kid" in flags:
        k = min(kid_subset_size, n_min)
        if k < 2:
            raise UserError(f"--num-samples: KID needs at least 2 generated and 2 real images, "
                            f"got {n_fake} and {n_real}")
        # Subsets as large as both sets are all the same set, reordered: one gives the same value.
        subsets = 1 if k == n_fake == n_real else KID_SUBSETS
        kwargs.update(kid_subset_size=k, kid_subsets=subsets)
        out.update(kid_subset_size=k, kid_subsets=subsets)
    if "isc" in flags:
        # A split's score is exp(KL(p(y|x) || p(y))) within the split: one image gives exactly 1.
        splits = min(IS_SPLITS, max(1, n_fake // IS_MIN_SPLIT))
        kwargs["isc_splits"] = splits
        out["is_splits"] = splits
    if "prc" in flags:
        if n_min <= PRC_NEIGHBORHOOD:
            raise UserError(f"--num-samples: precision/recall need more than {PRC_NEIGHBORHOOD} generated and "
                            f"real images, got {n_fake} and {n_real}")
        kwargs["prc_neighborhood"] = PRC_NEIGHBORHOOD
    if "fid" in flags:
        below = n_min < extractor.feature_dim
        out["fid_n_below_dim"] = int(below)
        if below:
            warnings.warn(
                f"FID from {n_fake} generated and {n_real} real images, fewer than its {extractor.feature_dim} "
                f"feature dimensions: the covariances are rank-deficient and FID is biased upward; compare FIDs "
                f"only at equal N, or trust KID",
                stacklevel=2,
            )
    # Evaluation must not shift the training run's random stream (DataLoader draws a seed from it).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), (
        torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    ):
        result = calculate_metrics(**kwargs)
    for s in specs:
        for ours, theirs in s.outputs.items():
            out[ours] = float(result[theirs])
    return out


# ---------------------------------------------------------------- the training hook


# Every run and every epoch draws its evaluation samples (noise, labels, KID subsets) with this seed,
# whatever the training seed: two evaluations then differ by the generators alone. Re-scoring the
# same generator with other seeds measures the evaluation's own noise.
EVAL_SEED = 0


def build_evaluator(config: TrainConfig) -> Callable[..., dict[str, float | int]] | None:
    """The per-epoch evaluator of a run: metrics of `trainer.sample` against the run's training images
    (None when `config.metrics` names none).
    `evaluate(trainer, seed=k)` draws another set of samples (k != EVAL_SEED) from the same generator.

    The extractor is trained or located here, once (the callable carries it as `.extractor`); the
    real side's features are computed at the first evaluation and cached on disk for every later one
    (and every later run).
    """
    from gans.extractors import build_extractor
    from gans.trainer import resolve_device

    if not config.metric_names:
        return None
    names = parse_metrics(config.metrics)
    device = resolve_device(config.device)
    extractor = build_extractor(config, device)
    extractor.check_metrics({METRICS[m].fidelity_flag for m in names})
    real = real_set(config) if any(METRICS[m].needs_real for m in names) else None

    def evaluate(trainer, seed: int = EVAL_SEED) -> dict[str, float | int]:
        source = GeneratorSource(trainer.sample, trainer.config.nz, trainer.data.num_classes, trainer.device,
                                 seed=seed)
        return calculate(source, real, extractor, names, num_samples=config.num_samples,
                         kid_subset_size=config.kid_subset_size, seed=seed, device=trainer.device)

    evaluate.extractor = extractor  # type: ignore[attr-defined]
    return evaluate
