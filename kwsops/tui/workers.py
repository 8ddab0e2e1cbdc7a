"""Worker failures, wherever the worker runs, end in the app's one error handler.

``Worker.StateChanged`` does not bubble: a screen's or widget's worker reports only to its own
node. Nodes that run workers take this mixin, which forwards a failure to the app as a
``Problem`` (a notification), so no traceback ever reaches the screen.
"""

from __future__ import annotations

from typing import Any, Protocol

from textual.app import App
from textual.worker import Worker, WorkerState

from kwsops.tui.messages import Problem


def failure_text(worker: Worker) -> str:
    return f"{worker.name or 'a background task'} failed: {worker.error}"


class InApp(Protocol):
    """What the mixin needs of the node it is mixed into (a screen or a widget)."""

    @property
    def app(self) -> App[Any]: ...


class ForwardWorkerErrors:
    def on_worker_state_changed(self: InApp, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.app.post_message(Problem(failure_text(event.worker)))
