"""Command-line plumbing shared by every entry point: the parser every CLI builds (`Parser`: a bad
or misspelled flag is one line with a suggestion, not a page of usage), flags generated from
`TrainConfig`, descriptions from module docstrings, and the rule that user errors become one line on
stderr with exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import re
import sys
from pathlib import Path
from typing import Callable, Iterable

from gans.config import TrainConfig, field_docs, field_types, flag
from gans.errors import UserError


class Parser(argparse.ArgumentParser):
    """The `ArgumentParser` of every gan-study CLI. A usage error is one line on stderr and exit
    code 2, like a `UserError`; an unknown flag names the closest known one (`--trails` ->
    `--trials`)."""

    def error(self, message: str):
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        if unknown:
            message = "; ".join(self.unrecognized(unknown.group(1).split()))
        self.exit(2, f"error: {message}\n")

    def unrecognized(self, words: list[str]) -> list[str]:
        """One phrase per unknown flag in `words` (stray values are named only when no flag is)."""
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        flags = [w for w in words if w.startswith("-")] or words
        out = []
        for word in flags:
            close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.75)
            out.append(f"unrecognized argument {word}" + (f"; did you mean {close[0]}?" if close else ""))
        return out


def describe(doc: str) -> str:
    """A CLI's description from its module docstring: the first paragraph in whole sentences, on one
    line, without the leading "`python -m x`: "."""
    text = " ".join(doc.split("\n\n")[0].split())
    text = re.sub(r"^`python -m [\w.]+`: ", "", text)
    return text[:1].upper() + text[1:]


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


def ensure_writable_dir(path: Path, flag: str = "--out") -> Path:
    """Create `path` if needed and prove it writable, or raise a UserError naming `flag`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write there ({e.strerror or e})") from None
    return path
