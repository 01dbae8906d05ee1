"""The CUDA path: its rules checked on the CPU with patched device queries, and `cuda`-marked tests
that run on a GPU and skip cleanly without one (CI has none)."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState

from gans.config import TrainConfig
from gans.trainer import resolve_precision

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


# ---------------------------------------------------------------- rules, on the CPU


@pytest.mark.parametrize("capability, precision", [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"),
                                                   ((9, 0), "bf16")])
def test_auto_precision_picks_bf16_only_where_cuda_computes_it_natively(monkeypatch, capability, precision):
    # V100 (7.0) and T4 (7.5) report is_bf16_supported() == True, but only emulate it.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert resolve_precision("auto", torch.device("cuda")) == precision
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"


def settings(device: str, workers: int):
    from study.run import build_settings, parse_args

    s, _ = build_settings(parse_args(["--preset", "quick", "--device", device, "--workers", str(workers)]))
    return s


@pytest.mark.parametrize("device, workers, capped_on", [("cpu", 2, None), ("cuda", 1, None), ("cuda", 4, "cuda"),
                                                         ("cuda:1", 2, "cuda:1")])
def test_the_gpu_memory_cap_is_set_only_for_cuda_studies_with_several_workers(monkeypatch, device, workers,
                                                                               capped_on):
    from study.engine import cap_gpu_memory

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d=None: calls.append((f, d)))
    s = settings(device, workers)
    assert cap_gpu_memory(s) == (capped_on is not None)
    assert calls == ([(pytest.approx(0.95 / workers), torch.device(capped_on))] if capped_on else [])
    assert s.ctx.memory_capped == (device != "cpu" and workers > 1)


@pytest.mark.parametrize("capped", [False, True])
def test_out_of_memory_fails_the_trial_alone_or_under_a_shared_cap_is_retried(monkeypatch, tmp_path, capped):
    import dataclasses

    from study import objective
    from study.engine import Retry, claim, run_trial
    from study.objective import Objective, TrialContext

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(objective, "train_and_log", oom)
    ctx = TrialContext(study_name="oom", base=TrainConfig(epochs=1), space={}, metric="fid",
                       checkpoints=str(tmp_path), memory_capped=capped)
    study = optuna.create_study(direction="minimize")
    study.enqueue_trial({})
    retry = Retry(ctx)
    run_trial(study, claim(study), Objective(ctx), retry)
    first = study.trials[0]
    assert first.state == TrialState.FAIL
    if capped:  # the neighbours' memory, not the configuration: the slot goes back to the queue
        assert "fail_reason" not in first.user_attrs and retry.retried == [0]
        again = study.trials[1]
        assert again.state == TrialState.WAITING and again.user_attrs["retry_of"] == 0
        assert again.user_attrs["retries"] == 1 and "memory cap" in again.user_attrs["retry_reason"]
    else:
        assert first.user_attrs["fail_reason"].startswith("out of memory: CUDA out of memory")
        assert len(study.trials) == 1 and retry.retried == []
    assert dataclasses.replace(ctx).memory_capped == capped


# ---------------------------------------------------------------- on a GPU


@pytest.mark.cuda
@needs_gpu
def test_a_bf16_dcgan_trains_saves_resumes_and_evaluates_on_the_gpu(tmp_path, cats):
    from gans.metrics import build_evaluator
    from gans.trainer import Trainer, load_checkpoint

    config = TrainConfig(model="dcgan", data=str(cats), image_size=64, limit=128, batch_size=32, epochs=3,
                         device="cuda", precision="auto", metrics="fid,kid", num_samples=256, num_real=128,
                         kid_subset_size=100, eval_every=3, domain_data=str(cats.parent))
    trainer = Trainer(config, evaluator=build_evaluator(config))
    assert trainer.precision == ("bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp32")
    records = list(trainer.run())
    assert all(torch.isfinite(torch.tensor([r["loss_d"], r["loss_g"]])).all() for r in records)
    assert records[-1]["fid"] > 0 and records[-1]["num_fake"] == 256
    trainer.save(tmp_path / "last.pt")
    again = Trainer(config.replace(epochs=4))
    again.load_state_dict(load_checkpoint(tmp_path / "last.pt", map_location="cuda"))
    assert again.epoch == 3 and [r["epoch"] for r in again.run()] == [4]


@pytest.mark.cuda
@needs_gpu
def test_two_workers_on_one_gpu_finish_exactly_the_target(tmp_path, data_root):
    from study.run import main

    assert main(["--preset", "quick", "--trials", "4", "--workers", "2", "--device", "cuda", "--data-root",
                 str(data_root), "--storage", str(tmp_path / "optuna.journal"), "--tracking-uri",
                 f"sqlite:///{tmp_path}/mlflow.db", "--checkpoints", str(tmp_path / "ck"), "--no-progress",
                 "--confirm-top", "0", "--no-report"]) == 0
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="quick-mlp-mnist",
                              storage=JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal"))))
    assert len(study.trials) == 4 and all(t.state != TrialState.WAITING for t in study.trials)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("augment", ["none", "jitter-blur", "flip", "diffaug"])
def test_the_step_is_captured_as_a_graph_and_trains_as_eager_does(cats, augment):
    from gans.trainer import Trainer

    # fp32: the graph replays the eager kernels, so over two epochs only cuDNN's nondeterministic
    # transposed-convolution backward separates the two.
    config = TrainConfig(model="dcgan", data=str(cats), image_size=64, limit=128, batch_size=32, epochs=2,
                         device="cuda", precision="fp32", augment=augment, real_label=0.9, fake_label=0.1)
    graphed, eager = Trainer(config, graph=True), Trainer(config, graph=False)
    losses = [[(r["loss_d"], r["loss_g"]) for r in t.run()] for t in (graphed, eager)]
    assert graphed.use_graph and graphed.graph_failure == ""
    assert losses[0] == pytest.approx(losses[1], rel=0.02)


@pytest.mark.cuda
@needs_gpu
def test_device_memory_stays_flat_over_consecutive_trials(cats):
    import gc

    from gans.trainer import Trainer

    config = TrainConfig(model="dcgan", data=str(cats), image_size=64, limit=128, batch_size=32, epochs=2,
                         device="cuda", augment="jitter-blur")
    held = []
    for seed in range(1, 5):  # graphs, their pools and the optimizers' states go with each trial
        trainer = Trainer(config.replace(seed=seed))
        list(trainer.run())
        del trainer
        gc.collect()
        torch.cuda.synchronize()
        held.append(torch.cuda.memory_allocated())
    assert held[-1] <= held[0] + 2**20, f"device memory after each trial: {held}"
