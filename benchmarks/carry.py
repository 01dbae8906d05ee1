"""`python -m benchmarks.carry`: assemble what the GPU sitting carries to the device, and check it fits.

A device call carries the working tree (tracked and untracked-not-ignored files) plus the ignored
paths it names, 64 MiB in all. The sitting (`benchmarks/gpu_sitting.sh`) needs, in `.carry/`:
`cat/` (the photos: the first 960 train, the rest are the held-out reference), `inception-fid16.pt`
(the FID Inception weights rounded to fp16, `python -m gans.inception16`: 44 MB instead of 87) and
`whl/` (the torch-fidelity wheel: the device has torch but not it). Fails (exit 1) when the whole
would exceed the limit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from gans import inception16
from gans.cli import main_guard
from gans.data import IMAGE_EXTENSIONS
from gans.errors import UserError

LIMIT = 64 * 2**20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.carry", description=__doc__.splitlines()[0])
    p.add_argument("--photos", default="../shared/data/pets/cat", help="photo folder to carry (default: the cats)")
    p.add_argument("--carry", type=Path, default=Path(".carry"), help="the carried folder (default: .carry)")
    p.add_argument("--inception", type=Path,
                   help="an fp16 Inception file to carry (default: made with python -m gans.inception16)")
    p.add_argument("--wheel", type=Path, help="the torch-fidelity wheel (default: pip download, no dependencies)")
    return p.parse_args(argv)


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


def assemble(args: argparse.Namespace) -> dict[str, int]:
    carry = args.carry
    photos = copy_photos(Path(args.photos), carry / "cat")
    weights = carry / "inception-fid16.pt"
    if args.inception is not None:
        shutil.copyfile(args.inception, weights)
    elif not weights.exists():
        inception16.main(["--out", str(weights)])
    fetch_wheel(carry / "whl", args.wheel)
    return {"photos": photos, "photos_bytes": folder_bytes(carry / "cat"), "inception_bytes": weights.stat().st_size,
            "wheel_bytes": folder_bytes(carry / "whl"), "tree_bytes": tree_bytes()}


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = assemble(args)
    total = sizes["photos_bytes"] + sizes["inception_bytes"] + sizes["wheel_bytes"] + sizes["tree_bytes"]
    mib = lambda n: f"{n / 2**20:.1f} MiB"  # noqa: E731
    print(f"{args.carry}: {sizes['photos']} photos {mib(sizes['photos_bytes'])}, Inception fp16 "
          f"{mib(sizes['inception_bytes'])}, wheel {mib(sizes['wheel_bytes'])}; working tree "
          f"{mib(sizes['tree_bytes'])}; in all {mib(total)} of {mib(LIMIT)}")
    if total > LIMIT:
        print(f"error: what travels ({mib(total)}) exceeds the device's {mib(LIMIT)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
