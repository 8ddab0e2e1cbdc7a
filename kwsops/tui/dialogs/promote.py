"""Promote from the console: the report view's ``p`` opens this dialog (revision, stage,
version), then ``kwsops promote`` runs as its own process (the console only launches it) and
its one line of outcome becomes a notification. The production version itself is read by
:func:`kwsops.registry.listing.production` in the app's worker (dashboard, runs view)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static

from kwsops.compare.revisions import FORMS_HELP, is_valid_spec
from kwsops.text import clean_text

PROMOTE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class PromoteRequest:
    revision: str
    stage: str
    version: str = ""
    export: bool = True

    def arguments(self) -> list[str]:
        return [
            "promote", self.revision, "--stage", self.stage,
            *(["--version", self.version] if self.version else []),
            *([] if self.export else ["--no-export"]),
        ]  # fmt: skip


class PromoteDialog(ModalScreen[PromoteRequest | None]):
    """Revision (the comparison's best to start with), stage and version; Enter promotes."""

    BINDINGS = [Binding("escape", "cancel", "Close")]

    def __init__(self, revision: str, choices: list[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.revision, self.choices = revision, choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(Text("Promote a revision", style="bold"), classes="dialog-title")
            shown = ", ".join(clean_text(c, 60) for c in self.choices[:4])
            yield Label(
                Text(f"revision ({FORMS_HELP})" + (f"; compared: {shown}" if shown else ""))
            )
            yield Input(self.revision, id="promote-revision")
            yield Label("stage")
            yield Input("production", id="promote-stage")
            yield Label("version X.Y.Z (empty: the next minor one)")
            yield Input("", id="promote-version", placeholder="1.2.0")
            yield Checkbox("export the ONNX file and its card (ClearML task)", True,
                           id="promote-export")  # fmt: skip
            with Horizontal(classes="dialog-buttons"):
                yield Button("Promote", id="promote", variant="primary")
                yield Button("Cancel", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#promote-stage", Input).focus()

    def request(self) -> PromoteRequest | None:
        revision = self.query_one("#promote-revision", Input).value.strip()
        stage = self.query_one("#promote-stage", Input).value.strip()
        if not is_valid_spec(revision):
            self.notify(f"{revision!r} is not a revision: use {FORMS_HELP}", severity="error")
            return None
        if not stage:
            self.notify("give a stage (e.g. production)", severity="error")
            return None
        return PromoteRequest(revision, stage,
                              self.query_one("#promote-version", Input).value.strip(),
                              self.query_one("#promote-export", Checkbox).value)  # fmt: skip

    @on(Input.Submitted)
    @on(Button.Pressed, "#promote")
    def submit(self) -> None:
        request = self.request()
        if request is not None:
            self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def run_promote(command: list[str], request: PromoteRequest, cwd: str) -> tuple[bool, str]:
    """Run ``kwsops promote`` to its end (in a worker thread): (ok, its last line)."""
    try:
        done = subprocess.run([*command, *request.arguments()], cwd=cwd, capture_output=True,
                              text=True, timeout=PROMOTE_TIMEOUT_S, stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"kwsops promote did not finish: {exc}"
    lines = [x for x in (done.stdout + "\n" + done.stderr).splitlines() if x.strip()]
    if done.returncode == 0:
        return True, next((x for x in lines if "@v" in x), lines[0] if lines else "promoted")
    errors = [x for x in done.stderr.splitlines() if x.strip()]
    return False, errors[-1] if errors else f"kwsops promote: exit code {done.returncode}"


def tags_stamp(root) -> tuple:
    """One stat each of where git keeps tags: the production version is read again only when
    this changes (a promote here, or `kwsops promote` / `gto assign` in a shell)."""
    from pathlib import Path

    from kwsops.stamps import file_stamp

    git = Path(root) / ".git"
    return file_stamp(git / "packed-refs"), file_stamp(git / "refs" / "tags")
