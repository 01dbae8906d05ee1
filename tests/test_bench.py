"""`python -m benchmarks.bench` runs every section at toy size on CPU and writes its JSON and Markdown.
Timing belongs to the benchmark itself; this only checks that each path runs and reports numbers."""

from __future__ import annotations

import json

import pytest

from benchmarks.bench import SECTIONS, main


@pytest.mark.slow
def test_bench_runs_every_section_at_toy_size(tmp_path, data_root, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "RESULTS.md"
    assert main(["--toy", "--device", "cpu", "--data-root", str(data_root), "--json", str(out),
                 "--results", str(md)]) == 0
    results = json.loads(out.read_text())
    assert {"train", "memory", "trials", "eval"} <= set(results) and results["size"] == "toy"
    assert all(r["ours_images_per_s"] > 0 and r["seed_images_per_s"] > 0 for r in results["train"])
    assert [r["workers"] for r in results["trials"]["rows"]] == [1, 2]
    assert all(r["trials_per_hour"] > 0 for r in results["trials"]["rows"]) and results["trials"]["ratio"] > 0
    assert all(r["seconds_uncached"] > 0 and r["seconds_cached"] > 0 for r in results["eval"])
    assert "trials/hour" in md.read_text() and "ratio" in capsys.readouterr().out


def test_unknown_sections_are_one_line(capsys, data_root):
    assert main(["--sections", "train,warp", "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sections" in err[0] and all(s in err[0] for s in SECTIONS)
