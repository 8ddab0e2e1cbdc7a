"""What every kwsops Luigi task shares: the workspace, content keys, stamps and progress."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path

import luigi

from kwsops.runs.events import emit
from kwsops.stamps import digest, stamp_file_matches
from kwsops.text import status_message
from kwsops.workspace import Workspace

PROGRESS_INTERVAL_S = 0.5


class StampTarget(luigi.Target):
    """Exists for Luigi only when the stamp file carries ``key``.

    An output left by an older run with other inputs or params does not count as done, so
    Luigi reruns exactly the stages whose inputs changed.
    """

    def __init__(self, stamp_file: Path, key: str) -> None:
        self.stamp_file = Path(stamp_file)
        self.key = key

    @property
    def path(self) -> str:
        return str(self.stamp_file)

    def exists(self) -> bool:
        return stamp_file_matches(self.stamp_file, self.key)


class KwsTask(luigi.Task):
    """Base class: a task whose completeness is "my stamp matches my key".

    ``stage_key`` digests the task family, a per-stage ``code_version``, the significant
    params and the keys of what it requires, so the key chain is a pure function of the raw
    files and the params. Subclasses add ``key_inputs()`` for anything else they depend on.
    """

    code_version = 1
    _last_progress: float = 0.0

    def intact(self) -> bool:
        """Whether the output on disk is as the stage left it (the cheap check: a stat a
        file, see kwsops.versioning.integrity); the stamp says for which inputs."""
        return True

    def present(self) -> bool:
        """The output is on disk, for whatever key."""
        return all(Path(t.path).exists() for t in luigi.task.flatten(self.output()))

    def up_to_date(self) -> bool:
        """This stage's own output is done for its key and intact on disk."""
        return all(t.exists() for t in luigi.task.flatten(self.output())) and self.intact()

    def complete(self) -> bool:
        """Done: its own output is up to date and every stage before it has its output on
        disk (a deleted or damaged output makes every later stage incomplete too; a stage
        whose own output is still good then finds it so in run(), :meth:`skip_if_done`)."""
        return _memoised(
            f"complete {self.task_id}", lambda: self.up_to_date() and _upstream_intact(self)
        )

    def skip_if_done(self) -> bool:
        """For run(): true (with the summary said) when the output is good already: Luigi
        scheduled the stage only because an earlier one had to be redone."""
        if not self.up_to_date():
            return False
        self.summary("up to date (an earlier stage was redone)")
        return True

    @property
    def ws(self) -> Workspace:
        return Workspace.at()

    def key_inputs(self) -> dict:
        return {}

    def key_upstream(self) -> list[luigi.Task]:
        """The tasks whose keys this one's key chains to: what it requires, by default."""
        return luigi.task.flatten(self.requires())

    @functools.cached_property
    def stage_key(self) -> str:
        upstream = [task.stage_key for task in self.key_upstream()]
        return digest(
            {
                "family": self.task_family,
                "code": self.code_version,
                "params": self.to_str_params(only_significant=True),
                "upstream": upstream,
                **self.key_inputs(),
            }
        )

    def progress(self, done: int, total: int, detail: str = "") -> None:
        """Report progress: to the run's event log, and to Luigi's scheduler (luigid shows it)."""
        now = time.monotonic()
        final = total and done >= total
        if not final and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        with contextlib.suppress(OSError):  # a full disk fails the stage's own write, not this
            emit("task_progress", task=self.task_id, family=self.task_family, done=done,
                 total=total, detail=detail)  # fmt: skip
        if detail:  # Luigi's visualiser shows it as HTML: a file name in it is data
            self.set_status_message(status_message(detail))
        if total:
            self.set_progress_percentage(round(100 * done / total, 1))

    def epoch_metrics(self, epoch: int, row: dict, fold: int | None = None) -> None:
        """One epoch's numbers, for the console's training curves (every epoch, unthrottled);
        ``fold`` names the fold when one task trains several (stacked Train)."""
        metrics = {k: v for k, v in row.items() if isinstance(v, int | float)}
        if fold is not None:
            metrics["fold"] = fold
        with contextlib.suppress(OSError):
            emit("task_progress", task=self.task_id, family=self.task_family,
                 metrics={**metrics, "epoch": epoch})  # fmt: skip

    def summary(self, detail: str, **fields: object) -> None:
        """The one-line result shown in the run summary and the console."""
        self._summary = {"detail": detail, **fields}


_checked: dict[str, bool] | None = None  # within one complete() call: each check once


def _memoised(name: str, check: Callable[[], bool]) -> bool:
    global _checked
    outer = _checked is None
    if outer:
        _checked = {}
    try:
        if name not in _checked:
            _checked[name] = check()
        return _checked[name]
    finally:
        if outer:
            _checked = None


def _on_disk(task: KwsTask) -> bool:
    """The stage's output is there and intact, whatever its key, and so is every one before."""
    return task.present() and task.intact() and _upstream_intact(task)


def _upstream_intact(task: luigi.Task) -> bool:
    """Every stage before ``task`` has its output on disk, intact (a stale key is that stage's
    own business: Luigi reruns it and what follows, as before)."""
    return all(
        _memoised(f"on disk {up.task_id}", lambda up=up: _on_disk(up))
        if isinstance(up, KwsTask) else up.complete()
        for up in luigi.task.flatten(task.requires())
    )  # fmt: skip
