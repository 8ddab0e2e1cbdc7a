"""Launch: choose batch sizes, epochs, folds, learning rate and the revisions to compare."""

from __future__ import annotations

import configparser

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from kwsops.compare.discover import Discovery, Revision, discover_revisions
from kwsops.compare.revisions import FORMS_HELP, is_valid_spec
from kwsops.config import DEFAULT_BATCH_SIZES, TrainSettings
from kwsops.tui.launcher import LaunchError, LaunchRequest
from kwsops.tui.workers import ForwardWorkerErrors
from kwsops.workspace import Workspace


def form_defaults(ws: Workspace) -> dict[str, str]:
    """Epochs, folds and learning rate: the workspace's luigi.cfg [Train], else the defaults."""
    train = TrainSettings()
    values = {
        "epochs": str(train.epochs),
        "folds": str(train.folds),
        "learning_rate": f"{train.learning_rate:g}",
    }
    config = configparser.ConfigParser()
    try:
        config.read(ws.luigi_cfg)
    except configparser.Error:
        return values
    for section in ("Train", "TrainParams"):
        if config.has_section(section):
            for key in values:
                if config.has_option(section, key):
                    values[key] = config.get(section, key).strip()
    return values


def revision_prompt(revision: Revision) -> Text:
    prompt = Text(revision.spec, style="bold")
    if revision.title:
        prompt.append(f"  {revision.title[:60]}", style="dim")
    if revision.when:
        prompt.append(f"  {revision.when[:10]}", style="cyan")
    return prompt


class LaunchScreen(ForwardWorkerErrors, ModalScreen[LaunchRequest | None]):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__(classes="dialog-screen")
        self.ws = ws
        self.discovery: Discovery | None = None

    def compose(self) -> ComposeResult:
        defaults = form_defaults(self.ws)
        with Vertical(classes="dialog launch"):
            yield Static("Start a run", classes="dialog-title")
            with Horizontal(id="launch-columns"):
                with Vertical(id="launch-left"):
                    yield Label("Batch sizes (Space ticks)")
                    yield SelectionList[int](
                        *[Selection(str(b), b, True) for b in DEFAULT_BATCH_SIZES],
                        id="batch-sizes",
                    )
                    yield Input(
                        placeholder="add a batch size + Enter",
                        id="batch-add",
                        type="integer",
                        compact=True,
                    )
                    yield Label("Epochs")
                    yield Input(defaults["epochs"], id="epochs", type="integer", compact=True)
                    yield Label("Folds")
                    yield Input(defaults["folds"], id="folds", type="integer", compact=True)
                    yield Label("Learning rate")
                    yield Input(
                        defaults["learning_rate"], id="learning-rate", type="number", compact=True
                    )
                with Vertical(id="launch-right"):
                    yield Label("Revisions to compare with the new models (Space ticks)")
                    yield SelectionList[str](id="revisions")
                    yield Input(
                        placeholder="another: git:<rev>:batch_32, clearml:<id>, last:3",
                        id="revision-add",
                        compact=True,
                    )
                    yield Static("Looking for revisions…", id="discover-notes")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start run  ctrl+s", id="start", variant="success", compact=True)
                yield Button("Cancel  esc", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#batch-sizes").focus()
        self._discover()

    @work(thread=True, exit_on_error=False, name="discover revisions")
    def _discover(self) -> None:
        found = discover_revisions(self.ws.root, DEFAULT_BATCH_SIZES)
        self.app.call_from_thread(self._show_discovery, found)

    def _show_discovery(self, found: Discovery) -> None:
        self.discovery = found
        if not self.is_attached:
            return  # the form was closed while discovery ran
        revisions = self.query_one("#revisions", SelectionList)
        known = set(self._values("#revisions"))
        for revision in found.revisions:
            if revision.spec not in known:
                revisions.add_option(Selection(revision_prompt(revision), revision.spec))
        notes = [f"{len(found.revisions)} revisions found"] + found.warnings
        self.query_one("#discover-notes", Static).update(Text("\n".join(notes), style="dim"))

    def _values(self, selector: str) -> list:
        selection = self.query_one(selector, SelectionList)
        return [selection.get_option_at_index(i).value for i in range(selection.option_count)]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if event.input.id == "batch-add":
            if not value.isdigit() or int(value) < 1:
                self.notify("A batch size is a positive integer.", severity="error")
                return
            batches = self.query_one("#batch-sizes", SelectionList)
            if int(value) in self._values("#batch-sizes"):
                batches.select(int(value))
            else:
                batches.add_option(Selection(value, int(value), True))
            event.input.value = ""
        elif event.input.id == "revision-add":
            if not is_valid_spec(value):
                self.notify(
                    f"{value!r} is not a revision: use {FORMS_HELP}",
                    severity="error",
                )
                return
            revisions = self.query_one("#revisions", SelectionList)
            if value not in self._values("#revisions"):
                revisions.add_option(Selection(Text(value, style="bold"), value, True))
            revisions.select(value)
            event.input.value = ""
        else:
            self.action_start()

    def request(self) -> LaunchRequest:
        def number(selector: str, kind: type) -> int | float:
            raw = self.query_one(selector, Input).value.strip()
            try:
                return kind(raw)
            except ValueError:
                name = selector.lstrip("#").replace("-", " ")
                raise LaunchError(f"{name}: {raw!r} is not a number") from None

        batches = sorted(self.query_one("#batch-sizes", SelectionList).selected)
        return LaunchRequest(
            batch_sizes=tuple(batches),
            epochs=int(number("#epochs", int)),
            folds=int(number("#folds", int)),
            learning_rate=float(number("#learning-rate", float)),
            revisions=tuple(self.query_one("#revisions", SelectionList).selected),
        )

    def action_start(self) -> None:
        try:
            request = self.request()
        except LaunchError as exc:
            self.notify(str(exc), title="Cannot start", severity="error")
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()
