"""A new user's first hour (issue 23): a misspelled flag names the right one in one line, `--help`
shows one default per flag and whole sentences, the batch-size error names the flag to change, the
summary table fits 80 columns, the device measurement is cached per machine, checkpoints come by wall
time too, retried trials are claimed before new ones, and the README's first command starts a study
from a fresh clone."""

from __future__ import annotations

import importlib
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
CLIS = ("gans.train", "gans.score", "gans.validate", "gans.inception16", "study.run", "study.confirm",
        "study.sitting", "reports.build")


@pytest.mark.parametrize("module", CLIS)
def test_every_cli_answers_an_unknown_flag_in_one_line(module, capsys):
    parse = importlib.import_module(module).parse_args
    with pytest.raises(SystemExit) as e:
        parse(["--no-such-flag-at-all"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    # (A CLI with required flags names those first.)
    assert len(err) == 1 and err[0].startswith("error: ") and "usage" not in err[0], err


def test_a_misspelled_flag_names_the_closest_one(capsys):
    from study.run import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--trails", "5"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: unrecognized argument --trails; did you mean --trials?\n"


def test_other_usage_errors_are_one_line_too(capsys):
    from gans.train import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args([])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: the following arguments are required: --out\n"


def test_train_help_shows_one_default_per_flag(capsys):
    from gans.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 'mlp')" in text and "(default: None)" not in text
    assert re.search(r"\(default: [^)]*\) \(default:", text) is None  # not two in a row


def test_score_description_is_whole_sentences(capsys):
    from gans.score import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("FID / KID / IS of a folder of images or a `gans.train` checkpoint against real images; prints one "
            "JSON object (metric values, every N used, the extractor).") in text


def test_a_small_folder_names_the_batch_size_flag(data_root, cats):
    from gans.errors import UserError
    from study.run import build_settings, check_data, parse_args

    settings, searched = build_settings(parse_args(["--preset", "full", "--data", str(cats), "--limit", "64",
                                                               "--device", "cpu"]))
    with pytest.raises(UserError) as e:
        check_data(settings, searched)
    assert str(e.value).startswith("--batch-size: the search space tries batch sizes up to")
    assert "64 training images; pass --batch-size 32" in str(e.value)


def test_the_top_trials_table_fits_80_columns(monkeypatch):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from study.console import print_summary

    monkeypatch.setenv("COLUMNS", "80")
    params = {"lr_g": 0.00044, "lr_d": 0.00013, "beta1": 0.7785, "nz": 41, "real_label": 0.95, "fake_label": 0.0,
              "batch_size": 200, "hidden": 512, "dropout": 0.4935, "augment": "rotate", "epochs": 600}
    dists = {k: (FloatDistribution(0, 1) if isinstance(v, float) else IntDistribution(0, 1000)
                 if isinstance(v, int) else CategoricalDistribution(["none", "rotate"])) for k, v in params.items()}
    trials = [optuna.trial.create_trial(value=100.0 + i, params=params, distributions=dists, intermediate_values={
        50: 120.0, 100: 100.0 + i}, user_attrs={"baseline": "mlp-gan-100"} if i == 0 else {}) for i in range(5)]
    for i, t in enumerate(trials):
        t.number = i
    out = io.StringIO()
    print_summary(trials, "fid", {"list the trials": "optuna trials"}, file=out)
    table = [line for line in out.getvalue().splitlines() if line.strip() and not line.startswith(("list", "  optuna"))]
    assert len(table) > 5 and max(len(line) for line in table) <= 80, out.getvalue()


def test_the_device_measurement_is_cached_per_machine_and_config(tmp_path, monkeypatch):
    from gans.config import TrainConfig
    from study import estimate as E

    monkeypatch.setenv("GAN_STUDY_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(E, "measure_now", lambda config, threads=0, members=1: calls.append(config) or E.Costs(
        0.5, 2.0, "cpu"))
    config = TrainConfig(device="cpu")
    first = E.measure(config, 1)
    again = E.measure(config.replace(seed=7, epochs=900, lr_g=1e-3), 1)  # nothing that costs time
    assert len(calls) == 1 and not first.cached and again.cached
    assert (again.epoch_s, again.eval_s, again.device) == (0.5, 2.0, "cpu")
    E.measure(config.replace(batch_size=32), 1)
    E.measure(config, 2)
    assert len(calls) == 3
    monkeypatch.setattr(E, "cpu_model", lambda: "another CPU")
    E.measure(config, 1)
    assert len(calls) == 4


def test_a_checkpoint_is_due_by_epoch_evaluation_or_wall_time():
    from study.objective import _checkpoint_due

    plain, evaluated = {"epoch": 7, "evaluated": False}, {"epoch": 7, "evaluated": True}
    assert _checkpoint_due(evaluated, 0, 0, 0.0)
    assert not _checkpoint_due(plain, 0, 0, 1e9)  # 0 s: never by time
    assert _checkpoint_due(plain, 7, 0, 0.0) and not _checkpoint_due(plain, 5, 0, 0.0)
    assert _checkpoint_due(plain, 0, 120, 120.0) and not _checkpoint_due(plain, 0, 120, 119.9)


def test_retries_are_claimed_before_new_trials_and_the_stop_note_says_how_they_go_on(tmp_path):
    from study.engine import claim, stop_note

    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/o.db")
    assert stop_note(study) == "no trial had started"
    for _ in range(3):
        study.enqueue_trial({})
    study.enqueue_trial({}, user_attrs={"retry_of": 0, "origin": 0, "resume_from": "ck/last.pt", "resume_epoch": 3})
    study.enqueue_trial({}, user_attrs={"retry_of": 1, "origin": 1})
    assert stop_note(study) == ("trial 0 resumes from its checkpoint at epoch 3; trial 1 starts over (no checkpoint "
                                "yet), before any new trial")
    order = [claim(study).number for _ in range(5)]
    assert order == [3, 4, 0, 1, 2] and claim(study) is None
    assert all(t.state == TrialState.RUNNING for t in study.trials)


def test_a_retry_is_named_after_the_trial_it_continues():
    from study.console import trial_head

    assert trial_head(4, {}) == "trial 004"
    assert trial_head(51, {"origin": 7, "resumed_from_epoch": 120}) == "trial 007 (retry 051, from epoch 120)"
    assert trial_head(51, {"origin": 7, "baseline": "b"}) == "trial 007 (retry 051) [b]"


# ---------------------------------------------------------------- the README's first command, from a fresh clone

def readme_first_command() -> list[str]:
    """The study command of the README's first line (`pip install -e . && python -m study.run ...`)."""
    first = next(line for line in (REPO / "README.md").read_text().splitlines() if "python -m study.run" in line)
    command = first.split("&&", 1)[1].split("#", 1)[0]
    return shlex.split(command)


@pytest.mark.slow
def test_the_readmes_first_command_starts_a_study_from_a_fresh_clone(tmp_path, data_root):
    """A clone in a temporary folder with the shared data beside it, as CI and the README have it: the
    README's command, word for word, finds the data, picks the study this machine can run and starts
    it; stopped there, it leaves no data folder behind."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "gan-study"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    (tmp_path / "shared").symlink_to(data_root.parent, target_is_directory=True)
    command = readme_first_command()
    assert command[:3] == ["python", "-m", "study.run"]
    env = {k: v for k, v in os.environ.items() if k not in ("GAN_STUDY_DATA_ROOT", "PYTHONPATH")}
    proc = subprocess.Popen([sys.executable, *command[1:]], cwd=clone, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 600
    try:
        for line in proc.stderr:
            seen.append(line)
            if "estimate on" in line or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
    err = "".join(seen)
    name = "cpu-mlp-mnist" if "running the `cpu` preset" in err else "mlp-mnist"  # the machine picks the study
    assert f"study {name}: 0 finished trials, target 50" in err, err[-2000:]
    assert "estimate on" in err, err[-2000:]
    assert not (clone / "data").exists()  # the data came from ../shared/data, nothing was downloaded
