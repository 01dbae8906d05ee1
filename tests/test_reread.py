"""`python -m reports.reread`: a committed horizon.csv read again with today's statistics, checked
against the verdict computed directly from the same curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from reports import reread
from reports import verdict as V

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def test_a_committed_horizon_csv_reads_again(capsys):
    path = RESULTS / "cpu-cgan-fashion-mnist" / "horizon.csv"
    assert reread.main([str(path)]) == 0
    out = capsys.readouterr().out
    frame = pd.read_csv(path)
    runs = frame["run_id"].nunique()
    in_band = V.clopper_pearson(0, runs)  # no cGAN run bottomed out in 500-600 (its report says so too)
    assert f"0 of {runs} runs, exact CI [0, {V.fmt(in_band.high)}]" in out
    assert out.startswith("- **Is 500–600 epochs best?")
    assert reread.main([str(path), "--band", "900-1000"]) == 0
    assert capsys.readouterr().out.startswith("- **Is 900–1000 epochs best?")


def test_bad_input_is_one_line(tmp_path, capsys):
    assert reread.main([str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    path = RESULTS / "cpu-mlp-mnist" / "horizon.csv"
    assert reread.main([str(path), "--metric", "nope"]) == 2
    assert "--metric nope: no such column" in capsys.readouterr().err
