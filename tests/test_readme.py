"""The README's Python blocks marked `<!-- readme-test: quick -->` run as written, in a folder holding a
small MLflow store logged the way a `quick-mlp-mnist` study logs (a study run, trial runs with
`quality/fid` and `quality/kid`): the snippets that read a study's runs keep up with its metric names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARK = "<!-- readme-test: quick -->"
BLOCK = re.compile(re.escape(MARK) + r"\s*```python\n(.*?)```", re.S)


def quick_blocks() -> list[str]:
    return BLOCK.findall((REPO / "README.md").read_text())


def small_store(folder: Path) -> None:
    """`folder/mlflow.db`: experiment `quick-mlp-mnist`, its study run and three finished trials."""
    from tracking import mlflow_log as ml

    client = ml.connect(f"sqlite:///{folder}/mlflow.db")
    exp = ml.ensure_experiment(client, "quick-mlp-mnist")
    study = client.create_run(exp, run_name="quick-mlp-mnist", tags={ml.ROLE: "study"}).info.run_id
    for i, fid in enumerate([120.0, 80.0, 95.0]):
        run = ml.RunLogger(client, exp, f"trial-{i:03d}", parent_run_id=study,
                           tags={ml.ROLE: "trial", ml.TRIAL_NUMBER: i})
        run.log_record({"epoch": 1, "fid": fid, "kid": fid / 1000, "loss_d": 0.5})
        run.finish("complete")
    ml.finish(client, study, "complete")


def test_readme_has_quick_blocks():
    assert len(quick_blocks()) >= 1


@pytest.mark.parametrize("i", range(len(quick_blocks())))
def test_readme_quick_block_runs(i, tmp_path):
    small_store(tmp_path)
    r = subprocess.run([sys.executable, "-c", quick_blocks()[i]], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    if "search_runs" in quick_blocks()[i]:
        lines = [line for line in r.stdout.splitlines() if "trial-" in line]
        assert [line.split()[1] for line in lines] == ["trial-001", "trial-002", "trial-000"], r.stdout


def test_readme_shows_the_url_study_run_prints(tmp_path):
    """The README's URL is `ui_url`'s, and the saved view it opens is on every study's experiment."""
    from gans.metric_keys import STUDY_METRICS
    from tracking import mlflow_log as ml

    assert ml.ui_url("http://127.0.0.1:5000", "ID") in (REPO / "README.md").read_text()
    small_store(tmp_path)
    exp = ml.connect(f"sqlite:///{tmp_path}/mlflow.db").get_experiment_by_name("quick-mlp-mnist")
    for metric in STUDY_METRICS:
        key = re.search(r"viewStateShareKey=([^&]+)", ml.ui_url("http://x", "1", metric))[1]
        assert ml.SHARED_VIEW + key in exp.tags
