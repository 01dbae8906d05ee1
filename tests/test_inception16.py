"""The FID Inception weights rounded to float16 (`python -m gans.inception16`): half the file, an
extractor identity of its own, and FIDs within 0.1 % of the full file's on real photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_fidelity")

from gans import extractors as E  # noqa: E402
from gans import metrics as M  # noqa: E402
from gans.config import TrainConfig  # noqa: E402
from gans.data import load_images  # noqa: E402
from gans.inception16 import floating_dtypes, load_script, main  # noqa: E402

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("inception_offline")


def inception(weights: Path) -> E.Extractor:
    return E.build_extractor(TrainConfig(extractor="inception", inception_weights=str(weights)))


def test_rounded_weights_are_an_extractor_of_their_own(packaged, halved, tmp_path, capsys):
    assert floating_dtypes(load_script(halved)) == {torch.float16}
    assert halved.stat().st_size < 0.51 * packaged.stat().st_size
    full, half = inception(packaged), inception(halved)
    assert half.name == f"inception-fid16-{half.sha256[:8]}" and full.name.startswith("inception-fid-")
    assert half.sha256 != full.sha256 and half.layers == full.layers and "isc" not in half.layers
    assert half.info["inception_precision"] == "fp16-rounded weights" and "inception_precision" not in full.info
    # The graph computes in float32 whatever its file stores.
    assert {p.dtype for p in M.feature_module(half, "2048", CPU).parameters()} == {torch.float32}

    # The command writes the same bytes whatever the file is called: one name on every machine.
    assert main(["--out", str(tmp_path / "any-name.pt")]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {half.sha256}" in out and "MB" in out
    assert main(["--out", str(tmp_path / "x.pt"), "--src", str(tmp_path / "missing.pt")]) == 2
    assert "--src" in capsys.readouterr().err


def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    return M.frechet_distance(*M.fid_statistics(a), *M.fid_statistics(b))


@pytest.mark.slow
def test_rounded_weights_move_fid_by_less_than_a_thousandth(packaged, halved, cats, pets):
    """200 cat and 200 dog photos at 64 px (about 3.5 min on two busy CPU cores): FID between cat halves and
    between cats and dogs with either file."""
    images = torch.cat([load_images(str(cats), image_size=64, limit=200).images,
                        load_images(str(pets / "dog"), image_size=64, limit=200).images])
    assert len(images) == 400
    fids = {}
    for weights in (packaged, halved):
        ext = inception(weights)
        f = M.features_of(M.feature_module(ext, "2048", CPU), images, CPU, 50)
        fids[ext.name] = {"cat vs cat": fid(f[:100], f[100:200]), "cat vs dog": fid(f[:200], f[200:])}
    (full_name, full), (half_name, half) = fids.items()
    for pair in full:
        relative = abs(half[pair] - full[pair]) / full[pair]
        print(f"{pair}: FID {full[pair]:.4f} ({full_name}), {half[pair]:.4f} ({half_name}), "
              f"relative difference {relative:.2e}")
        assert relative < 1e-3, (pair, full[pair], half[pair])
    assert full["cat vs dog"] > full["cat vs cat"]  # the features tell cats from dogs
