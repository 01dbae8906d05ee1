"""Shared fixtures: the real data in ../shared/data (never the network) and a private cache."""

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
