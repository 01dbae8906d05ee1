"""The folklore's own experiment (`study.folklore`, `python -m study.run --preset folklore`): its
configurations, the groups that train together, and the preset end to end at toy size on the CPU."""

from __future__ import annotations

import optuna
import pytest

from gans.trainer import MEMBER_FIELDS
from study import folklore
from study.run import main as run_main


def test_configurations_are_the_seeds_the_paper_and_fixed_random_controls():
    base = folklore.base_config("photos")
    confs = folklore.configurations(base)
    assert [c.name for c in confs] == ["dcgan-smooth-600", "dcgan-paper", "dcgan-jitter-blur-54", "random-0",
                                       "random-1"]
    smooth, paper, jitter = (c.config for c in confs[:3])
    assert (smooth.real_label, smooth.fake_label, smooth.batch_size) == (0.9, 0.1, 32)
    assert "batch 32 instead of 64" in confs[0].changed
    assert (paper.lr_g, paper.lr_d, paper.beta1, paper.real_label, paper.augment) == (2e-4, 2e-4, 0.5, 1.0, "none")
    assert (jitter.lr_g, jitter.augment, jitter.nz) == (3e-4, "jitter-blur", 30)
    for c in confs:  # one horizon, one evaluation grid, one split, held-out reference
        assert (c.config.epochs, c.config.eval_every, c.config.limit, c.config.reference) == (
            folklore.HORIZON, folklore.EVAL_EVERY, folklore.LIMIT, "heldout")
    # The controls are drawn, not chosen, and the same on every machine.
    assert [c.config for c in folklore.configurations(base)[3:]] == [c.config for c in confs[3:]]
    assert confs[3].config != confs[4].config
    # The smoothing team and the paper differ only in label targets: they train as one stack.
    groups = folklore.together(confs)
    assert [[c.name for c in g] for g in groups][0] == ["dcgan-smooth-600", "dcgan-paper"]
    assert {f for f in ("real_label", "fake_label") if getattr(smooth, f) != getattr(paper, f)} <= set(MEMBER_FIELDS)
    fixed = folklore.configurations(base, fixed={"ngf": 8})
    assert all(c.config.ngf == 8 and "ngf=8" in c.changed for c in fixed)


def test_group_cost_counts_steps_and_evaluations():
    confs = folklore.configurations(folklore.base_config("photos"))
    # 1,200 epochs x 30 steps x 10 ms + (48 evaluations + 2 re-scorings) x 5 runs x 0.5 s, with the margin.
    assert folklore.group_cost(confs[:1], 5, 0.01, 0.5, 30) == pytest.approx(folklore.COST_MARGIN * (360 + 125))


@pytest.mark.slow
def test_the_folklore_preset_runs_end_to_end_on_a_cpu(tmp_path, cats, pets, domain, monkeypatch, capsys):
    domain("pets")  # the CPU's extractor with --domain-data pets: the pets classifier, trained once per session
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    assert run_main(["--preset", "folklore", "--data", str(cats), "--domain-data", str(pets), "--device", "cpu",
                     "--limit", "64", "--horizon", "4", "--confirm-seeds", "2", "--ngf", "8", "--ndf", "8",
                     "--nz", "16",
                     "--num-samples", "100", "--storage", storage, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
                     "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "the first 64 photos train, the other 1936 are the held-out reference" in err
    assert "not the folklore's measurement" in err and "image-iterations" in err
    study = optuna.load_study(study_name="folklore-cat", storage=storage)
    assert sorted(t.user_attrs["baseline"] for t in study.trials) == sorted(
        c.name for c in folklore.configurations(folklore.base_config("x")))
    md = (tmp_path / "report-folklore-cat" / "report.md").read_text()
    assert "dcgan-smooth-600" in md and "random-1" in md
