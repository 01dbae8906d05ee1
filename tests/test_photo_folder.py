"""A photo folder is only ever scored against its own photos: `photos/cat` beside `photos/dog`, other
image folders and a `venv/` of images; training and scoring read nothing outside `photos/cat`, a
folder without labelled data gets Inception, and its unreadable files are named once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from gans import extractors as E
from gans.config import TrainConfig
from gans.errors import UserError
from gans.score import main as score_main
from gans.train import main as train_main


@pytest.fixture
def layout(tmp_path, cats, pets) -> Path:
    """tmp/photos/cat (20 cats and broken.jpg), tmp/photos/dog, tmp/other/dog, tmp/venv: only the first
    is the data."""
    def copy(src: Path, dst: Path, n: int) -> None:
        dst.mkdir(parents=True)
        for p in sorted(src.iterdir())[:n]:
            shutil.copy(p, dst / p.name)

    copy(cats, tmp_path / "photos" / "cat", 20)
    (tmp_path / "photos" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    copy(pets / "dog", tmp_path / "photos" / "dog", 5)
    copy(pets / "dog", tmp_path / "other" / "dog", 5)
    copy(cats, tmp_path / "venv" / "lib" / "site-packages", 5)
    return tmp_path / "photos" / "cat"


@pytest.fixture
def reads(monkeypatch, tmp_path) -> list[Path]:
    """Every image PIL opens and every folder listed under tmp_path, resolved."""
    seen: list[Path] = []
    open_image, iterdir = Image.open, Path.iterdir

    def recording_open(fp, *a, **k):
        if isinstance(fp, (str, Path)):
            seen.append(Path(fp).resolve())
        return open_image(fp, *a, **k)

    def recording_iterdir(self):
        seen.append(self.resolve())
        return iterdir(self)

    monkeypatch.setattr(Image, "open", recording_open)
    monkeypatch.setattr(Path, "iterdir", recording_iterdir)
    return seen


def test_training_and_scoring_read_nothing_outside_the_folder(layout, reads, tmp_path, inception_offline, capsys):
    run = tmp_path / "run"
    small = ["--image-size", "32", "--limit", "16", "--metrics", "kid", "--num-samples", "16", "--device", "cpu"]
    assert train_main(["--data", str(layout), "--out", str(run), "--epochs", "1", "--batch-size", "8",
                       "--ngf", "8", "--ndf", "8", "--nz", "8", "--reference", "heldout", "--no-progress",
                       *small]) == 0
    err = capsys.readouterr().err
    # No labelled data named: Inception, with what it costs on a CPU; never a classifier of what lies beside.
    assert "extractor inception:" in err and "images/s" in err and "--domain-data" in err
    # The unreadable file is named once, though the folder is read for training and twice for the metrics.
    assert err.count("broken.jpg") == 1 and "skipped 1 of" in err

    assert score_main(["--real", str(layout), "--fake", str(run / "checkpoint.pt"), *small]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["extractor"] == "inception"
    assert "broken.jpg" not in err  # this process named it already

    inside = layout.resolve()
    local = [p for p in reads if tmp_path.resolve() in p.parents]
    assert any(p.parent == inside for p in local)
    outside = [p for p in local if p != inside and inside not in p.parents and run.resolve() not in (p, *p.parents)]
    assert outside == []


def test_domain_on_an_unlabelled_folder_names_the_two_ways(layout, capsys):
    assert score_main(["--real", str(layout), "--fake", str(layout), "--extractor", "domain", "--image-size", "32",
                       "--device", "cpu"]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "--domain-data" in line and "--extractor inception" in line, line


def test_the_extractor_default_of_a_photo_folder(layout, tmp_path):
    cats = TrainConfig(data=str(layout), model="dcgan", image_size=32, metrics="fid", num_samples=1200)
    config, notes = E.auto_extractor(cats, "cpu")
    assert config.extractor == "inception" and len(notes) == 1 and "100 s per evaluation of 1200" in notes[0]
    assert E.auto_extractor(cats, "cuda")[1] == [notes[0].split(";")[0]]  # on a GPU, no cost to mention
    for labelled in (cats.replace(domain_data="mnist"), cats.replace(data=str(tmp_path / "photos"))):
        assert E.auto_extractor(labelled, "cpu") == (labelled, [])
    assert E.auto_extractor(cats.replace(extractor="inception"), "cpu") == (cats.replace(extractor="inception"), [])
    with pytest.raises(UserError, match="--domain-data"):
        E.resolve_domain_data(cats)  # `photos` is labelled (cat, dog), but the user named only photos/cat


def test_a_study_of_a_photo_folder_gets_inception_whatever_its_preset(layout):
    from study.pinned_extractor import device_default

    cats = TrainConfig(data=str(layout), model="dcgan", image_size=32, metrics="fid", device="cpu")
    for by_device in (True, False):  # the full preset's device rule, another preset's own extractor
        config, notes = device_default(cats, by_device=by_device)
        assert config.extractor == "inception" and "images/s" in notes[0]
    mnist = TrainConfig(metrics="fid", device="cpu")
    assert device_default(mnist, by_device=False) == (mnist, [])
