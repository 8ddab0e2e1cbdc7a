"""The console's state, and the one typed way its screens, dialogs and widgets reach it.

``ConsoleApp`` is the app as a view sees it: the workspace, the monitor's latest ``snapshot``,
the ``production`` version, the run a launch asked the Logs view to follow, and the few
requests a view may make (open a page in the browser, rerun a run, read the registry again,
stop following). Only the app writes this state; a view asks through these methods.

``KwsApp`` (kwsops/tui/app.py) is this plus the views, keys, dialogs and the monitor thread. It
lives apart so that a view can name the app's type without importing the app that imports it:
a view calls ``console_app(self.app).workspace``, checked and typed, where it once silenced
the type checker on ``self.app.workspace``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.reactive import var

from kwsops.audio.manifest import MANIFEST_NAME
from kwsops.runs.request import RunRequest
from kwsops.text import clean_text
from kwsops.tui.launcher import Launcher, LaunchError
from kwsops.tui.messages import Problem
from kwsops.tui.readers.manifest import SummaryCache
from kwsops.tui.readers.monitor import Snapshot
from kwsops.workspace import Workspace

if TYPE_CHECKING:
    from kwsops.registry.listing import Production


class ConsoleApp(App[None]):
    """The console's state: read by every view, written only here and in ``KwsApp``."""

    snapshot: var[Snapshot | None] = var(None)
    # the production version and the run that made it (kwsops.registry.listing.Production)
    production: var[Production | None] = var(None)

    def __init__(
        self,
        workspace_root: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        run_command: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.workspace = Workspace.at(workspace_root)
        self.clock = clock
        self.launcher = Launcher(self.workspace, run_command)
        # data/output/manifest.csv summarised, read ahead from the start (the Data screen's)
        self.manifest_summaries = SummaryCache(self.workspace.output_dir / MANIFEST_NAME)
        self._follow_run_id: str | None = None  # a run started here: the Logs view follows it
        self._wake = False

    @property
    def follow_run_id(self) -> str | None:
        """The run this console started last, until the Logs view has shown it."""
        return self._follow_run_id

    def stop_following(self) -> None:
        """The Logs view showed the started run: later snapshots need not switch to it."""
        self._follow_run_id = None

    def notify(self, message: str, *, markup: bool = False, **options: Any) -> None:
        """Every notification is plain text: messages quote file names and errors."""
        super().notify(clean_text(message, 600), markup=False, **options)

    def open_in_browser(self, page: Path) -> None:
        """Open an HTML page in the system's web browser, or say where it is."""
        import webbrowser

        if not page.is_file():
            self.notify(f"{page.name} is not written yet.", severity="warning")
            return
        try:
            webbrowser.get()
        except webbrowser.Error:
            self.notify(f"No web browser here; the page is {page}", timeout=10)
            return
        self.open_url(page.resolve().as_uri())
        self.notify(f"Opened {page.name} in the web browser.")

    def refresh_now(self) -> None:
        """Ask the monitor thread to read the workspace again without waiting its interval."""
        self._wake = True

    @work(thread=True, exclusive=True, exit_on_error=False, name="registry read", group="registry")
    def refresh_production(self) -> None:
        """Read the production version again (after a promotion, or when git's tags change)."""
        from kwsops.registry.listing import production

        found = production(self.workspace)
        self.call_from_thread(setattr, self, "production", found)

    # runs ------------------------------------------------------------------------------------
    def rerun(self, run_id: str) -> None:
        """Start ``run_id`` again with its command and parameters, unless a run is active."""
        if self.snapshot and self.snapshot.active:
            self.notify("A run is active: wait for it or cancel it (c).", severity="warning")
            return
        self.notify(f"Rerunning {run_id}: the same command and parameters.")
        self.start_run(run_id)

    @work(thread=True, exit_on_error=False, name="start run")
    def start_run(self, request: RunRequest | str) -> None:
        """Start ``request``, or rerun the run named by a string."""
        try:
            if isinstance(request, str):
                launched = self.launcher.rerun(request)
            else:
                launched = self.launcher.start(request)
        except LaunchError as exc:
            self.post_message(Problem(str(exc)))
            return
        self._follow_run_id = launched.run_id
        self.notify(f"Started run {launched.run_id} (pid {launched.process.pid}).")
        self.refresh_now()


def console_app(app: App[Any]) -> ConsoleApp:
    """``app`` as the console: ``console_app(self.app).workspace``, typed. Every view runs
    inside a ``ConsoleApp``; anything else is a programming error, said at once."""
    if not isinstance(app, ConsoleApp):
        raise TypeError(f"{type(app).__name__} is not the kwsops console (KwsApp)")
    return app
