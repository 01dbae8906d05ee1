"""Data: built-in sets from raw files, image folders decoded once, conversions, bad folders."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gans.data import load_images
from gans.errors import UserError


def test_mnist_from_raw_files(data_root):
    d = load_images("mnist", data_root=data_root, image_size=28, limit=500)
    assert d.images.shape == (500, 1, 28, 28) and d.images.dtype == torch.uint8
    assert d.num_classes == 10 and int(d.labels.max()) <= 9
    test = load_images("mnist", data_root=data_root, image_size=28, split="test")
    assert len(test) == 10_000


def test_fashion_resized_to_32(data_root):
    d = load_images("fashion-mnist", data_root=data_root, image_size=32, limit=64)
    assert d.images.shape == (64, 1, 32, 32)
    assert d.class_names[9] == "Ankle boot"
    x, y = d.batch(torch.arange(8))
    assert x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1 and y.shape == (8,)


def test_missing_raw_files_say_where_to_put_them(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*a, **k):
        raise RuntimeError("no network")

    monkeypatch.setattr(tvd, "MNIST", offline)
    with pytest.raises(UserError, match="--data-root"):
        load_images("mnist", data_root=tmp_path, image_size=28)


def test_image_folder_with_classes_and_limit(pets, pets32):
    d = pets32  # load_images(pets, image_size=32, limit=0), decoded once per session
    assert d.class_names == ("cat", "dog") and len(d) == 4000
    assert d.images.shape[1:] == (3, 32, 32)
    assert (d.labels == 0).sum() == 2000
    cats = load_images(str(pets / "cat"), image_size=64, limit=527)
    assert cats.images.shape == (527, 3, 64, 64) and cats.num_classes == 1


def _folder_with_odd_files(tmp_path, cats):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, src in enumerate(sorted(cats.iterdir())[:4]):
        shutil.copy(src, folder / f"ok{i}.jpg")
    rgb = Image.open(cats / "0.jpg")
    rgb.convert("L").save(folder / "gray.png")
    rgb.convert("RGBA").save(folder / "rgba.png")
    rgb.convert("P").save(folder / "palette.png")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    data = (cats / "1.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not an image")
    (folder / "fake.jpg").write_bytes(b"\xff\xd8garbage")
    return folder


def test_odd_images_are_converted_and_broken_ones_skipped(tmp_path, cats, capsys):
    folder = _folder_with_odd_files(tmp_path, cats)
    d = load_images(str(folder), image_size=32)
    assert d.images.shape == (8, 3, 32, 32)
    err = capsys.readouterr().err
    assert "skipped 3 of 11 files that are not readable images: fake.jpg, notes.txt, truncated.jpg" in err


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_images(str(tmp_path / "nope"), image_size=32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty"):
        load_images(str(tmp_path / "empty"), image_size=32)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="no readable images"):
            load_images(str(tmp_path / "junk"), image_size=32)


def test_center_crop_keeps_the_middle(tmp_path):
    # A wide image: left third red, middle third green, right third blue -> the crop is green.
    arr = np.zeros((30, 90, 3), dtype=np.uint8)
    arr[:, :30, 0] = 255
    arr[:, 30:60, 1] = 255
    arr[:, 60:, 2] = 255
    (tmp_path / "f").mkdir()
    Image.fromarray(arr).save(tmp_path / "f" / "wide.png")
    d = load_images(str(tmp_path / "f"), image_size=32)
    mean = d.images.float().mean((0, 2, 3))
    assert mean[1] > 200 and mean[0] < 40 and mean[2] < 40
