"""Where the built-in data sets are found when --data-root is not given, and a failed download that
leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from gans import data as D
from gans.config import TrainConfig
from gans.errors import UserError


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """A working folder with no ../shared/data beside it or the repository, and no $GAN_STUDY_DATA_ROOT."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(D.DATA_ROOT_ENV, raising=False)
    monkeypatch.setattr(D, "REPO_DIR", tmp_path / "repo")
    return work


def test_the_default_root_is_the_env_then_shared_data_then_data(nowhere, tmp_path, monkeypatch):
    assert TrainConfig().data_root == ""
    assert D.default_data_root() == nowhere / "data"
    shared = tmp_path / "shared" / "data"  # ../shared/data beside the working folder
    shared.mkdir(parents=True)
    assert D.default_data_root() == shared.resolve()
    monkeypatch.setenv(D.DATA_ROOT_ENV, str(tmp_path / "mine"))
    assert D.default_data_root() == tmp_path / "mine"
    # --data-root always wins; only an empty one is resolved.
    assert D.resolve_data_root("elsewhere") == Path("elsewhere")
    assert D.resolve_data_root("") == tmp_path / "mine"


def test_shared_data_beside_the_repository_is_found_from_any_working_folder(nowhere, tmp_path, monkeypatch):
    repo = tmp_path / "checkout" / "gan-study"
    (tmp_path / "checkout" / "shared" / "data").mkdir(parents=True)
    monkeypatch.setattr(D, "REPO_DIR", repo)
    assert D.default_data_root() == (tmp_path / "checkout" / "shared" / "data").resolve()


def test_mnist_loads_without_data_root_from_shared_data(nowhere, tmp_path, data_root):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_root)
    d = D.load_images("mnist", image_size=28, limit=10)
    assert d.images.shape == (10, 1, 28, 28)
    D.check_source("mnist")  # the data is where the default says


def _offline_after_writing(monkeypatch):
    """torchvision's MNIST as offline: it makes its folders and a partial file, then fails."""
    import torchvision.datasets as tvd

    def offline(root, train=True, download=False):
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "train-images-idx3-ubyte.gz.part").write_bytes(b"\x1f\x8b")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(tvd, "MNIST", offline)


def test_a_failed_download_leaves_nothing_behind(nowhere, monkeypatch):
    _offline_after_writing(monkeypatch)
    with pytest.raises(UserError) as e:
        D.load_images("mnist", image_size=28)
    message = str(e.value)
    assert message.startswith("--data mnist: ") and "--data-root DIR" in message and D.DATA_ROOT_ENV in message
    assert str(nowhere / "data" / "MNIST" / "raw") in message
    assert list(nowhere.iterdir()) == []


def test_a_failed_download_into_existing_folders_removes_only_what_it_made(tmp_path, monkeypatch):
    _offline_after_writing(monkeypatch)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UserError, match="--data-root"):
        D.load_images("mnist", data_root=root, image_size=28)
    assert list(root.iterdir()) == []
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "README").write_text("the user's own file")
    with pytest.raises(UserError, match="--data-root"):
        D.load_images("mnist", data_root=root, image_size=28)
    assert [p.name for p in raw.iterdir()] == ["README"]
