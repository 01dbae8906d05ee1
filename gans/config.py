"""The one training configuration: `TrainConfig` and its validation.

Every parameter has exactly one name, used for the CLI flag (`lr_g` -> `--lr-g`), the Optuna
parameter and the MLflow param. Field docstrings double as CLI help (parsed with `ast`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
from dataclasses import dataclass

from gans.errors import UserError


@dataclass(frozen=True)
class TrainConfig:
    """One GAN training run."""

    model: str = "mlp"
    """model family: mlp | cgan | dcgan | cdcgan (CLIs: mlp for mnist/fashion-mnist, dcgan for a folder)"""
    data: str = "mnist"
    """mnist | fashion-mnist | PATH to an image folder (ImageFolder layout or flat)"""
    data_root: str = ""
    """folder holding MNIST/raw and FashionMNIST/raw ('' = $GAN_STUDY_DATA_ROOT, else ../shared/data when it exists, else ./data, downloaded there when online)"""
    image_size: int = 28
    """side of the square training images in pixels: 28, 32 or 64 (CLIs: 28 for MLP models, 64 for DCGANs)"""
    limit: int = 0
    """use only the first N training images (0 = all)"""
    augment: str = "none"
    """augmentation policy: none | jitter-blur | rotate | flip | diffaug"""
    epochs: int = 25
    """number of passes over the training images"""
    batch_size: int = 64
    """images per training step"""
    lr_g: float = 2e-4
    """Adam learning rate of the generator"""
    lr_d: float = 2e-4
    """Adam learning rate of the discriminator"""
    beta1: float = 0.5
    """Adam beta1 of both optimizers"""
    nz: int = 100
    """size of the generator's noise vector"""
    ngf: int = 64
    """generator feature maps in the last conv layer (DCGAN)"""
    ndf: int = 64
    """discriminator feature maps in the first conv layer (DCGAN)"""
    hidden: int = 256
    """width of the hidden layers (MLP GAN)"""
    dropout: float = 0.3
    """dropout probability in the MLP discriminator's hidden layers"""
    embed_dim: int = 10
    """size of the label embedding (conditional models)"""
    real_label: float = 1.0
    """discriminator target for real images (0.9 = one-sided label smoothing)"""
    fake_label: float = 0.0
    """discriminator target for generated images"""
    seed: int = 0
    """random seed for weights, noise, batches and augmentation"""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N"""
    precision: str = "auto"
    """auto | fp32 | bf16 (autocast, fp32 master weights) | fp64 (tests); auto = bf16 where the device computes it natively"""
    eval_every: int = 0
    """evaluate metrics and draw sample grids every K epochs (0 = only after the last epoch)"""
    metrics: str = ""
    """comma-separated metrics computed at evaluated epochs, e.g. fid,kid,is ('' = none)"""
    extractor: str = "domain"
    """feature extractor for metrics: domain | inception"""
    num_samples: int = 2000
    """generated images per metric evaluation"""
    num_real: int = 10000
    """real training images (the first N) behind the metrics' real-side statistics (0 = all)"""
    reference: str = "train"
    """real images the metrics compare with: train | heldout (never trained on: a folder's images beyond --limit, the test split of mnist/fashion-mnist; the training images are then scored too, as <metric>_train)"""
    kid_subset_size: int = 1000
    """KID subset size; lowered to the number of generated or real images when there are fewer"""
    domain_data: str = ""
    """labelled data set for --extractor domain: mnist | fashion-mnist | PATH of class folders ('' = --data when it is one of these)"""
    domain_weights: str = ""
    """domain classifier file for --extractor domain ('' = the cached one of --domain-data, trained when missing)"""
    inception_weights: str = ""
    """Inception weights file for --extractor inception ('' = $GAN_STUDY_INCEPTION_WEIGHTS, else found)"""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def conditional(self) -> bool:
        return self.model in ("cgan", "cdcgan")

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.metrics.split(",") if m.strip())

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


MODELS = ("mlp", "cgan", "dcgan", "cdcgan")
# The built-in data sets (28 px digits and clothes); anything else is a folder of photos.
BUILTIN_DATA = ("mnist", "fashion-mnist")


def follow_data(values: dict) -> dict:
    """`values` (config fields given by the user) with the model family and image size the data
    suggest when they are not given: the seeds' MLP GAN at 28 px for MNIST and Fashion-MNIST, a
    DCGAN at 64 px for a photo folder. Every CLI applies this one rule."""
    out = dict(values)
    data = out.get("data", TrainConfig.data)
    out.setdefault("model", "mlp" if data in BUILTIN_DATA else "dcgan")
    out.setdefault("image_size", 28 if out["model"] in ("mlp", "cgan") else 64)
    return out
IMAGE_SIZES = (28, 32, 64)
PRECISIONS = ("auto", "fp32", "bf16", "fp64")
REFERENCES = ("train", "heldout")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _validate(c: TrainConfig) -> None:
    def bad(field: str, why: str) -> UserError:
        return UserError(f"{flag(field)}: {why}")

    if c.model not in MODELS:
        raise bad("model", f"unknown model {c.model!r}; choose one of {', '.join(MODELS)}")
    if c.image_size not in IMAGE_SIZES:
        raise bad("image_size", f"must be one of {', '.join(map(str, IMAGE_SIZES))}, got {c.image_size}")
    if c.model in ("dcgan", "cdcgan") and c.image_size == 28:
        raise bad("image_size", "DCGAN models need 32 or 64 (28 is not a power of two)")
    for name in ("epochs", "batch_size", "nz", "ngf", "ndf", "hidden", "embed_dim", "num_samples"):
        if getattr(c, name) <= 0:
            raise bad(name, f"must be > 0, got {getattr(c, name)}")
    for name in ("limit", "eval_every", "num_real"):
        if getattr(c, name) < 0:
            raise bad(name, f"must be >= 0, got {getattr(c, name)}")
    for name in ("lr_g", "lr_d"):
        v = getattr(c, name)
        if not (v > 0 and math.isfinite(v)):
            raise bad(name, f"learning rate must be > 0, got {v}")
    if not 0 <= c.beta1 < 1:
        raise bad("beta1", f"must lie in [0, 1), got {c.beta1}")
    if not 0 <= c.dropout < 1:
        raise bad("dropout", f"must lie in [0, 1), got {c.dropout}")
    for name in ("real_label", "fake_label"):
        v = getattr(c, name)
        if not 0 <= v <= 1:
            raise bad(name, f"label target must lie in [0, 1], got {v}")
    if c.kid_subset_size < 2:
        raise bad("kid_subset_size", f"must be >= 2, got {c.kid_subset_size}")
    if c.reference not in REFERENCES:
        raise bad("reference", f"unknown reference {c.reference!r}; choose one of {', '.join(REFERENCES)}")
    if c.precision not in PRECISIONS:
        raise bad("precision", f"unknown precision {c.precision!r}; choose one of {', '.join(PRECISIONS)}")
    if not (c.device in ("auto", "cpu", "cuda") or c.device.startswith("cuda:")):
        raise bad("device", f"unknown device {c.device!r}; choose auto, cpu, cuda or cuda:N")
    # Names of augment policies, metrics and extractors live in registries that import heavier
    # modules; they are checked where those registries are (gans.augment, gans.metrics).


@functools.cache
def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal after each field)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def field_types(cls: type = TrainConfig) -> dict[str, type]:
    """Concrete Python types of the config fields (annotations are strings here)."""
    names = {"int": int, "float": float, "str": str, "bool": bool}
    return {f.name: names[f.type] if isinstance(f.type, str) else f.type for f in dataclasses.fields(cls)}
