"""The search space: which `TrainConfig` fields a study searches, over which ranges, by the same names.

A space is a dict field name -> `Param`. Each model family has a default space (`SPACES`); presets and
a user's `--space FILE` (YAML or TOML) narrow or fix its entries, and CLI flags fix fields outright.
A fixed entry is not an Optuna parameter: it goes into the base config. A study's space is read back
from its trials' Optuna distributions (`trial_space`); `SeededTrial` draws from a space without
Optuna, the same way on any machine (the random controls of `study.folklore` and `study.confirm`).

Space file entries, by field name:

    epochs: [100, 600]               # a range for a numeric field (step and log scale kept)
    lr_g: {low: 1.0e-4, high: 5.0e-4, log: true}
    batch_size: [32, 64]             # a subset of choices for a categorical entry
    augment: {choices: [none, diffaug]}
    beta1: 0.5                       # a single value fixes the field
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gans.augment import get_augment
from gans.config import TrainConfig, field_types
from gans.errors import UserError, first_line

KINDS = ("int", "float", "categorical", "fixed")


@dataclass(frozen=True)
class Param:
    """One searched (or fixed) field. `step=None` means continuous for floats and 1 for ints."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()
    value: Any = None

    @property
    def fixed(self) -> bool:
        return self.kind == "fixed"

    def suggest(self, trial, name: str) -> Any:
        """The value `trial` (an optuna.Trial) draws for field `name`."""
        if self.kind == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        if self.kind == "float":
            v = trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)
            # A grid point like 0.7 + 4 * 0.05 comes back as 0.9000000000000001; keep the grid's value.
            return min(max(round(v, 10), self.low), self.high) if self.step else v
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        return self.value

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in this entry (ranges by bounds only: an off-grid value counts)."""
        if self.kind == "categorical":
            return value in self.choices
        if self.kind == "fixed":
            return value == self.value
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def values_to_check(self) -> list[Any]:
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "fixed":
            return [self.value]
        return [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        if self.kind == "fixed":
            return f"= {self.value}"
        extra = " log" if self.log else (f" step {self.step}" if self.step else "")
        return f"[{self.low}, {self.high}]{extra}"


def int_range(low: int, high: int, *, step: int = 1, log: bool = False) -> Param:
    return Param("int", low, high, step=step, log=log)


def float_range(low: float, high: float, *, step: float | None = None, log: bool = False) -> Param:
    return Param("float", low, high, step=step, log=log)


def choice(*choices: Any) -> Param:
    return Param("categorical", choices=tuple(choices))


def fixed(value: Any) -> Param:
    return Param("fixed", value=value)


Space = dict[str, Param]

FAMILY = {"mlp": "mlp", "cgan": "mlp", "dcgan": "dcgan", "cdcgan": "dcgan"}
"""model -> its family: conditional models share their unconditional family's space"""

# Label targets run on a 0.05 grid so that the folklore values (0.9/0.1) are points of the space.
_COMMON = {
    "lr_g": float_range(1e-5, 1e-3, log=True),
    "lr_d": float_range(1e-5, 1e-3, log=True),
    "beta1": float_range(0.0, 0.9),
    "nz": int_range(16, 256, log=True),
    "real_label": float_range(0.7, 1.0, step=0.05),
    "fake_label": float_range(0.0, 0.3, step=0.05),
}

# Budgets reach 1000 epochs in every family so that a default study can test the folklore's 500-600
# and its "1000 goes weird". Flips and colour jitter make no sense for digits and clothes.
SPACES: dict[str, Space] = {
    "dcgan": {
        "epochs": int_range(50, 1000, step=50),
        **_COMMON,
        "batch_size": choice(16, 32, 64, 128),
        "ngf": choice(16, 32, 64, 128),
        "ndf": choice(16, 32, 64, 128),
        "augment": choice("none", "jitter-blur", "rotate", "flip", "diffaug"),
    },
    "mlp": {
        "epochs": int_range(50, 1000, step=50),
        **_COMMON,
        "batch_size": choice(32, 64, 128, 200, 256),
        "hidden": choice(128, 256, 512, 1024),
        "dropout": float_range(0.0, 0.5),
        "augment": choice("none", "rotate", "diffaug"),
    },
}
"""family -> its default search space (every key a `TrainConfig` field)"""


def default_space(model: str) -> Space:
    try:
        return dict(SPACES[FAMILY[model]])
    except KeyError:
        raise UserError(f"--model {model}: no search space for this model") from None


# ---------------------------------------------------------------- overrides (presets, files)


def _number(raw: Any, typ: type, where: str) -> int | float:
    # PyYAML reads "1e-4" (no dot) as a string; accept it for numeric fields.
    if isinstance(raw, str):
        try:
            raw = float(raw)
        except ValueError:
            raise UserError(f"{where}: expected a number, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise UserError(f"{where}: expected a number, got {raw!r}")
    if typ is int:
        if not float(raw).is_integer():
            raise UserError(f"{where}: expected an integer, got {raw!r}")
        return int(raw)
    return float(raw)


def _value(raw: Any, typ: type, where: str) -> Any:
    if typ in (int, float):
        return _number(raw, typ, where)
    if typ is str:
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise UserError(f"{where}: expected a string, got {raw!r}")
        return str(raw)
    return raw


def override(current: Param | None, raw: Any, typ: type, where: str) -> Param:
    """`current` narrowed or fixed by one space-file entry `raw` (see the module docstring)."""
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"low", "high", "step", "log", "choices", "value"}
        if unknown:
            raise UserError(f"{where}: unknown keys {sorted(unknown)}; use low, high, step, log, choices or value")
        if "value" in raw:
            return fixed(_value(raw["value"], typ, where))
        if "choices" in raw:
            return _choices(raw["choices"], typ, where)
        if typ not in (int, float):
            raise UserError(f"{where}: a range needs a numeric field; give choices or a value")
        base = current if current is not None and current.kind in ("int", "float") else None
        low = _number(raw["low"], typ, where) if "low" in raw else (base.low if base else None)
        high = _number(raw["high"], typ, where) if "high" in raw else (base.high if base else None)
        if low is None or high is None:
            raise UserError(f"{where}: a new range needs both low and high")
        step = _number(raw["step"], typ, where) if raw.get("step") is not None else (base.step if base else None)
        log = bool(raw["log"]) if "log" in raw else (base.log if base else False)
        return _range(typ, low, high, step, log, where)
    if isinstance(raw, (list, tuple)):
        if typ in (int, float) and not (current is not None and current.kind == "categorical"):
            if len(raw) != 2:
                raise UserError(f"{where}: a range is [low, high]; for a set of values use {{choices: [...]}}")
            low, high = (_number(v, typ, where) for v in raw)
            step = current.step if current is not None and current.kind in ("int", "float") else None
            log = current.log if current is not None and current.kind in ("int", "float") else False
            return _range(typ, low, high, step, log, where)
        return _choices(raw, typ, where)
    return fixed(_value(raw, typ, where))


def _choices(raw: Any, typ: type | None, where: str) -> Param:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise UserError(f"{where}: choices must be a non-empty list")
    values = tuple(dict.fromkeys(_value(v, typ, where) for v in raw))
    return fixed(values[0]) if len(values) == 1 else choice(*values)


def _range(typ: type, low, high, step, log: bool, where: str) -> Param:
    if low > high:
        raise UserError(f"{where}: low {low} is above high {high}")
    if log and step not in (None, 1):
        step = None  # a log scale has no grid; the narrowed range drops the old step
    if log and low <= 0:
        raise UserError(f"{where}: a log-scale range needs low > 0, got {low}")
    if step is not None and step <= 0:
        raise UserError(f"{where}: step must be > 0, got {step}")
    if low == high:
        return fixed(low)
    if typ is int:
        step = int(step or 1)
        # Optuna would shrink an off-grid upper bound anyway (with a warning); do it up front.
        return int_range(low, low + (high - low) // step * step, step=step, log=log)
    if step:
        high = round(low + math.floor((high - low) / step + 1e-9) * step, 10)
    return float_range(low, high, step=step, log=log)


def apply_overrides(space: Space, entries: Mapping[str, Any], source: str) -> Space:
    """`space` with each entry of a preset or space file applied; `source` names it in errors."""
    types = field_types(TrainConfig)
    out = dict(space)
    for name, raw in entries.items():
        if name not in types:
            raise UserError(f"{source}: {name!r} is not a training config field "
                            f"(fields: {', '.join(types)})")
        out[name] = override(out.get(name), raw, types[name], f"{source}: {name}")
    return out


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Entries of a `--space` file (YAML or TOML)."""
    path = Path(path)
    where = f"--space {path}"
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"{where}: cannot read ({e.strerror or e})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise UserError(f"{where}: use a .yaml, .yml or .toml file")
    except UserError:
        raise
    except Exception as e:  # yaml.YAMLError, tomllib.TOMLDecodeError
        raise UserError(f"{where}: not valid {suffix[1:].upper()}: {first_line(e) or type(e).__name__}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of field names to ranges or values")
    return data


def split_fixed(space: Space) -> tuple[Space, dict[str, Any]]:
    """(searched entries, fixed field values)."""
    searched = {k: p for k, p in space.items() if not p.fixed}
    return searched, {k: p.value for k, p in space.items() if p.fixed}


def validate(space: Space, base: TrainConfig, source: str = "search space") -> None:
    """Every bound and choice must make a valid config with `base`; raise a UserError otherwise."""
    for name, p in space.items():
        for v in p.values_to_check():
            try:
                base.replace(**{name: v})
            except UserError as e:
                raise UserError(f"{source}: {name} = {v!r} is not a valid value ({e})") from None
            if name == "augment":
                get_augment(v)
        if p.kind == "float" and not all(math.isfinite(x) for x in (p.low, p.high)):
            raise UserError(f"{source}: {name}: bounds must be finite")


def sample_config(trial, space: Space, base: TrainConfig) -> TrainConfig:
    """The config of one trial: `base` with every searched field drawn from `trial`."""
    return base.replace(**{name: p.suggest(trial, name) for name, p in space.items()})


class SeededTrial:
    """The part of an optuna.Trial that `sample_config` uses, drawing uniformly (log-uniformly for
    log ranges) from one `random.Random`: configurations drawn the same way on any machine, with or
    without Optuna."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def suggest_int(self, name, low, high, step=1, log=False):
        if log:
            return int(round(math.exp(self.rng.uniform(math.log(low), math.log(high)))))
        return self.rng.randrange(low, high + 1, step)

    def suggest_float(self, name, low, high, step=None, log=False):
        if step:
            return low + step * self.rng.randrange(int(round((high - low) / step)) + 1)
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)

    def suggest_categorical(self, name, choices):
        return self.rng.choice(list(choices))


def random_configs(space: Space, base: TrainConfig, n: int, seed: int) -> list[TrainConfig]:
    """`n` configs: `base` with every entry of `space` drawn by one `random.Random(seed)`, entries in
    name order. The first k are the same for any `n` >= k and any order of `space`."""
    rng = random.Random(seed)
    ordered = {name: space[name] for name in sorted(space)}
    return [sample_config(SeededTrial(rng), ordered, base) for _ in range(n)]


def from_distribution(d) -> Param:
    """The `Param` of one Optuna distribution (what a trial recorded for a searched field)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(d, CategoricalDistribution):
        return choice(*d.choices)
    return Param("int" if isinstance(d, IntDistribution) else "float", d.low, d.high, step=d.step, log=d.log)


def trial_space(trials) -> Space:
    """The searched space of a study, from its trials' distributions (the first trial recording a
    field gives its entry)."""
    out: Space = {}
    for t in sorted(trials, key=lambda t: t.number):
        for name, d in t.distributions.items():
            out.setdefault(name, from_distribution(d))
    return out
