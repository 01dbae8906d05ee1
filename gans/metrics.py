"""Sample-quality metrics of a generator or an image set: FID, KID, IS and precision/recall,
computed by `torch_fidelity.calculate_metrics` with the extractor that `gans.extractors` provides,
or, for FID and KID during training, by this module's own float64 torch math on the device.

Owns the real side (cached on disk per data set, split, image size, limit,
extractor and layer; the generated side never is), the generator wrapper (uint8, 3 channels,
uniformly drawn labels for conditional models), the honest small-sample bookkeeping (every N
used, KID subsets no larger than the samples, a flag when FID has fewer samples than dimensions),
FID and KID of feature matrices (`fid_statistics`, `frechet_distance`, `FidReference`,
`kernel_inception_distance`: torch-fidelity's numbers without its CPU round trip) and
`build_evaluator`, the hook the trainer calls at evaluated epochs (which, beside a held-out
reference, also computes the `gans.diagnostics` of overfitting and memorisation). Which metrics exist
and the keys they are recorded under: `gans.metric_keys`.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_fidelity import GenerativeModelBase, calculate_metrics
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gans.cache import atomic_write, cache_dir, data_key, read_json, write_json
from gans.config import TrainConfig
from gans.data import load_images, to_uint8
from gans.diagnostics import DIAG_REAL, diagnostics
from gans.errors import UserError
from gans.extractors import build_extractor
from gans.metric_keys import FLOOR, METRICS, OWN_FLAGS, TRAIN, train_key
from gans.trainer import Stack, resolve_device

# ---------------------------------------------------------------- registry (the metrics: gans.metric_keys)

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


def eval_noise(n: int, nz: int, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise and labels (CPU) of an evaluation of `n` samples drawn with `seed`: the one rule the
    per-epoch evaluator and `GeneratorSource` (`gans.score` of a checkpoint) share, so that a
    checkpoint scores as its run did."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, nz, generator=rng)
    return z, torch.randint(0, max(num_classes, 1), (n,), generator=rng)


class GeneratorSource(GenerativeModelBase):
    """A generator as torch-fidelity's input1: `num_samples` uint8 3-channel images, in batches.

    Its noise and labels are `eval_noise`'s, served in order; the noise torch-fidelity draws (from
    its own NumPy stream) is only counted. Conditional models get their labels here too: torch-fidelity
    0.4.0's own conditional path (`num_classes > 0`) calls `np.int`, which NumPy removed, so
    torch-fidelity is told the model is unconditional.
    """

    def __init__(self, sample: Sampler, nz: int, num_classes: int, device: torch.device | str, seed: int = 0,
                 num_samples: int = 0):
        super().__init__()
        # Kept in a tuple so that nn.Module does not adopt a generator module: torch-fidelity calls
        # .cuda() on its input, which would move the caller's model to the default GPU.
        self._sample = (sample,)
        self._nz = nz
        self.classes = num_classes
        self.device = torch.device(device)
        self._z, self._labels = eval_noise(num_samples, nz, num_classes, seed)
        self._done = 0

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
        n, start = z.shape[0], self._done
        if start + n > len(self._z):
            raise ValueError(f"asked for more than the {len(self._z)} samples this source was made for")
        self._done += n
        x = self._sample[0](self._z[start:start + n].to(self.device), self._labels[start:start + n].to(self.device))
        return to_rgb_uint8(x).to(z.device)


def sampler_of(generator: torch.nn.Module, precision: str = "fp32") -> Sampler:
    """`sample(z, labels)` of a bare generator module, in eval mode, computed in `precision` exactly
    as the trainer samples it (`gans.trainer.Stack`, whose bf16 rules it shares), so that a
    checkpoint scores as its run did."""
    stack = Stack.of([generator], torch.bfloat16 if precision == "bf16" else None)

    def sample(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return stack.evaluate(0, z, labels).float()

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
        known = read_json(self._count_file())
        if isinstance(known, dict) and isinstance(known.get("n"), int):
            return known["n"]
        n = len(dataset if dataset is not None else self.dataset())
        self.remember_count(n)
        return n

    def remember_count(self, n: int) -> None:
        write_json(self._count_file(), {"n": n, "data": self.data, "split": self.split,
                                        "image_size": self.image_size, "limit": self.limit})

    def _count_file(self) -> Path:
        return cache_dir() / "real" / f"{self.cache_name}.json"


def effective_limit(*limits: int) -> int:
    """The smallest positive limit (0 = no limit)."""
    positive = [n for n in limits if n > 0]
    return min(positive) if positive else 0


def real_set(config: TrainConfig, split: str = "train") -> RealSet:
    """The real side for a training configuration: its training images, at most `num_real` of them."""
    return RealSet(config.data, config.data_root, split, config.image_size,
                   effective_limit(config.limit, config.num_real))


# ---------------------------------------------------------------- computing


def default_batch_size(device: torch.device) -> int:
    # A GPU runs the extractor on 256 images at once for the price of a few; a CPU gains nothing.
    return 256 if device.type == "cuda" else 64


def kid_plan(kid_subset_size: int, n_fake: int, n_real: int) -> tuple[int, int]:
    """(subset size, number of subsets) of KID between `n_fake` and `n_real` images."""
    k = min(kid_subset_size, n_fake, n_real)
    if k < 2:
        raise UserError(f"--num-samples: KID needs at least 2 generated and 2 real images, got {n_fake} and {n_real}")
    # Subsets as large as both sets are all the same set, reordered: one gives the same value.
    return k, 1 if k == n_fake == n_real else KID_SUBSETS


def fid_below_dim(n_fake: int, n_real: int | None, feature_dim: int, stacklevel: int = 2) -> int:
    """1 (and a warning) when FID has fewer samples than feature dimensions, else 0. `stacklevel`
    counts from the caller, as `warnings.warn`'s does."""
    n_min = min(n_fake, n_real) if n_real is not None else n_fake
    if n_min >= feature_dim:
        return 0
    warnings.warn(
        f"FID from {n_fake} generated and {n_real} real images, fewer than its {feature_dim} feature dimensions: "
        f"the covariances are rank-deficient and FID is biased upward; compare FIDs only at equal N, or trust KID",
        stacklevel=stacklevel + 1,
    )
    return 1


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
    batch_size = batch_size or default_batch_size(device)
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
        k, subsets = kid_plan(kid_subset_size, n_fake, n_real)
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
        out["fid_n_below_dim"] = fid_below_dim(n_fake, n_real, extractor.feature_dim)
    # Evaluation must not shift the training run's random stream (DataLoader draws a seed from it).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), (
        torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    ):
        result = calculate_metrics(**kwargs)
    for s in specs:
        for ours, theirs in s.outputs.items():
            out[ours] = float(result[theirs])
    return out


# ---------------------------------------------------------------- FID and KID of feature matrices

# torch-fidelity's KID kernel: k(x, y) = (x.y / dim + 1) ** 3.
KID_DEGREE = 3
KID_COEF0 = 1.0
# Bytes of float64 kernel matrices and gathered subsets per KID batch of subsets: 1000-image subsets
# of 2048 features go six at a time.
KID_CHUNK_BYTES = 1 << 28
# Above this many pairs (x 8 bytes) a kernel between two whole feature sets is not computed at once.
KID_WHOLE_PAIRS = 1 << 24


def fid_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, covariance) of N x D features, float64 on their device; the covariance as np.cov's
    (rows are samples, N - 1 in the denominator), as torch-fidelity's `fid_features_to_statistics`."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"expected an N x D feature matrix with N >= 2, got {tuple(features.shape)}")
    x = features.double()
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    """The symmetric PSD square root of a covariance; rounding's negative eigenvalues count as 0."""
    w, v = torch.linalg.eigh(sigma)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor, *,
                     sqrt_sigma1: torch.Tensor | None = None) -> float:
    """|mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr sqrt(s1 s2) in float64 on the statistics' device.

    s1 s2 is similar to S s2 S with S = sqrt(s1), which is symmetric PSD: its square roots' trace is
    the sum of the square roots of its eigenvalues, one `eigvalsh` on the device (torch-fidelity takes
    NumPy's general `eigvals` of the non-symmetric product on the CPU, 2-20 s at 2048 dimensions here;
    scipy's `sqrtm`, 23 s). Pass `sqrt_sigma1` when s1 is a fixed reference (`FidReference`).
    """
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    root = psd_sqrt(sigma1) if sqrt_sigma1 is None else sqrt_sigma1.double()
    product = root @ sigma2 @ root
    # eigvalsh reads one triangle: average away the product's rounding asymmetry first.
    eigenvalues = torch.linalg.eigvalsh((product + product.T) / 2)
    tr_covmean = eigenvalues.clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean)


@dataclass(frozen=True)
class FidReference:
    """A fixed side of FID (the real images'): its statistics and its covariance's square root,
    computed once, so that each FID against it costs two matmuls and one `eigvalsh`."""

    mu: torch.Tensor
    sigma: torch.Tensor
    sqrt_sigma: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor) -> "FidReference":
        mu, sigma = fid_statistics(features)
        return cls(mu, sigma, psd_sqrt(sigma))

    def distance(self, mu: torch.Tensor, sigma: torch.Tensor) -> float:
        return frechet_distance(self.mu, self.sigma, mu, sigma, sqrt_sigma1=self.sqrt_sigma)

    def distance_to(self, features: torch.Tensor) -> float:
        """FID of N x D features against this reference. With N <= D (1,000 samples of Inception's
        2,048 features) the trace term comes from an N x N matrix: with X the centred features,
        sigma = X'X / (N-1), and S sigma S = (XS)'(XS) / (N-1) has the nonzero eigenvalues of
        X sigma_ref X' / (N-1) (AB and BA share them), an `eigvalsh` of N, not D, rows."""
        x = features.to(self.mu.device).double()
        n = x.shape[0]
        if n > x.shape[1]:
            return self.distance(*fid_statistics(x))
        mu = x.mean(0)
        centred = x - mu
        small = centred @ self.sigma @ centred.T / (n - 1)
        tr_covmean = torch.linalg.eigvalsh((small + small.T) / 2).clamp(min=0).sqrt().sum()
        diff = self.mu - mu
        trace = centred.pow(2).sum() / (n - 1)
        return float(diff @ diff + self.sigma.trace() + trace - 2 * tr_covmean)


def kid_subset_indices(n1: int, n2: int, subsets: int, subset_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(subsets x subset_size rows of the first set, ... of the second), drawn as torch-fidelity's
    `kid_features_to_metric` draws them: one RandomState, first set then second in each round."""
    rng = np.random.RandomState(seed)
    rounds = [(rng.choice(n1, subset_size, replace=False), rng.choice(n2, subset_size, replace=False))
              for _ in range(subsets)]
    return np.stack([a for a, _ in rounds]), np.stack([b for _, b in rounds])


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # gamma multiplied, not divided, as torch-fidelity does: the same rounding.
    return (x @ y.transpose(-1, -2) * (1.0 / x.shape[-1]) + KID_COEF0) ** KID_DEGREE


def kid_pair_sums(x: torch.Tensor, y: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """Per subset s, the KID kernel summed over every pair of a row of `x[ix[s]]` and a row of
    `y[iy[s]]` (float64 features; `ix`, `iy`: subsets x m indices, none repeated within a row).

    Where the whole kernel between the two sets is small it is computed once and each subset's sum
    read from it (indicator matrices): when the subsets overlap, as 100 subsets of 1,000 out of 1,000
    generated images all do, that is 100x less work than a kernel per subset."""
    if len(x) * len(y) <= KID_WHOLE_PAIRS:
        def indicator(idx: torch.Tensor, n: int) -> torch.Tensor:
            return torch.zeros(len(idx), n, dtype=x.dtype, device=x.device).scatter_(1, idx, 1.0)

        return ((indicator(ix, len(x)) @ _poly_kernel(x, y)) * indicator(iy, len(y))).sum(1)
    m, d = ix.shape[1], x.shape[1]
    chunk = max(1, KID_CHUNK_BYTES // (8 * (m * m + 2 * m * d)))
    return torch.cat([_poly_kernel(x[ix[i:i + chunk]], y[iy[i:i + chunk]]).sum((-2, -1))
                      for i in range(0, len(ix), chunk)])


def kid_within_sums(x: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
    """Per subset s, the KID kernel summed over the distinct pairs of rows of `x[ix[s]]` (both orders):
    the unbiased estimator's within-set term."""
    diagonal = (x.pow(2).sum(1) * (1.0 / x.shape[1]) + KID_COEF0) ** KID_DEGREE  # k(x_i, x_i)
    return kid_pair_sums(x, x, ix, ix) - diagonal[ix].sum(1)


def kernel_inception_distance(f1: torch.Tensor, f2: torch.Tensor, subsets: int, subset_size: int,
                              seed: int, within2: torch.Tensor | None = None) -> tuple[float, float]:
    """(mean, std) of KID over `subsets` random subset pairs, torch-fidelity's `kid_features_to_metric`
    (same kernel, unbiased estimator and subsets for the same seed) to float64 rounding, on the
    features' device. `within2`: `f2`'s within-set sums for these subsets (`kid_within_sums`), when
    the caller keeps them: they depend on the real features and the subsets alone, and on a
    10,000-image reference they are most of the work."""
    if f1.dim() != 2 or f2.dim() != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"expected two feature matrices of equal width, got {tuple(f1.shape)} and {tuple(f2.shape)}")
    if not 2 <= subset_size <= min(len(f1), len(f2)):
        raise ValueError(f"KID subset size {subset_size} outside 2..{min(len(f1), len(f2))} (the sets' sizes)")
    ix, iy = kid_subsets(len(f1), len(f2), subsets, subset_size, seed, f1.device)
    x, y = f1.double(), f2.to(f1.device).double()
    within2 = kid_within_sums(y, iy) if within2 is None else within2
    m = subset_size
    mmds = (kid_within_sums(x, ix) + within2) / (m * (m - 1)) - 2 * kid_pair_sums(x, y, ix, iy) / (m * m)
    return float(mmds.mean()), float(mmds.std(correction=0))


def kid_subsets(n1: int, n2: int, subsets: int, subset_size: int, seed: int,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`kid_subset_indices` as tensors on `device`."""
    return tuple(torch.from_numpy(i).to(device) for i in kid_subset_indices(n1, n2, subsets, subset_size, seed))


# ---------------------------------------------------------------- the training hook


# Every run and every epoch draws its evaluation samples (noise, labels, KID subsets) with this seed,
# whatever the training seed: two evaluations then differ by the generators alone. Re-scoring the
# same generator with other seeds measures the evaluation's own noise.
EVAL_SEED = 0

def heldout_set(config: TrainConfig) -> RealSet:
    """The held-out real images of `--reference heldout`: a folder's images after the first
    `--limit`, MNIST's test split (which images they are is `load_images`' rule for the split; for a
    folder `limit` is where the held-out part starts)."""
    return RealSet(config.data, config.data_root, "heldout", config.image_size, limit=config.limit)


def feature_module(extractor, layer: str, device: torch.device) -> torch.nn.Module:
    """The extractor's torch-fidelity module computing `layer`, on `device`, in eval mode."""
    cls = FEATURE_EXTRACTORS_REGISTRY[extractor.name]
    module = cls(extractor.name, [layer], feature_extractor_weights_path=extractor.weights_path)
    return module.requires_grad_(False).eval().to(device)


@torch.no_grad()
def features_of(module: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """Features (float32, on `device`) of uint8 or [-1, 1] images, `batch_size` at a time."""
    return torch.cat([module(to_rgb_uint8(images[i:i + batch_size].to(device)))[0]
                      for i in range(0, len(images), batch_size)])


def read_tensor(path: Path) -> torch.Tensor | None:
    """The tensor saved in `path`, or None when it is missing or unreadable (then it is recomputed)."""
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
    return value if torch.is_tensor(value) else None


def real_features_file(real: RealSet, extractor, layer: str) -> Path:
    # torch-fidelity's own name for the real side's features: calculate() and the evaluator share them.
    return cache_dir() / "fidelity" / f"{real.cache_name}-{extractor.name}-features-{layer}.pt"


def real_features(real: RealSet, extractor, layer: str, module: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """The real side's features (float32, CPU), from the disk cache or computed and cached."""
    path = real_features_file(real, extractor, layer)
    cached = read_tensor(path)
    if cached is not None and cached.dim() == 2 and cached.shape[1] == extractor.feature_dim:
        return cached
    features = features_of(module, real.load(), device, default_batch_size(device)).cpu()
    atomic_write(path, lambda f: torch.save(features, f))
    real.remember_count(len(features))  # so that calculate() finds the real side without decoding it
    return features


def references(config: TrainConfig, names: Sequence[str]) -> list["Reference"]:
    """The real sides an evaluator compares with: none, the training images, or held-out images and
    the training images (`reference = heldout`; the field is read with getattr while it is new)."""
    if not any(METRICS[m].needs_real for m in names):
        return []
    if getattr(config, "reference", "train") == "heldout":
        return [Reference(heldout_set(config), ""), Reference(real_set(config), TRAIN)]
    return [Reference(real_set(config), "")]


@dataclass
class Reference:
    """One real side of an evaluator: its images, and once loaded its features and FID statistics
    on the evaluation device."""

    real: RealSet
    suffix: str
    """'' for the reference that `fid`/`kid` name, `TRAIN` for the training images beside held-out ones"""
    features: torch.Tensor | None = None
    fid: FidReference | None = None
    kid_within: dict[tuple[int, int, int, int], torch.Tensor] = field(default_factory=dict, repr=False)
    """(generated images, subsets, subset size, seed) -> these features' KID within-set sums"""

    def load(self, extractor, layer: str, module: torch.nn.Module, device: torch.device) -> None:
        if self.features is None or self.features.device != device:
            self.features = real_features(self.real, extractor, layer, module, device).to(device)
            self.fid = FidReference.of(self.features)
            self.kid_within = {}

    def kid(self, fake: torch.Tensor, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
        """KID (mean, std) of `fake` against these features, keeping this side's within-set sums: every
        evaluation of a run draws the same subsets (`EVAL_SEED`), so they are computed once per run."""
        key = (len(fake), subsets, subset_size, seed)
        if key not in self.kid_within:
            iy = kid_subsets(len(fake), len(self.features), subsets, subset_size, seed, self.features.device)[1]
            self.kid_within[key] = kid_within_sums(self.features.double(), iy)
        return kernel_inception_distance(fake, self.features, subsets, subset_size, seed, self.kid_within[key])

    def resampled(self, seed: int) -> "Reference":
        """This loaded reference with its images drawn again, with replacement, by `seed`: another
        real set of the same size from the same images, so that re-scoring measures the real side's
        sampling noise as well as the generated side's."""
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randint(0, len(self.features), (len(self.features),), generator=gen).to(self.features.device)
        features = self.features[idx]
        return Reference(self.real, self.suffix, features, FidReference.of(features))

    def key(self, name: str) -> str:
        """`name` of this reference's record: itself, or beside a held-out reference `train_key(name)`."""
        return train_key(name) if self.suffix else name


def score_features(fake: torch.Tensor, ref: Reference, flags: set[str], feature_dim: int, kid_subset_size: int,
                   seed: int) -> dict[str, float | int]:
    """FID and/or KID of generated features against one loaded reference, with its bookkeeping."""
    n_fake, n_real = len(fake), len(ref.features)
    out: dict[str, float | int] = {"num_real": n_real}
    if "fid" in flags:
        out["fid"] = ref.fid.distance_to(fake)
        out["fid_n_below_dim"] = fid_below_dim(n_fake, n_real, feature_dim)
    if "kid" in flags:
        k, subsets = kid_plan(kid_subset_size, n_fake, n_real)
        out["kid"], out["kid_std"] = ref.kid(fake, subsets, k, seed)
        out.update(kid_subset_size=k, kid_subsets=subsets)
    return {ref.key(name): value for name, value in out.items()}


class Evaluator:
    """`evaluate(trainer, member=0, seed=EVAL_SEED)`: metrics of a trainer's generator (one member
    of its population) from `config.num_samples` images drawn with `seed`.

    FID and KID are computed here on the trainer's device: generated images go straight from the
    generator into the extractor's torch-fidelity module, and the real side's features are loaded
    (or computed and cached) at the first evaluation; IS and precision/recall score the same
    generated images through `calculate`. With `reference = heldout`, `fid`/`kid` compare with
    held-out images and `fid_train`/`kid_train` with the training images, from one set of samples,
    and the diagnostics of `gans.diagnostics` (D's overfitting on the first `DIAG_REAL` training and
    held-out images, k-NN precision/recall and memorisation on the same features) come too, when
    FID or KID is asked for and the trainer has a discriminator (`discriminate`).
    """

    def __init__(self, config: TrainConfig, extractor, names: Sequence[str]):
        self.config, self.extractor, self.names = config, extractor, tuple(names)
        self.flags = {METRICS[m].fidelity_flag for m in names}
        self.own = self.flags & set(OWN_FLAGS)
        self.others = tuple(m for m in names if METRICS[m].fidelity_flag not in OWN_FLAGS)
        self.references = references(config, names)
        layers = {extractor.layers[f] for f in self.own}
        if len(layers) > 1:  # one module, one layer: true of every extractor in gans.extractors
            raise ValueError(f"extractor {extractor.name}: FID and KID use different layers {sorted(layers)}")
        self.layer = next(iter(layers), None)
        self._module: torch.nn.Module | None = None
        self._floor: float | None = None
        self.diagnose = bool(self.own) and getattr(config, "reference", "train") == "heldout"
        self._heldout_images: tuple[torch.Tensor, torch.Tensor] | None = None

    def module(self, device: torch.device) -> torch.nn.Module:
        if self._module is None:
            self._module = feature_module(self.extractor, self.layer, device)
        return self._module.to(device)

    def __call__(self, trainer, member: int = 0, seed: int = EVAL_SEED) -> dict[str, float | int]:
        device = torch.device(trainer.device)
        # Evaluation must not shift the training run's random stream (DataLoader draws a seed from it).
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            images, features = self.generate(trainer, member, seed, device)
            out: dict[str, float | int] = {"num_fake": self.config.num_samples,
                                           "feature_dim": self.extractor.feature_dim}
            if self.others:
                out.update(calculate(ImageSet(images), self.references[0].real if self.references else None,
                                     self.extractor, self.others, kid_subset_size=self.config.kid_subset_size,
                                     seed=seed, device=device))
            if self.own:
                out.update(self.score(features, seed, device))
            if self.diagnose and hasattr(trainer, "discriminate"):
                out.update(self.diagnostics(trainer, member, features, device))
        return out

    @torch.no_grad()
    def diagnostics(self, trainer, member: int, features: torch.Tensor, device: torch.device) -> dict[str, float | int]:
        """`gans.diagnostics` of one evaluation: D's logits on the first `diag_num_real` training and
        held-out images (as many of each; the held-out ones decoded at the first call and kept), and the
        generated, training and held-out features `score` has loaded."""
        heldout, train = self.references
        if self._heldout_images is None:
            real = heldout.real
            data = load_images(real.data, data_root=real.data_root, image_size=real.image_size, limit=real.limit,
                               split=real.split)
            n = min(DIAG_REAL, len(data))
            self._heldout_images = (data.images[:n].clone(), data.labels[:n].clone())
        held_x, held_y = self._heldout_images
        n = min(len(held_x), len(trainer.data))
        batch = default_batch_size(device)

        def logits(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.cat([trainer.discriminate(x[i:i + batch], y[i:i + batch], member=member)
                              for i in range(0, len(x), batch)])

        out = diagnostics(train_logits=logits(trainer.data.images[:n], trainer.data.labels[:n]),
                          heldout_logits=logits(held_x[:n], held_y[:n]), fake=features,
                          train=train.features, heldout=heldout.features)
        return {**out, "diag_num_real": n}

    @torch.no_grad()
    def generate(self, trainer, member: int, seed: int, device: torch.device):
        """(the uint8 images on the CPU when other metrics need them, their FID/KID features on `device`
        when FID or KID is asked for; else None)."""
        n = self.config.num_samples
        z, labels = eval_noise(n, trainer.config.nz, trainer.data.num_classes, seed)
        batch_size = default_batch_size(device)
        module = self.module(device) if self.own else None
        images, features = [], []
        for i in range(0, n, batch_size):
            x = to_rgb_uint8(trainer.sample(z[i:i + batch_size].to(device), labels[i:i + batch_size].to(device),
                                            member=member))
            if self.others:
                images.append(x.cpu())
            if module is not None:
                features.append(module(x)[0])
        return torch.cat(images) if images else None, torch.cat(features) if features else None

    def score(self, features: torch.Tensor, seed: int, device: torch.device) -> dict[str, float | int]:
        """FID/KID of `features` against each reference; at a seed other than `EVAL_SEED` (a re-scoring)
        against each reference's images resampled with that seed, so both sides are drawn afresh."""
        out: dict[str, float | int] = {}
        for ref in self.references:
            ref.load(self.extractor, self.layer, self.module(device), device)
            side = ref if seed == EVAL_SEED else ref.resampled(seed)
            out.update(score_features(features, side, self.own, self.extractor.feature_dim,
                                      self.config.kid_subset_size, seed))
        if "fid" in self.own and len(self.references) == 2:
            out[FLOOR] = self.floor()
        return out

    def floor(self) -> float:
        """FID of the training images against the held-out reference: what a generator that
        reproduced its training images exactly would score, the real-versus-real floor (once per run)."""
        if self._floor is None:
            heldout, train = self.references
            self._floor = heldout.fid.distance_to(train.features)
        return self._floor


def build_evaluator(config: TrainConfig) -> Evaluator | None:
    """The per-epoch evaluator of a run (None when `config.metrics` names none); `.extractor` is its
    extractor, trained or located here, once.
    `evaluate(trainer, seed=k)` (k != EVAL_SEED) draws another set of samples from the same generator and
    resamples each real reference with replacement: a re-scoring with both sides drawn afresh.
    """
    if not config.metric_names:
        return None
    names = parse_metrics(config.metrics)
    extractor = build_extractor(config, resolve_device(config.device))
    extractor.check_metrics({METRICS[m].fidelity_flag for m in names})
    return Evaluator(config, extractor, names)
