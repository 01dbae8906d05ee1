"""`python -m benchmarks.bench` runs every section at toy size on CPU and writes its JSON and Markdown;
its device command (`benchmarks/gpu_bench.sh`) rehearsed on the CPU. Timing belongs to the benchmark
itself; this only checks that each path runs and reports numbers (and that the FLOP count is one
member's and leaves the run it counts unchanged)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from benchmarks.bench import (GROWING_KINDS, SECTIONS, arithmetic_bound, main, op_kind, packed_images_per_s,
                              train_flops_per_image)
from gans.config import TrainConfig
from gans.trainer import Trainer


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
    members = results["members"]["rows"]
    assert [(r["model"], r["members"]) for r in members] == [("mlp", 1), ("mlp", 2), ("dcgan", 1), ("dcgan", 2)]
    assert all(r["member_images_per_s"] > 0 for r in members)
    assert all(r["total_images_per_s"] == pytest.approx(r["members"] * r["member_images_per_s"]) for r in members)
    assert all(r["ratio"] == pytest.approx(1) for r in members if r["members"] == 1)
    assert all(r["threads"] == results["threads"]["rule_threads"] for r in members)
    # Toy sizes time a step or two: the kinds are there and measured, their sizes mean nothing.
    assert all(set(r["growing_s"]) == set(GROWING_KINDS) and r["growing_s"]["matmul and conv"] > 0
               and r["growing_s"]["Adam"] > 0 and r["step_s"] > 0 for r in members), [r["growing_s"] for r in members]
    packed = results["packed"]["rows"]
    assert [r["trials"] for r in packed] == [1, 2] and packed[0]["ratio"] == pytest.approx(1)
    assert all(r["images_per_s"] > 0 for r in packed) and not results["packed"]["streams"]
    probes = results["threads"]["rows"]
    assert [(r["load"], r["setting"]) for r in probes] == [
        ("busy", "default"), ("busy", "1 thread"), ("busy", "default, OMP_WAIT_POLICY=PASSIVE")]
    assert probes[1]["threads"] == 1 and all(r["images_per_s"] > 0 for r in probes)
    assert results["machine"]["cores"] >= 1 and results["machine"]["others_cores"] >= 0
    text = md.read_text()
    assert "trials/hour" in text and "together / one after another" in text and "Machine: CPU" in text
    assert "busy loop per core" in text and "ratio" in capsys.readouterr().out
    assert "| casts and copies | rest |" in text and "K trials (separate trainers" in text


def test_op_kinds_split_the_work_that_grows_with_members_from_the_rest():
    assert [op_kind(n) for n in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
                                 "aten::convolution_backward")] == ["matmul and conv"] * 6
    assert op_kind("aten::_fused_adam_") == op_kind("aten::_foreach_addcdiv_") == "Adam"
    assert op_kind("aten::copy_") == op_kind("aten::_to_copy") == "casts and copies"
    assert [op_kind(n) for n in ("aten::matmul", "aten::linear", "aten::leaky_relu", "aten::to", "MmBackward0",
                                 "Optimizer.step#Adam.step")] == ["rest"] * 6


def test_the_arithmetic_bound_lets_only_matrix_products_and_adam_grow():
    one = {"members": 1, "step_s": 0.010, "growing_s": {"matmul and conv": 0.002, "Adam": 0.001, "casts and copies": 1}}
    five = {"members": 5, "step_s": 0.030, "growing_s": {"matmul and conv": 0.006, "Adam": 0.005, "casts and copies": 9}}
    # 5 runs' steps (0.050 s) against one step plus the growth of the two (0.010 + 0.011 - 0.003 s).
    assert arithmetic_bound(one, five) == pytest.approx(0.050 / 0.018)
    assert arithmetic_bound(one, one) == pytest.approx(1)


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_flops_are_per_image_of_one_member_and_leave_the_weights_alone(data_root, model):
    # The DCGAN's members compute grouped convolutions, whose weight gradients torch's counter overcounts.
    c = TrainConfig(model=model, data="mnist" if model == "mlp" else str(data_root / "pets" / "cat"),
                    data_root=str(data_root), limit=64, batch_size=32, device="cpu", precision="fp32", ngf=8, ndf=8,
                    image_size=28 if model == "mlp" else 32)
    one, two = Trainer(c), Trainer([c, c.replace(seed=1)])
    before = two.state_dict(1)
    flops = train_flops_per_image(one)
    assert flops > 0 and train_flops_per_image(two) == pytest.approx(flops)
    after = two.state_dict(1)
    assert all(torch.equal(before["generator"][k], after["generator"][k]) for k in before["generator"])
    assert torch.equal(before["rng"], after["rng"])


def test_trials_stepped_in_turn_train_as_each_would_alone(data_root):
    c = TrainConfig(model="mlp", data="mnist", data_root=str(data_root), limit=64, batch_size=32, device="cpu",
                    precision="fp32")
    packed = [Trainer(c.replace(seed=s, lr_g=lr)) for s, lr in ((0, 2e-4), (1, 1e-3))]
    assert packed_images_per_s(packed, 1, 2) > 0
    for i, (s, lr) in enumerate(((0, 2e-4), (1, 1e-3))):
        alone = Trainer(c.replace(seed=s, lr_g=lr))
        for _ in range(3):
            alone.train_step()
        got, want = packed[i].state_dict()["generator"], alone.state_dict()["generator"]
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_unknown_sections_are_one_line(capsys, data_root):
    assert main(["--sections", "train,warp", "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--sections" in err[0] and all(s in err[0] for s in SECTIONS)


def test_no_section_starts_past_the_budget(tmp_path, data_root, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "RESULTS.md"
    assert main(["--toy", "--device", "cpu", "--sections", "members,train", "--budget", "0", "--data-root",
                 str(data_root), "--json", str(out), "--results", str(md)]) == 0
    results = json.loads(out.read_text())
    assert results["skipped"] == ["members", "train"] and results["train"] == [] and "members" not in results
    assert "Not run, past `--budget 0` s: members, train." in md.read_text()
    # A saved JSON (as a stopped device call returns it) renders the same Markdown afterwards.
    again = tmp_path / "again.md"
    assert main(["--from-json", str(out), "--results", str(again)]) == 0
    assert again.read_text() == md.read_text()
    assert main(["--from-json", str(tmp_path / "RESULTS.md"), "--results", str(again)]) == 2
    assert "--from-json" in capsys.readouterr().err


@pytest.mark.slow
def test_the_gpu_bench_script_rehearsed_on_cpu(tmp_path, cats, data_root):
    """`benchmarks/gpu_bench.sh` as a device call runs it (its carried folders, $OUT), at toy size."""
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "carry").mkdir()
    (tmp_path / "carry" / "cat").symlink_to(cats)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "MNIST").symlink_to(data_root / "MNIST")
    out = tmp_path / "out"
    env = {**os.environ, "CARRY": str(tmp_path / "carry"), "BENCH_CARRY": str(tmp_path / "bench"), "OUT": str(out),
           "BENCH_DATA": str(tmp_path / "root"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_bench.sh"), "--device", "cpu", "--toy"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "bench.json", "bench.log"]
    results = json.loads((out / "bench.json").read_text())
    assert [r["case"] for r in results["train"]] == ["DCGAN 64px cats, batch 32", "DCGAN 64px cats, batch 128",
                                                     "MLP GAN MNIST, batch 200", "MLP GAN MNIST, batch 32"]
    assert {"members", "packed", "memory"} <= set(results) and "skipped" not in results
    # The repository's results with this run appended: what comes back replaces benchmarks/RESULTS.md.
    before = (repo / "benchmarks" / "RESULTS.md").read_text()
    after = (out / "RESULTS.md").read_text()
    assert after.startswith(before) and after[len(before):].lstrip().startswith("## ")
