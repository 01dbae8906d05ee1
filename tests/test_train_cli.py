"""`python -m gans.train` end to end, and every bad input as one line on stderr with exit 2."""

import json
import os
import subprocess
import sys

import pytest

from gans.train import main
from gans.trainer import load_checkpoint


def run_train(*args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "gans.train", "--no-progress", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_dcgan_on_cats_writes_everything(tmp_path, cats):
    out = tmp_path / "run"
    r = run_train("--model", "dcgan", "--data", cats, "--limit", 100, "--image-size", 64, "--epochs", 2,
                  "--eval-every", 1, "--ngf", 8, "--ndf", 8, "--batch-size", 32, "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    for name in ("losses.png", "records.csv", "records.json", "config.json", "checkpoint.pt"):
        assert (out / name).stat().st_size > 0, name
    records = json.loads((out / "records.json").read_text())
    assert [r["epoch"] for r in records] == [1, 2]
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["config"]["limit"] == 100 and state["epoch"] == 2


@pytest.mark.parametrize("data, model, size", [("mnist", "mlp", 28), ("cats", "dcgan", 64)])
def test_the_model_and_image_size_follow_the_data(tmp_path, data_root, cats, data, model, size):
    out = tmp_path / "run"
    source = cats if data == "cats" else data
    assert main(["--no-progress", *map(str, ["--data", source, "--data-root", data_root, "--limit", 64, "--epochs", 1,
                                            "--batch-size", 32, "--ngf", 8, "--ndf", 8, "--hidden", 32,
                                            "--out", out])]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["image_size"]) == (model, size)


def test_diverged_run_leaves_no_checkpoint(tmp_path, data_root):
    out = tmp_path / "nan"
    r = run_train("--model", "mlp", "--data", "mnist", "--data-root", data_root, "--image-size", 28,
                  "--limit", 64, "--batch-size", 16, "--epochs", 3, "--lr-d", 1e30, "--lr-g", 1e30, "--out", out)
    assert r.returncode == 1
    assert "became" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "checkpoint.pt").exists()


def _bad_folders(tmp_path, cats):
    (tmp_path / "empty").mkdir()
    (tmp_path / "noimg").mkdir()
    (tmp_path / "noimg" / "readme.txt").write_text("hi")
    (tmp_path / "few").mkdir()
    for i in range(3):
        (tmp_path / "few" / f"{i}.jpg").write_bytes((cats / f"{i}.jpg").read_bytes())
    ro = tmp_path / "readonly"
    ro.mkdir()
    (ro / "file").write_text("x")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--data", "{tmp}/missing"], "not found"),
        (["--data", "{tmp}/empty"], "empty"),
        (["--data", "{tmp}/noimg"], "no readable images"),
        (["--data", "{tmp}/few", "--batch-size", "8"], "fewer than one batch"),
        (["--model", "gpt"], "--model"),
        (["--data", "imagenet"], "--data imagenet"),
        (["--augment", "mixup"], "--augment"),
        (["--lr-g", "0"], "--lr-g"),
        (["--lr-d", "-1"], "--lr-d"),
        (["--ngf", "0"], "--ngf"),
        (["--ndf", "-1"], "--ndf"),
        (["--nz", "0"], "--nz"),
        (["--real-label", "1.5"], "--real-label"),
        (["--fake-label", "-0.2"], "--fake-label"),
        (["--out", "{tmp}/readonly/file/sub"], "--out"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path, cats, data_root, capsys):
    _bad_folders(tmp_path, cats)
    base = {"--data": str(cats), "--out": str(tmp_path / "o"), "--epochs": "1", "--limit": "40",
            "--image-size": "32", "--ngf": "8", "--ndf": "8", "--batch-size": "16",
            "--data-root": str(data_root)}
    given = dict(zip(args[::2], [a.format(tmp=tmp_path) for a in args[1::2]]))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    # In-process (the process path, exit code included, is test_diverged_run_leaves_no_checkpoint's).
    assert main(["--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "o" / "checkpoint.pt").exists()
