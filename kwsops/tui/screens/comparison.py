"""Report: reports/comparison_versions.md (or a run's report.md) in a MarkdownViewer with its
table of contents; reloads by itself when a run rewrites the file (mtime is polled).

The Markdown viewer shows a plot as its caption only, so ``v`` switches to the report's
figures drawn in text (the same view as `kwsops report`: confusion matrices as coloured heat
maps, the parameters that differ), and ``w`` opens the HTML page in a web browser."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Markdown, MarkdownViewer, Static, Tree

from kwsops.stamps import file_stamp
from kwsops.text import clean_text
from kwsops.tui.messages import ReportLoaded
from kwsops.tui.state import console_app
from kwsops.tui.widgets.topbar import TopBar
from kwsops.tui.workers import ForwardWorkerErrors

if TYPE_CHECKING:
    from kwsops.tui.dialogs.promote import PromoteRequest

NARROW = 150  # below this the contents start hidden: the ten-column summary needs ~116
EMPTY = """\
# No comparison report yet

`{where}` does not exist yet. The last stage of the pipeline, **Validate**, writes it after
the models are trained and versioned: every revision's accuracy, per-label results and
confusion matrices.

- Press **s** to start a run from here (choose batch sizes and the revisions to compare), or
- run `kwsops run` (or `luigi --module tasks Validate`) in the workspace.

This page shows the report as soon as it appears.
"""


class ReportViewer(MarkdownViewer):
    """Follows links to other Markdown files; anything else (plots) is named, not opened."""

    async def _on_markdown_link_clicked(self, message: Markdown.LinkClicked) -> None:
        message.prevent_default()
        message.stop()
        href = message.href
        if href.startswith(("http://", "https://")):
            self.app.open_url(href)
        elif href.startswith("#") or href.split("#")[0].endswith(".md"):
            await self.go(href)
        else:
            self.notify(f"{href} is a figure: v shows the figures in text, w opens the page.",
                        timeout=4)  # fmt: skip

    def _on_markdown_table_of_contents_selected(
        self, message: Markdown.TableOfContentsSelected
    ) -> None:
        super()._on_markdown_table_of_contents_selected(message)
        if self.has_class("-contents-over"):  # the contents covered the report: uncover it
            self.show_table_of_contents = False


class ReportScreen(ForwardWorkerErrors, Screen):
    BINDINGS = [
        Binding("v", "figures", "Figures"),
        Binding("t", "toggle_contents", "TOC"),
        Binding("b", "comparison", "Back"),
        Binding("w", "browser", "Web"),
        Binding("p", "promote", "Promote"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.path: Path | None = None
        self.title_text = ""
        self._stamp: tuple[int, int] | None = None
        self.loaded_text: str | None = None

    def compose(self) -> ComposeResult:
        yield TopBar("report")
        yield Static(id="report-title")
        with ContentSwitcher(initial="report-empty", id="report-switcher"):
            yield Markdown(id="report-empty")
            yield ReportViewer(id="report-viewer", show_table_of_contents=True, open_links=False)
            with VerticalScroll(id="report-figures"):
                yield Static(id="figures-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.path is None:
            self.show(None)
        self.set_interval(1.0, self._check)

    def show(self, path: Path | None, title: str = "") -> None:
        """Show ``path`` (None: the workspace's comparison report)."""
        workspace = console_app(self.app).workspace
        self.path = path or workspace.comparison_report
        self.title_text = title or "Comparison of model revisions"
        self._stamp = None
        where = (
            self.path.relative_to(workspace.root)
            if self.path.is_relative_to(workspace.root)
            else self.path
        )
        self.query_one("#report-title", Static).update(
            Text.assemble((clean_text(self.title_text), "bold"), "  ", (clean_text(where), "dim"))
        )
        self._check()

    def _check(self) -> None:
        """Cheap: one stat; the file is read in a worker only when it changed."""
        if self.path is None:
            return
        stamp = file_stamp(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            self._read(self.path)

    @work(thread=True, group="report", exclusive=True, exit_on_error=False, name="report read")
    def _read(self, path: Path) -> None:
        try:
            text: str | None = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = None
        self.post_message(ReportLoaded(path, text))

    async def on_report_loaded(self, message: ReportLoaded) -> None:
        if message.path != self.path:
            return
        switcher = self.query_one(ContentSwitcher)
        if message.text is None:
            where = message.path.name
            with contextlib.suppress(ValueError):
                where = str(message.path.relative_to(console_app(self.app).workspace.root))
            await self.query_one("#report-empty", Markdown).update(EMPTY.format(where=where))
            switcher.current = "report-empty"
            self.loaded_text = None
            return
        viewer = self.query_one(ReportViewer)
        keep = viewer.scroll_y if self.loaded_text is not None else 0
        self.loaded_text = message.text
        await viewer.document.update(message.text)
        switcher.current = "report-viewer"
        viewer.scroll_to(y=keep, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        """The contents sidebar only when the report keeps room for its tables; narrower, the
        contents (t) cover the report, their headings whole, until one is chosen."""
        viewer = self.query_one(ReportViewer)
        viewer.show_table_of_contents = event.size.width >= NARROW
        viewer.set_class(event.size.width < NARROW, "-contents-over")

    def action_toggle_contents(self) -> None:
        viewer = self.query_one(ReportViewer)
        viewer.show_table_of_contents = not viewer.show_table_of_contents
        if viewer.show_table_of_contents and viewer.has_class("-contents-over"):
            viewer.table_of_contents.query_one(Tree).focus()  # enter picks a heading

    def action_comparison(self) -> None:
        self.show(None)

    def action_figures(self) -> None:
        """Between the Markdown and the figures drawn in text (the comparison report's)."""
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "report-figures":
            switcher.current = "report-viewer" if self.loaded_text is not None else "report-empty"
            return
        self._figures(console_app(self.app).workspace.comparison_report)

    @work(thread=True, group="figures", exclusive=True, exit_on_error=False, name="figures")
    def _figures(self, path: Path) -> None:
        from kwsops.compare.terminal import ReportError, comparison_view, load_comparison

        try:
            data = load_comparison(path)
        except ReportError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        if data is None:
            self.app.call_from_thread(self.notify, "No comparison yet: run Validate first.")
            return
        self.app.call_from_thread(self._show_figures, comparison_view(data))

    def _show_figures(self, view: object) -> None:
        self.query_one("#figures-body", Static).update(view)
        self.query_one(ContentSwitcher).current = "report-figures"
        self.query_one("#report-figures").focus()

    def action_browser(self) -> None:
        """The HTML page of what is shown: a run's report.html, or the comparison's."""
        console = console_app(self.app)
        shown = self.path or console.workspace.comparison_report
        console.open_in_browser(shown.with_suffix(".html"))

    def action_promote(self) -> None:
        """A dialog for the revision (the comparison's best first), stage and version."""
        from kwsops.compare.predict import default_revision
        from kwsops.compare.terminal import ReportError, load_comparison
        from kwsops.tui.dialogs.promote import PromoteDialog

        workspace = console_app(self.app).workspace
        try:
            comparison = load_comparison(workspace.comparison_report)
        except ReportError:
            comparison = None
        choices = [rev.spec for rev in comparison.revisions] if comparison else []
        first = choices[0] if choices else ""  # the best
        self.app.push_screen(PromoteDialog(first or default_revision(workspace), choices),
                             self._promote)  # fmt: skip

    def _promote(self, request: PromoteRequest | None) -> None:
        if request is not None:
            self.notify(f"promoting {request.revision} to {request.stage}…")
            self._run_promote(request)

    @work(thread=True, group="promote", exit_on_error=False, name="promote")
    def _run_promote(self, request: PromoteRequest) -> None:
        from kwsops.tui.dialogs.promote import run_promote

        app = console_app(self.app)
        ok, line = run_promote(app.launcher.command(), request, str(app.workspace.root))
        app.call_from_thread(self.notify, line, severity="information" if ok else "error",
                             timeout=8)  # fmt: skip
        app.call_from_thread(app.refresh_production)
