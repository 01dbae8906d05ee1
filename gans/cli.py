"""Command-line plumbing shared by every entry point: flags generated from `TrainConfig`, and the
rule that user errors become one line on stderr with exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from typing import Callable, Iterable

from gans.config import TrainConfig, UserError, field_docs, field_types, flag


def add_config_flags(
    parser: argparse.ArgumentParser,
    *,
    defaults: TrainConfig | None = None,
    skip: Iterable[str] = (),
) -> None:
    """Add one flag per `TrainConfig` field; unset flags stay `None` so presets can fill them."""
    docs = field_docs(TrainConfig)
    types = field_types(TrainConfig)
    defaults = defaults or TrainConfig()
    group = parser.add_argument_group("training configuration (TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        group.add_argument(
            flag(f.name),
            dest=f.name,
            type=types[f.name],
            default=None,
            metavar=f.name.upper(),
            help=f"{docs.get(f.name, '')} (default: {default!r})",
        )


def config_overrides(args: argparse.Namespace) -> dict:
    """The config fields the user set on the command line."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def main_guard(main: Callable[..., int | None]) -> Callable[..., int]:
    """Run `main`; a `UserError` (or Ctrl-C) becomes one line on stderr and a non-zero exit."""

    @functools.wraps(main)
    def wrapper(*a, **kw) -> int:
        try:
            return int(main(*a, **kw) or 0)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
