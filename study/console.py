"""What a study prints: a study-level progress bar (trials done / pruned / failed, best so far), a
trial-level one with ETA, one line per finished trial, and at the end the top trials and the commands
that open the results. Progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Iterable

from study.objective import takes_a_slot
from tracking.stores import FAIL_REASON, best_of


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _si(x: float) -> str:
    """A rate in 3-4 characters: 950, 3.1k, 19k."""
    if x >= 10_000:
        return f"{x / 1000:.0f}k"
    if x >= 1000:
        return f"{x / 1000:.1f}k"
    return f"{x:.0f}"


class StudyProgress:
    """Rich progress bars for one study run; usable as a context manager. Both bars fit 80 columns:
    the study bar shows trials finished of the target, done/pruned/failed, the best value so far and
    the ETA; the trial bar advances with every optimizer step and shows the epoch of its budget and
    images/s."""

    REFRESH_S = 0.2  # the trial bar is redrawn at most this often, however fast the steps come

    def __init__(self, study_name: str, target: int, metric: str, *, enabled: bool = True, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.metric = metric
        self.console = console or Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"), BarColumn(bar_width=14),
            TextColumn("{task.fields[info]}"), TextColumn("eta"), TimeRemainingColumn(compact=True),
            # Off a terminal (CI logs, pipes) the bars would print as garbled lines; the per-trial
            # lines carry the same news.
            console=self.console, disable=not (enabled and self.console.is_terminal), transient=False,
        )
        self.target = target
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self.best: float | None = None
        self.seen: set[int] = set()
        self.study_task = self.progress.add_task("study", total=target, info="")
        self.trial_task = None
        self._trial: dict = {}

    def __enter__(self) -> "StudyProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _study_info(self) -> str:
        c = self.counts
        best = _fmt(self.best) if self.best is not None else "-"
        return (f"{sum(c.values())}/{self.target}: {c['COMPLETE']} ok {c['PRUNED']} pruned {c['FAIL']} failed, "
                f"best {self.metric} {best}")

    def sync(self, trials: Iterable) -> None:
        """Count finished trials (FrozenTrial objects) already in the study; print none of them."""
        for t in trials:
            self._count(t)
        self._refresh()

    def _count(self, t) -> bool:
        if t.number in self.seen or t.state.name not in self.counts:
            return False
        self.seen.add(t.number)
        if takes_a_slot(t):  # like the study's own count
            self.counts[t.state.name] += 1
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value):
            self.best = t.value if self.best is None else min(self.best, t.value)
        return True

    def _refresh(self) -> None:
        self.progress.update(self.study_task, completed=sum(self.counts.values()), info=self._study_info())

    # -------------------------------------------------- per trial

    def trial_started(self, number: int, config, baseline: str = "", attrs: dict | None = None) -> None:
        """A trial starts: under the number of the trial it retries, if any (`attrs`: its user attributes)."""
        import time

        if self.trial_task is not None:
            self.progress.remove_task(self.trial_task)
        self._trial = {"epochs": config.epochs, "batch": config.batch_size, "t0": time.perf_counter(), "shown": 0.0,
                       "first": None}
        # The total is in optimizer steps, known at the first step; until then, in epochs.
        origin = (attrs or {}).get("origin")
        name = f"trial {number:03d}" if origin is None else f"trial {origin:03d} (retry)"
        self.trial_task = self.progress.add_task(name + ("*" if baseline else ""),
                                                 total=config.epochs, info=f"ep 0/{config.epochs}")

    def step(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        """After every optimizer step of the running trial (a host-side count)."""
        import time

        if self.trial_task is None:
            return
        now = time.perf_counter()
        tr = self._trial
        done = (epoch - 1) * steps_per_epoch + step
        if tr["first"] is None:  # a resumed trial starts past epoch 1: measure speed from here
            tr["first"], tr["t0"] = done - 1, now
        if now - tr["shown"] < self.REFRESH_S and step != steps_per_epoch:
            return
        tr["shown"] = now
        rate = (done - tr["first"]) * tr["batch"] / max(now - tr["t0"], 1e-9)
        self.progress.update(self.trial_task, total=tr["epochs"] * steps_per_epoch, completed=done,
                             info=f"ep {epoch}/{tr['epochs']} {_si(rate)} img/s")

    def trial_ended(self) -> None:
        if self.trial_task is not None:
            self.progress.remove_task(self.trial_task)
            self.trial_task = None

    def trial_finished(self, trial) -> None:
        """One line for a finished trial (a FrozenTrial), and the study bar updated."""
        if not self._count(trial):
            return
        self._refresh()
        self.console.print(trial_line(trial, self.metric), markup=False, soft_wrap=True)

    # Optuna calls callbacks as callback(study, frozen_trial).
    def __call__(self, study, trial) -> None:
        self.trial_finished(trial)


def trial_head(number: int, attrs: dict) -> str:
    """How the console names a trial: a retry under the number of the trial it continues
    ("trial 007 (retry 051, from epoch 120)"), so a stopped trial keeps its name when it resumes."""
    head = f"trial {number:03d}"
    if "origin" in attrs:
        epoch = attrs.get("resumed_from_epoch")
        head = f"trial {attrs['origin']:03d} (retry {number:03d}" + (f", from epoch {epoch})" if epoch else ")")
    return head + (f" [{attrs['baseline']}]" if attrs.get("baseline") else "")


def trial_line(t, metric: str) -> str:
    attrs = t.user_attrs
    head = trial_head(t.number, attrs)
    found = best_of(t.intermediate_values)
    best = f" (best {_fmt(found[1])} at epoch {found[0]})" if found else ""
    secs = f" in {t.duration.total_seconds():.0f} s" if t.duration is not None else ""
    if t.state.name == "COMPLETE":
        return f"{head} done: {metric} {_fmt(t.value)}{best}{secs}"
    if t.state.name == "PRUNED":
        return f"{head} pruned: {attrs.get('prune_reason', '')}{best}{secs}"
    return f"{head} failed: {attrs.get(FAIL_REASON, 'see the log above')}{secs}"


def top_trials(trials: Iterable, n: int = 5) -> list:
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: t.value)[:n]


def print_summary(trials: list, metric: str, commands: dict[str, str], *, n: int = 5, file=None) -> None:
    """The top `n` trials (params, metric, best epoch) in the terminal's width (80 columns fit), and the
    commands to look at the results (whole lines, to copy)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file or sys.stdout, highlight=False)  # the terminal's width; 80 off a terminal
    top = top_trials(trials, n)
    counts = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "WAITING")}
    failed = sum(t.state.name == "FAIL" and takes_a_slot(t) for t in trials)
    interrupted = sum(t.state.name == "FAIL" and not takes_a_slot(t) for t in trials)
    extra = "".join([f"; {interrupted} interrupted (not counted)" if interrupted else "",
                     f"; {counts['WAITING']} enqueued, waiting for a later run" if counts["WAITING"] else ""])
    console.print(f"{counts['COMPLETE'] + counts['PRUNED'] + failed} finished trials: {counts['COMPLETE']} "
                  f"complete, {counts['PRUNED']} pruned, {failed} failed{extra}", markup=False)
    if top:
        table = Table(title=f"top {len(top)} trials by {metric} at the last epoch", box=box.SIMPLE_HEAD)
        for col in ("trial", metric, f"best {metric}", "at epoch", "params"):
            table.add_column(col, overflow="fold")
        for t in top:
            a = t.user_attrs
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
            name = f"{t.number}" + (f" ({a['baseline']})" if a.get("baseline") else "")
            epoch, value = best_of(t.intermediate_values) or ("-", "-")
            table.add_row(*(Text(c) for c in (name, _fmt(t.value), _fmt(value), _fmt(epoch), params)))
        console.print(table)
    for label, cmd in commands.items():
        console.print(f"{label}:\n  {cmd}", soft_wrap=True, markup=False)
