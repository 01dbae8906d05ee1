"""Training images: MNIST, Fashion-MNIST and image folders, decoded once into one uint8 tensor.

Every image is decoded, converted, resized and center-cropped exactly once; training then draws
batches by index from the device-resident tensor (no DataLoader, no per-epoch PIL work).

Also owns where the built-in data sets live when `--data-root` is not given (`default_data_root`),
their download (which leaves nothing behind when it fails), and the one notice per folder that
names the files of an image folder that are not readable images.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gans.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

DATA_ROOT_ENV = "GAN_STUDY_DATA_ROOT"
REPO_DIR = Path(__file__).resolve().parents[1]
# Unreadable files named in the notice of a folder (the rest are counted).
UNREADABLE_SHOWN = 3

# name -> (torchvision class name, folder under data_root, class names)
BUILTIN = {
    "mnist": ("MNIST", "MNIST", [str(i) for i in range(10)]),
    "fashion-mnist": (
        "FashionMNIST",
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}


@dataclass(frozen=True)
class ImageData:
    """Decoded images (uint8, N x C x H x W) with integer class labels."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4
        assert self.labels.shape == (self.images.shape[0],)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(self.images.to(device), self.labels.to(device), self.class_names, self.name)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images at `idx` scaled to [-1, 1] as float32, and their labels."""
        x = self.images.index_select(0, idx).float().div_(127.5).sub_(1.0)
        return x, self.labels.index_select(0, idx)


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    return x_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to uint8 pixels."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def default_data_root() -> Path:
    """Where MNIST/raw and FashionMNIST/raw are looked for when `--data-root` is not given:
    `$GAN_STUDY_DATA_ROOT`; else `../shared/data` beside the working folder or this repository (where
    the project's shared data lives) when it exists; else `./data`, downloaded into when online."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    for base in (Path.cwd(), REPO_DIR):
        shared = base.parent / "shared" / "data"
        if shared.is_dir():
            return shared.resolve()
    return Path.cwd() / "data"


def resolve_data_root(data_root: str | os.PathLike | None) -> Path:
    """`data_root` as given (`--data-root` always wins), or `default_data_root()` when it is empty."""
    given = os.fspath(data_root) if data_root is not None else ""
    return Path(given).expanduser() if given else default_data_root()


def load_images(data: str, *, data_root: str | os.PathLike = "", image_size: int = 64,
                limit: int = 0, split: str = "train") -> ImageData:
    """Load a built-in data set by name or an image folder by path, on the CPU.

    `split="heldout"`: images a run with `--limit limit` never trains on: the test split of a
    built-in data set; for a folder, its readable images after the first `limit` (all of them
    but the training ones), which needs `limit` > 0 and leaves at least one image.
    """
    if split not in ("train", "test", "heldout"):
        raise ValueError(f"unknown split {split!r}")
    if data in BUILTIN:
        out = _load_idx(data, resolve_data_root(data_root), "train" if split == "train" else "test")
        if split == "heldout":
            limit = 0
    else:
        if split == "test":
            raise UserError(f"--data {data}: image folders have no '{split}' split")
        if split == "heldout":
            return _resized(_heldout_folder(Path(data), image_size, limit), image_size)
        out = _load_folder(Path(data), image_size, limit)
    if limit:
        out = ImageData(out.images[:limit], out.labels[:limit], out.class_names, out.name)
    return _resized(out, image_size)


def _resized(out: ImageData, image_size: int) -> ImageData:
    if out.image_size != image_size:
        out = ImageData(_resize(out.images, image_size), out.labels, out.class_names, out.name)
    return out


def _heldout_folder(root: Path, size: int, limit: int) -> ImageData:
    if limit <= 0:
        raise UserError(f"--data {root}: a held-out reference needs --limit N (train on the first N photos, "
                        f"score against the rest)")
    everything = _load_folder(root, size)
    if len(everything) <= limit:
        raise UserError(f"--limit {limit}: {root} has only {len(everything)} readable images, none left "
                        f"to hold out; lower --limit")
    return ImageData(everything.images[limit:], everything.labels[limit:], everything.class_names, everything.name)


def check_source(data: str, data_root: str | os.PathLike = "") -> None:
    """Raise a `UserError` naming `--data` when the files behind a data set have gone (deleted or
    moved while a study runs on its decoded copy): results would no longer describe data the user
    still has, so the study must stop rather than go on from memory."""
    if data in BUILTIN:
        root = resolve_data_root(data_root)
        folder, flag_value = root / BUILTIN[data][1] / "raw", f"--data-root {root}"
    else:
        folder, flag_value = Path(data), f"--data {data}"
    if not folder.is_dir():
        raise UserError(f"{flag_value}: the data folder {folder} is gone (deleted or moved while running)")


# ---------------------------------------------------------------- MNIST-style raw files


def _idx_paths(folder: Path, split: str) -> tuple[Path, Path]:
    prefix = "train" if split == "train" else "t10k"
    return folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or .gz), the format of the original MNIST files."""
    gz = path.with_name(path.name + ".gz")
    opener = (lambda: open(path, "rb")) if path.exists() else (lambda: gzip.open(gz, "rb"))
    with opener() as f:
        raw = f.read()
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _has_idx(folder: Path, split: str) -> bool:
    return all(p.exists() or p.with_name(p.name + ".gz").exists() for p in _idx_paths(folder, split))


def _load_idx(name: str, root: Path, split: str) -> ImageData:
    tv_name, sub, classes = BUILTIN[name]
    raw = root / sub / "raw"
    if not _has_idx(raw, split):
        _download(tv_name, root, name)
    img_path, lbl_path = _idx_paths(raw, split)
    try:
        images = torch.from_numpy(_read_idx(img_path).copy()).unsqueeze(1)
        labels = torch.from_numpy(_read_idx(lbl_path).astype(np.int64))
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"--data {name}: cannot read {raw}: {e}") from None
    return ImageData(images, labels, tuple(classes), name)


def _download(tv_name: str, root: Path, name: str) -> None:
    """Download a built-in data set into `root`; when that fails, remove whatever the attempt created
    and raise a UserError naming `--data-root` and `$GAN_STUDY_DATA_ROOT`."""
    import torchvision.datasets as tvd

    raw = root / BUILTIN[name][1] / "raw"
    created = _topmost_missing(raw)
    before = set(raw.iterdir()) if raw.is_dir() else set()
    done = False
    try:
        getattr(tvd, tv_name)(root=str(root), train=True, download=True)
        getattr(tvd, tv_name)(root=str(root), train=False, download=True)
        done = True
    except Exception as e:  # torchvision raises RuntimeError/URLError/OSError when offline
        raise UserError(
            f"--data {name}: no raw files under {raw} and the download failed ({type(e).__name__}); put the four "
            f"*-ubyte.gz files there, or point --data-root DIR (or ${DATA_ROOT_ENV}=DIR) at a folder holding "
            f"{BUILTIN[name][1]}/raw"
        ) from None
    finally:
        if not done:
            _undo_download(created, raw, before)


def _topmost_missing(path: Path) -> Path | None:
    """The outermost folder of `path` (itself included) that does not exist yet; None if it exists."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _undo_download(created: Path | None, raw: Path, before: set[Path]) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
    elif raw.is_dir():
        for p in set(raw.iterdir()) - before:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


# ---------------------------------------------------------------- image folders


def _list_folder(root: Path) -> tuple[list[Path], list[int], list[str]]:
    if not root.exists():
        raise UserError(f"--data {root}: folder not found")
    if not root.is_dir():
        raise UserError(f"--data {root}: not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if subdirs:
        classes, paths, labels = [], [], []
        for d in subdirs:
            inside = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not inside:
                continue
            classes.append(d.name)
            paths += inside
            labels += [len(classes) - 1] * len(inside)
        if paths:
            return paths, labels, classes
    if not files:
        raise UserError(f"--data {root}: folder is empty")
    return files, [0] * len(files), [root.name]


def _decode(path: Path, size: int) -> np.ndarray | None:
    """RGB uint8 (size, size, 3), resized on the short side and center-cropped; None if unreadable."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if im.mode in ("RGBA", "LA"):
                # Transparent pixels become white, as most viewers show them.
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im.convert("RGBA"))
            im = im.convert("RGB")  # gray, palette and CMYK alike
            im = ImageOps.fit(im, (size, size), method=Image.Resampling.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _load_folder(root: Path, size: int, limit: int = 0) -> ImageData:
    paths, labels, classes = _list_folder(root)
    want = limit or len(paths)
    arrays: list[np.ndarray | None] = []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        # Decode in order until `limit` readable images are found: --limit 527 of 2000 reads ~527.
        while len(arrays) < len(paths) and sum(a is not None for a in arrays) < want:
            missing = want - sum(a is not None for a in arrays)
            chunk = paths[len(arrays):len(arrays) + missing]
            arrays += pool.map(lambda p: _decode(p, size), chunk)
    keep = [i for i, a in enumerate(arrays) if a is not None]
    if not keep:
        raise UserError(f"--data {root}: no readable images among {len(paths)} files")
    _report_unreadable(root, [p for p, a in zip(paths, arrays) if a is None], len(arrays))
    images = torch.from_numpy(np.stack([arrays[i] for i in keep])).permute(0, 3, 1, 2).contiguous()
    # Classes left without a readable image would give the conditional models dead labels.
    kept_labels = [labels[i] for i in keep]
    used = sorted(set(kept_labels))
    remap = {old: new for new, old in enumerate(used)}
    return ImageData(
        images,
        torch.tensor([remap[l] for l in kept_labels], dtype=torch.int64),
        tuple(classes[i] for i in used),
        str(root),
    )


_REPORTED: dict[Path, set[Path]] = {}  # folder -> its unreadable files already named by this process


def _report_unreadable(root: Path, bad: list[Path], read: int) -> None:
    """Name the first few of `bad` (files of `root` that are not readable images) and their count on
    stderr, once per process and folder: a later load of the folder names only files not named yet."""
    named = _REPORTED.setdefault(root.resolve(), set())
    new = [p for p in bad if p not in named]
    if not new:
        return
    shown = ", ".join(_relative(p, root) for p in new[:UNREADABLE_SHOWN])
    more = f" and {len(new) - UNREADABLE_SHOWN} more" if len(new) > UNREADABLE_SHOWN else ""
    count = f"{len(new)} of {read}" if not named else f"{len(new)} more of {read}"
    named.update(new)
    print(f"warning: {root}: skipped {count} files that are not readable images: {shown}{more}",
          file=sys.stderr, flush=True)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
