"""TrainConfig: one name per parameter, flags generated from fields, validation names the flag."""

import argparse
import dataclasses

import pytest

from gans.cli import add_config_flags, config_overrides
from gans.config import TrainConfig, field_docs
from gans.errors import UserError


def test_every_field_has_a_one_line_docstring():
    docs = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        assert docs.get(f.name), f"{f.name} has no docstring"
        assert "\n" not in docs[f.name]


def test_flags_are_generated_from_fields():
    p = argparse.ArgumentParser()
    add_config_flags(p)
    args = p.parse_args(["--lr-g", "3e-4", "--batch-size", "32", "--augment", "flip"])
    over = config_overrides(args)
    assert over == {"lr_g": 3e-4, "batch_size": 32, "augment": "flip"}
    c = TrainConfig(**over)
    assert dataclasses.asdict(c)["lr_g"] == 3e-4
    flags = {a.option_strings[0] for a in p._actions if a.option_strings}
    assert {"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)} <= flags


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"model": "vae"}, "--model"),
        ({"lr_g": 0.0}, "--lr-g"),
        ({"lr_d": -1e-3}, "--lr-d"),
        ({"ngf": 0}, "--ngf"),
        ({"ndf": -2}, "--ndf"),
        ({"nz": 0}, "--nz"),
        ({"real_label": 1.1}, "--real-label"),
        ({"fake_label": -0.1}, "--fake-label"),
        ({"image_size": 48}, "--image-size"),
        ({"model": "dcgan", "image_size": 28}, "--image-size"),
        ({"beta1": 1.0}, "--beta1"),
        ({"device": "tpu"}, "--device"),
        ({"limit": -1}, "--limit"),
    ],
)
def test_bad_values_name_their_flag(changes, flag):
    with pytest.raises(UserError, match=flag):
        TrainConfig(**changes)
