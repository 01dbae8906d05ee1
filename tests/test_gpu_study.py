"""The timed 50-trial study's device command (`benchmarks/gpu_study.sh`) rehearsed on the CPU in sittings
that continue one another from the stores the last one returned, one of them stopped by its budget; and
`benchmarks.study_clock`'s split of a sitting's wall time, on spans with a known answer."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from benchmarks import study_clock

REPO = Path(__file__).resolve().parents[1]
TOY = ["--device", "cpu", "--limit", "32", "--epochs", "2", "--eval-every", "1", "--num-samples", "64",
       "--batch-size", "16", "--ngf", "16", "--ndf", "16", "--workers", "1"]


def span(start: float, end: float, train: float = 0.0, evaluation: float = 0.0) -> dict[str, float]:
    return {"start": start, "end": end, "train_s": train, "eval_s": evaluation, "images": 0.0}


def test_a_sitting_splits_into_start_up_trials_and_the_rest():
    # Sitting 100-200 s: runs 110-140 and 130-150 overlap (two workers), 170-260 runs past the end.
    c = study_clock.clock([span(130, 150, 15, 2), span(110, 140, 20, 5), span(170, 260, 25, 1)], 100, 200)
    assert c["wall_s"] == 100 and c["startup_s"] == 10
    assert c["busy_s"] == 40 + 30  # 110-150 and 170-200
    assert c["idle_s"] == 100 - 10 - 70
    assert c["run_s"] == 30 + 20 + 30 and c["train_s"] == 60 and c["eval_s"] == 8
    assert c["trial_other_s"] == 80 - 60 - 8


def test_two_runs_of_the_same_span_count_once_in_the_wall_and_twice_in_the_runs():
    c = study_clock.clock([span(1, 2, 0.5), span(1, 2, 0.5)], 0, 3)
    assert (c["startup_s"], c["busy_s"], c["idle_s"], c["run_s"], c["train_s"]) == (1, 1, 1, 2, 1)


def test_a_sitting_without_a_trial_is_all_start_up():
    c = study_clock.clock([span(10, 20)], 100, 160)  # a run of an earlier sitting
    assert c["startup_s"] == 60 and c["busy_s"] == c["idle_s"] == c["run_s"] == 0


def test_the_projection_pays_one_start_up_and_the_rest_per_finished_trial():
    sittings = [{"device": "GPU", "wall_s": 100.0, "startup_s": 20.0, "busy_s": 70.0, "idle_s": 10.0, "run_s": 70.0,
                 "train_s": 50.0, "eval_s": 10.0, "trial_other_s": 10.0, "images": 1e6, "trials": {"finished": f}}
                for f in (2, 4)]
    total = study_clock.summary(sittings, target=10)
    assert total["wall_s"] == 200 and total["finished"] == 4 and total["trials_per_hour"] == 3600 * 4 / 200
    assert total["projected_s"] == 20 + (200 - 40) * 10 / 4
    assert study_clock.summary([{**sittings[0], "trials": {"finished": 0}}])["projected_s"] is None


def sitting(tmp_path: Path, box: Path, classifier: Path, n: int, previous: Path, *flags: str) -> Path:
    """Sitting `n` as the device runs it: the photos in `box`/cat, a fresh working folder."""
    out = tmp_path / f"out{n}"
    env = {**os.environ, "CARRY": str(box), "STUDY_CARRY": str(classifier.parent), "OUT": str(out),
           "STUDY_WORK": str(tmp_path / "work"), "STUDY_PREVIOUS": str(previous), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_study.sh"), *flags, *TOY], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "wall time, this sitting" in done.stdout  # the table the device call's reply ends with
    return out


@pytest.fixture
def classifier(tmp_path, domain) -> Path:
    """The cat-vs-dog classifier, where the study's call carries it (`.carry-study/domain.pt`)."""
    (tmp_path / "carry-study").mkdir()
    (tmp_path / "carry-study" / "domain.pt").symlink_to(domain("pets").weights_path)
    return tmp_path / "carry-study" / "domain.pt"


@pytest.mark.slow
def test_sittings_continue_the_study_and_their_clock_sums(tmp_path, cats, classifier):
    box = tmp_path / "carry"
    box.mkdir()
    (box / "cat").symlink_to(cats)
    kept, results = tmp_path / "kept", tmp_path / "RESULTS.md"
    results.write_text("# results\n")

    # A budget shorter than the start-up: nothing trained, no stores, the sitting still recorded.
    out = sitting(tmp_path, box, classifier, 1, kept / "stores.tar.xz", "--budget", "2", "--trials", "1")
    first = json.loads((out / "sitting.json").read_text())
    assert first["exit_status"] == 124 and first["runs"] == 0 and first["trials"] == {"finished": 0}
    assert not (out / "stores.tar.xz").exists()
    assert study_clock.main(["--save", str(out), "--folder", str(kept), "--results", str(results)]) == 0

    out = sitting(tmp_path, box, classifier, 2, kept / "stores.tar.xz", "--budget", "300", "--trials", "1")
    assert study_clock.main(["--save", str(out), "--folder", str(kept), "--results", str(results)]) == 0
    # The next sitting starts on a fresh machine from the stores the last one returned.
    out = sitting(tmp_path, box, classifier, 3, kept / "stores.tar.xz", "--budget", "300", "--trials", "3")
    record = json.loads((out / "sitting.json").read_text())
    assert record["exit_status"] == 0 and record["runs"] == 2 and record["trials"]["finished"] == 3
    assert record["images"] == 2 * 2 * 32  # two new trials of 2 epochs on 32 photos
    assert record["train_s"] > 0 and record["eval_s"] > 0 and record["startup_s"] > 0
    assert record["wall_s"] == pytest.approx(record["startup_s"] + record["busy_s"] + record["idle_s"])
    assert study_clock.main(["--save", str(out), "--folder", str(kept), "--results", str(results)]) == 0

    assert sorted(p.name for p in kept.iterdir()) == [
        "sitting-1.json", "sitting-1.log", "sitting-2.json", "sitting-2.log", "sitting-3.json", "sitting-3.log",
        "stores.tar.xz"]
    text = results.read_text()
    assert text.startswith("# results\n") and text.count("## The 50-trial DCGAN study") == 3
    last = text[text.rindex("## The 50-trial"):]
    assert "3 sitting(s); the study holds 3 of 50 finished trials" in last and "| 1 | CPU |" in last
    assert "124 (budget)" in last and "one command running all 50 trials" in last


@pytest.mark.slow
def test_the_benchmarks_trials_section_runs_with_the_studys_carry(tmp_path, cats, classifier):
    """gpu_bench.sh's trials section in the study's call: optuna and mlflow there, the cats and the
    classifier carried, no MNIST."""
    (tmp_path / "carry").mkdir()
    (tmp_path / "carry" / "cat").symlink_to(cats)
    out = tmp_path / "out"
    env = {**os.environ, "CARRY": str(tmp_path / "carry"), "BENCH_CARRY": str(tmp_path / "not-carried"),
           "OUT": str(out), "BENCH_DATA": str(tmp_path / "root"), "OMP_NUM_THREADS": "1",
           "NEEDS": "torch_fidelity optuna mlflow"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_bench.sh"), "--device", "cpu", "--toy",
                           "--sections", "trials", "--domain-weights", str(classifier)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "bench.json").read_text())
    assert [r["workers"] for r in results["trials"]["rows"]] == [1, 2] and results["train"] == []
