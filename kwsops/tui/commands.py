"""Command palette entries for runs: "logs: <run>" and "report: <run>" for every run folder."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from kwsops.runs.folder import RunPaths
from kwsops.tui.messages import OpenLog, OpenReport
from kwsops.tui.state import console_app


class RunCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = console_app(self.app)
        snapshot = app.snapshot
        commands: list[tuple[str, str, Callable[[], object]]] = []
        for run in snapshot.history if snapshot else ():
            commands.append(
                (
                    f"logs: run {run.run_id} ({run.status})",
                    "Open this run's log",
                    partial(app.post_message, OpenLog(run.run_id)),
                )
            )
            report = RunPaths(app.workspace.runs_dir / run.run_id).report_md
            if run.has_report:
                commands.append(
                    (
                        f"report: run {run.run_id}",
                        "Open this run's report.md",
                        partial(
                            app.post_message, OpenReport(report, f"Report of run {run.run_id}")
                        ),
                    )
                )
        return commands

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands()[:10]:
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
