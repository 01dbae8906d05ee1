"""Search space, space files, presets and baselines of `study.run` (no training)."""

from __future__ import annotations

import optuna
import pytest

from gans.config import TrainConfig
from gans.errors import UserError
from study.baselines import BASELINES, fitting
from study.run import build_settings, main, parse_args
from study.space import (SPACES, apply_overrides, default_space, int_range, load_space_file, sample_config,
                         split_fixed, validate)


def settings_for(*argv: str):
    """The settings of a command; `--preset full` unless it names one (the default depends on the machine)."""
    return build_settings(parse_args(list(argv) if "--preset" in argv else ["--preset", "full", *argv]))


def test_default_spaces_are_valid_configs_and_name_the_issue_fields():
    for family, model, size in (("dcgan", "dcgan", 64), ("mlp", "mlp", 28)):
        space = SPACES[family]
        validate(space, TrainConfig(model=model, image_size=size))
        for name in ("epochs", "lr_g", "lr_d", "beta1", "batch_size", "nz", "real_label", "fake_label", "augment"):
            assert name in space
    assert {"ngf", "ndf"} <= set(SPACES["dcgan"]) and not {"hidden", "dropout"} & set(SPACES["dcgan"])
    assert {"hidden", "dropout"} <= set(SPACES["mlp"])
    epochs = SPACES["dcgan"]["epochs"]
    assert (epochs.low, epochs.high, epochs.step) == (50, 1000, 50)
    assert SPACES["dcgan"]["lr_g"].log and SPACES["dcgan"]["lr_d"].log


def test_space_file_yaml_narrows_fixes_and_keeps_step(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("epochs: [100, 620]\nlr_g: {low: 1e-4, high: 5e-4}\nbatch_size: [32, 64]\n"
                 "beta1: 0.5\naugment: {choices: [none, diffaug]}\n")
    space = apply_overrides(default_space("dcgan"), load_space_file(f), f"--space {f}")
    e = space["epochs"]
    assert (e.kind, e.low, e.high, e.step) == ("int", 100, 600, 50)  # off-grid top snapped down
    assert space["lr_g"].kind == "float" and space["lr_g"].log and space["lr_g"].low == pytest.approx(1e-4)
    assert space["batch_size"].choices == (32, 64)
    assert space["augment"].choices == ("none", "diffaug")
    searched, fixed = split_fixed(space)
    assert fixed == {"beta1": 0.5} and "beta1" not in searched


def test_space_file_toml(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('epochs = 200\nreal_label = [0.85, 0.95]\n[lr_d]\nlow = 1e-4\nhigh = 2e-4\nlog = false\n')
    space = apply_overrides(default_space("mlp"), load_space_file(f), "--space")
    assert space["epochs"].fixed and space["epochs"].value == 200
    assert (space["real_label"].low, space["real_label"].high, space["real_label"].step) == (0.85, 0.95, 0.05)
    assert not space["lr_d"].log


@pytest.mark.parametrize("text, needle", [
    ("bogus: 3\n", "'bogus' is not a training config field"),
    ("epochs: [600, 100]\n", "low 600 is above high 100"),
    ("epochs: [1, 2, 3]\n", "a range is [low, high]"),
    ("lr_g: {low: 0, high: 1e-3}\n", "log-scale range needs low > 0"),
    ("epochs: ten\n", "expected a number"),
    ("- 1\n- 2\n", "expected a mapping"),
    ("epochs: [1, 2\n", "not valid YAML"),
])
def test_bad_space_files_name_the_file(tmp_path, text, needle):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(UserError) as e:
        apply_overrides(default_space("dcgan"), load_space_file(f), f"--space {f}")
    assert needle in str(e.value) and str(f) in str(e.value)


def test_invalid_values_in_a_space_are_rejected_with_the_field(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("real_label: [0.5, 1.5]\n")
    with pytest.raises(UserError, match="real_label"):
        settings_for("--model", "mlp", "--space", str(f))
    f.write_text("augment: {choices: [none, sparkles]}\n")
    with pytest.raises(UserError, match="sparkles"):
        settings_for("--model", "mlp", "--space", str(f))


def test_cli_flags_fix_fields_and_presets_fill_defaults():
    s, searched = settings_for("--preset", "quick", "--lr-g", "3e-4", "--metric", "kid")
    base = s.ctx.base
    assert "lr_g" not in searched and base.lr_g == 3e-4
    assert "epochs" not in searched and base.epochs == 3  # the quick preset fixes it
    assert (base.model, base.data, base.image_size, base.limit) == ("mlp", "mnist", 28, 2000)
    assert "kid" in base.metric_names and s.metric == "kid"
    assert s.study_name == "quick-mlp-mnist" and s.trials == 4
    assert s.storage.endswith("/optuna.db") and s.storage.startswith("sqlite:////")
    assert s.tracking_uri.endswith("/mlflow.db")

    full, searched = settings_for("--model", "dcgan", "--data", "some/cats")
    assert full.study_name == "dcgan-cats" and full.trials == 50 and full.ctx.base.eval_every == 50
    assert {"epochs", "ngf", "ndf"} <= set(searched) and "hidden" not in searched
    assert (full.min_resource, full.max_resource) == (50, 1000)


def test_parallel_workers_default_to_a_journal_file():
    s, _ = settings_for("--preset", "quick", "--workers", "2")
    assert s.storage.endswith("optuna.journal") and "://" not in s.storage


def test_sampled_configs_lie_in_the_space_and_keep_grid_values():
    s, searched = settings_for("--preset", "quick")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        config = sample_config(trial, searched, s.ctx.base)
        for name, p in searched.items():
            assert p.contains(getattr(config, name)), (name, getattr(config, name))
        assert round(config.real_label / 0.05, 9).is_integer()  # 0.9, not 0.9000000000000001
        study.tell(trial, 1.0)


def test_baselines_fit_their_model_and_data_only():
    dcgan = split_fixed(default_space("dcgan"))[0]
    fit, skipped = fitting("dcgan", "/photos/cat", dcgan)
    assert [b.name for b, _ in fit] == ["dcgan-jitter-blur-54", "dcgan-smooth-600"]
    first = dict(fit[0][1])
    assert first == {k: BASELINES["dcgan-jitter-blur-54"].params[k] for k in dcgan}
    assert first["nz"] == 30 and first["epochs"] == 54 and first["augment"] == "jitter-blur"
    assert fitting("dcgan", "mnist", dcgan)[0] == []  # the DCGAN seeds trained on photo folders
    mlp = split_fixed(default_space("mlp"))[0]
    assert [b.name for b, _ in fitting("mlp", "mnist", mlp)[0]] == ["mlp-gan-100"]
    assert fitting("cgan", "mnist", mlp)[0] == []
    narrowed = apply_overrides(default_space("mlp"), {"batch_size": [32, 64]}, "test")
    fit, skipped = fitting("mlp", "mnist", split_fixed(narrowed)[0])
    assert fit == [] and "batch_size=200 outside" in skipped[0]


def test_a_new_searched_field_needs_no_baseline_edit_the_field_default_stands_in():
    # embed_dim: a field mlp-gan-100 does not name; TrainConfig's default is 10.
    mlp = split_fixed(default_space("mlp"))[0]
    fit, _ = fitting("mlp", "mnist", {**mlp, "embed_dim": int_range(5, 20)})
    assert [(b.name, params["embed_dim"]) for b, params in fit] == [("mlp-gan-100", 10)]
    fit, skipped = fitting("mlp", "mnist", {**mlp, "embed_dim": int_range(16, 32)})
    assert fit == [] and "embed_dim=10 (the field default) outside" in skipped[0]


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["--space", str(tmp_path / "none.yaml"), "--preset", "quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --space") and "\n" not in err
    assert main(["--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_an_enqueued_baseline_is_sampled_exactly_even_off_grid(recwarn):
    from study.objective import Objective, TrialContext

    s, searched = settings_for("--model", "dcgan", "--data", "cats")
    (baseline, params), _ = fitting("dcgan", "cats", searched)[0]
    study = optuna.create_study()
    study.enqueue_trial(params, user_attrs={"baseline": baseline.name})
    trial = study.ask()
    config = Objective(TrialContext(s.study_name, s.ctx.base, searched, "fid", "ck")).config(trial)
    assert config.epochs == 54  # between the 50-epoch grid points, as the seed ran it
    assert {k: getattr(config, k) for k in params} == params
    assert not [w for w in recwarn if "Fixed parameter" in str(w.message)]


def test_interrupted_trials_do_not_count_towards_the_target():
    from optuna.trial import TrialState, create_trial

    from study.run import finished_count

    study = optuna.create_study()
    study.add_trial(create_trial(value=1.0))
    study.add_trial(create_trial(state=TrialState.PRUNED))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "loss_d became nan at epoch 2"}))
    study.add_trial(create_trial(state=TrialState.FAIL))  # Ctrl-C or a crash: no reason recorded
    assert finished_count(study) == 3


def test_a_study_resumed_with_another_metric_is_refused(tmp_path):
    from study.run import open_study

    storage = ["--storage", f"sqlite:///{tmp_path}/optuna.db"]
    s, searched = settings_for("--preset", "quick", *storage)
    study, notes = open_study(s, "quick", searched)
    assert study.user_attrs["metric"] == "fid" and notes[0].startswith("baseline mlp-gan-100 enqueued")
    s, searched = settings_for("--preset", "quick", "--metric", "kid", *storage)
    with pytest.raises(UserError, match="--metric kid: study 'quick-mlp-mnist'.*--metric fid"):
        open_study(s, "quick", searched)


def test_the_model_and_image_size_follow_the_data():
    s, searched = settings_for()
    assert (s.ctx.base.model, s.ctx.base.image_size, s.ctx.base.data) == ("mlp", 28, "mnist")
    assert s.study_name == "mlp-mnist" and "hidden" in searched
    s, searched = settings_for("--data", "some/cats")
    assert (s.ctx.base.model, s.ctx.base.image_size) == ("dcgan", 64) and "ngf" in searched
    s, _ = settings_for("--data", "fashion-mnist", "--model", "cgan")
    assert (s.ctx.base.model, s.ctx.base.image_size) == ("cgan", 28)
    s, _ = settings_for("--data", "some/cats", "--image-size", "32")
    assert (s.ctx.base.model, s.ctx.base.image_size) == ("dcgan", 32)


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_every_full_space_reaches_1000_epochs_and_evaluates_every_50_at_most(model):
    s, searched = settings_for("--model", model, *(["--data", "some/cats"] if model == "dcgan" else []))
    assert searched["epochs"].high >= 1000 and 0 < s.ctx.base.eval_every <= 50
    assert s.horizon >= 1000 and s.horizon_eval_every <= 50


def test_the_cpu_preset_is_the_folklore_scale_mlp_study():
    s, searched = settings_for("--preset", "cpu")
    base = s.ctx.base
    assert (base.model, base.data, base.image_size, base.limit, base.batch_size) == ("mlp", "mnist", 28, 1000, 32)
    assert "batch_size" not in searched and 1000 // base.batch_size == 31
    assert (searched["epochs"].low, searched["epochs"].high) == (100, 1000)
    assert searched["hidden"].choices == (128, 256)
    assert s.trials == 16 and s.workers == 2 and s.horizon == 1000 and s.horizon_eval_every == 25
    assert s.prune_warmup == 250 and s.study_name == "cpu-mlp-mnist"


def test_the_median_pruner_lets_a_slow_starter_through_its_warm_up():
    from optuna.trial import create_trial

    from study.engine import PRUNERS

    s, _ = settings_for("--preset", "cpu")
    early = {e: 100.0 for e in range(50, 1001, 50)}
    for pruner, pruned_at_first_report in ((PRUNERS["median"](s), False),
                                           (optuna.pruners.MedianPruner(n_startup_trials=5), True)):
        study = optuna.create_study(pruner=pruner)
        for _ in range(5):
            study.add_trial(create_trial(value=100.0, intermediate_values=early))
        slow = study.ask()
        slow.report(400.0, 50)  # far worse than the others at its first evaluation ...
        assert slow.should_prune() == pruned_at_first_report
        if pruned_at_first_report:
            continue  # without a warm-up (the old pruner) it would have been stopped here
        for epoch in (100, 150, 200):
            slow.report(300.0, epoch)
            assert not slow.should_prune()
        slow.report(60.0, 250)  # ... and better than all of them once it got going
        assert not slow.should_prune()
        hopeless = study.ask()
        hopeless.report(500.0, 300)  # past the warm-up the pruner still prunes
        assert hopeless.should_prune()
