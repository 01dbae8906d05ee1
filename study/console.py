"""What a study prints: a study-level progress bar (trials done / pruned / failed, best so far), a
trial-level one with ETA, one line per finished trial, and at the end the top trials and the commands
that open the results. Progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Iterable


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class StudyProgress:
    """Rich progress bars for one study run; usable as a context manager."""

    def __init__(self, study_name: str, target: int, metric: str, *, enabled: bool = True):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.metric = metric
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            # Off a terminal (CI logs, pipes) the bars would print as garbled lines; the per-trial
            # lines carry the same news.
            console=self.console, disable=not (enabled and self.console.is_terminal), transient=False,
        )
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        self.best: float | None = None
        self.seen: set[int] = set()
        self.study_task = self.progress.add_task(f"study {study_name}", total=target, info="")
        self.trial_task = None

    def __enter__(self) -> "StudyProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _study_info(self) -> str:
        c = self.counts
        best = f"best {self.metric} {_fmt(self.best)}" if self.best is not None else f"best {self.metric} -"
        return f"{c['COMPLETE']} done, {c['PRUNED']} pruned, {c['FAIL']} failed, {best}"

    def sync(self, trials: Iterable) -> None:
        """Count finished trials (FrozenTrial objects) already in the study; print none of them."""
        for t in trials:
            self._count(t)
        self._refresh()

    def _count(self, t) -> bool:
        if t.number in self.seen or t.state.name not in self.counts:
            return False
        self.seen.add(t.number)
        # Like the study's own count: a trial failed by Ctrl-C or a crash (no reason) is run again.
        if t.state.name != "FAIL" or "fail_reason" in t.user_attrs:
            self.counts[t.state.name] += 1
        if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value):
            self.best = t.value if self.best is None else min(self.best, t.value)
        return True

    def _refresh(self) -> None:
        self.progress.update(self.study_task, completed=sum(self.counts.values()), info=self._study_info())

    # -------------------------------------------------- per trial

    def trial_started(self, number: int, epochs: int, baseline: str = "") -> None:
        label = f"trial {number:03d}" + (f" ({baseline})" if baseline else "")
        if self.trial_task is not None:
            self.progress.remove_task(self.trial_task)
        self.trial_task = self.progress.add_task(label, total=epochs, info="")

    def epoch(self, record: dict) -> None:
        if self.trial_task is None:
            return
        info = f"loss_d {record['loss_d']:.3f} loss_g {record['loss_g']:.3f}"
        if record.get(self.metric) is not None:
            info += f" {self.metric} {_fmt(record[self.metric])}"
        self.progress.update(self.trial_task, completed=record["epoch"], info=info)

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


def trial_line(t, metric: str) -> str:
    attrs = t.user_attrs
    head = f"trial {t.number:03d}" + (f" [{attrs['baseline']}]" if attrs.get("baseline") else "")
    best = (f" (best {_fmt(attrs['best_value'])} at epoch {attrs['best_epoch']})"
            if attrs.get("best_epoch") is not None else "")
    secs = f" in {t.duration.total_seconds():.0f} s" if t.duration is not None else ""
    if t.state.name == "COMPLETE":
        return f"{head} done: {metric} {_fmt(t.value)}{best}{secs}"
    if t.state.name == "PRUNED":
        return f"{head} pruned: {attrs.get('prune_reason', '')}{best}{secs}"
    return f"{head} failed: {attrs.get('fail_reason', 'see the log above')}{secs}"


def top_trials(trials: Iterable, n: int = 5) -> list:
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: t.value)[:n]


def print_summary(trials: list, metric: str, commands: dict[str, str], *, n: int = 5, file=None) -> None:
    """The top `n` trials (params, metric, best epoch) and the commands to look at the results."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file or sys.stdout, highlight=False, width=max(100, Console().width))
    top = top_trials(trials, n)
    counts = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "WAITING")}
    failed = sum(t.state.name == "FAIL" and "fail_reason" in t.user_attrs for t in trials)
    interrupted = sum(t.state.name == "FAIL" and "fail_reason" not in t.user_attrs for t in trials)
    extra = "".join([f"; {interrupted} interrupted (not counted)" if interrupted else "",
                     f"; {counts['WAITING']} enqueued, waiting for a later run" if counts["WAITING"] else ""])
    console.print(f"{counts['COMPLETE'] + counts['PRUNED'] + failed} finished trials: {counts['COMPLETE']} "
                  f"complete, {counts['PRUNED']} pruned, {failed} failed{extra}", markup=False)
    if top:
        table = Table(title=f"top {len(top)} trials by {metric} at the last epoch")
        for col in ("trial", metric, f"best {metric}", "best epoch", "params"):
            table.add_column(col, overflow="fold")
        for t in top:
            a = t.user_attrs
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
            name = f"{t.number}" + (f" ({a['baseline']})" if a.get("baseline") else "")
            table.add_row(*(Text(c) for c in (name, _fmt(t.value), _fmt(a.get("best_value", "-")),
                                               _fmt(a.get("best_epoch", "-")), params)))
        console.print(table)
    for label, cmd in commands.items():
        console.print(f"{label}:\n  {cmd}", soft_wrap=True, markup=False)
