"""Launch: choose batch sizes, the training parameters and the revisions to compare.

The form's fields are the declared training parameters (kwsops.params: epochs, folds, learning
rate, seed, precision). It opens with the parameters the last run resolved, whoever started it
(its params.json), else luigi.cfg's, else the declared defaults; it offers only revisions that
exist; it shows how long the training should take (from the folds trained before) and checks
every value with the same rule as `kwsops run`.
"""

from __future__ import annotations

import configparser
import contextlib
import json

from rich.segment import Segment
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import Button, Footer, Input, Label, Select, SelectionList, Static
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.selection_list import Selection

from kwsops.compare.discover import Discovery, Revision, discover_revisions
from kwsops.compare.revisions import FORMS_HELP, is_valid_spec
from kwsops.config import DEFAULT_BATCH_SIZES
from kwsops.params import REQUEST, TRAINING, Param, ParamError, shown
from kwsops.runs.estimate import estimate_training, workers_of
from kwsops.runs.folder import list_runs
from kwsops.runs.request import RequestError, RunRequest, kind_of
from kwsops.text import plural, rich_text
from kwsops.tui.launcher import LaunchError
from kwsops.tui.workers import ForwardWorkerErrors
from kwsops.workspace import Workspace

FORM = ("batch_sizes", *TRAINING, "revisions")  # what the form sets
RECENT_RUNS = 20  # the runs read for the last values (newest first)


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def field_id(name: str) -> str:
    return name.replace("_", "-")


def form_defaults(ws: Workspace) -> dict:
    """The values the last run resolved (the newest run that trained, however started), else
    the workspace's luigi.cfg, else the declared defaults; each value as the form shows it."""
    values: dict = {name: REQUEST[name].default for name in FORM}
    config = configparser.ConfigParser()
    try:
        config.read(ws.luigi_cfg)
    except configparser.Error:
        config = configparser.ConfigParser()
    for name in FORM:
        param = REQUEST[name]
        try:
            raw = config.get(param.section, param.name, fallback=None)
            values[name] = _valid(param, param.parse(raw)) if raw is not None else values[name]
        except (configparser.Error, ParamError):
            pass  # the run's own check names the bad value
    return {**values, **last_run_values(ws)}


def last_run_values(ws: Workspace) -> dict:
    """The form's values the newest training run recorded (params.json: the parameters it
    resolved; no revisions recorded: none); a run started by `luigi --module tasks` records
    its command line only, and a comparison trains nothing: both are passed over."""
    for run in list_runs(ws.runs_dir, limit=RECENT_RUNS):
        try:
            params = json.loads(run.params.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(params, dict) or kind_of(params) not in ("run", "rerun"):
            continue
        if params.get("standalone"):
            continue
        found: dict = {"revisions": []}
        for name in FORM:
            if name in params:
                with contextlib.suppress(ParamError):  # a value no run could use
                    found[name] = _valid(REQUEST[name], params[name])
        return found
    return {}


def _valid(param: Param, value: object) -> object:
    param.check(value)
    return list(value) if isinstance(value, list | tuple) else value


class TickList(SelectionList):
    """A SelectionList whose unticked boxes are empty, so ticked and unticked differ by more
    than colour (a monochrome terminal, NO_COLOR, a screen reader's capture)."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        index = self.scroll_offset.y + y
        button = len(segments) > 3 and segments[1].text == ToggleButton.BUTTON_INNER
        if button and index < self.option_count and not self._is_ticked(index):
            segments[1] = Segment(" " * len(ToggleButton.BUTTON_INNER), segments[1].style)
        return Strip(segments, strip.cell_length)

    def _is_ticked(self, index: int) -> bool:
        return self.get_option_at_index(index).value in self._selected


def revision_prompt(revision: Revision) -> Text:
    prompt = rich_text(revision.spec, "bold", 80)
    if revision.title:
        prompt.append_text(rich_text(f"  {revision.title}", "dim", 60))
    if revision.when:
        prompt.append_text(rich_text(f"  {revision.when[:10]}", "cyan", 12))
    return prompt


class LaunchScreen(ForwardWorkerErrors, ModalScreen[RunRequest | None]):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, ws: Workspace) -> None:
        super().__init__(classes="dialog-screen")
        self.ws = ws
        self.discovery: Discovery | None = None
        self.defaults = form_defaults(ws)
        self.worker_count = workers_of(ws.luigi_cfg)

    def compose(self) -> ComposeResult:
        defaults = self.defaults
        sizes = sorted({*DEFAULT_BATCH_SIZES, *defaults["batch_sizes"]})
        with Vertical(classes="dialog launch"):
            yield Static("Start a run", classes="dialog-title")
            with Horizontal(id="launch-columns"):
                with Vertical(id="launch-left"):
                    yield Label("Batch sizes (space ticks)")
                    yield TickList(
                        *[Selection(str(b), b, b in defaults["batch_sizes"]) for b in sizes],
                        id="batch-sizes",
                    )
                    yield Input(placeholder="add a batch size + Enter", id="batch-add",
                                type="integer", compact=True)  # fmt: skip
                    for name in TRAINING:
                        with Horizontal(classes="field"):
                            yield Label(label_of(name))
                            yield self._field(name, defaults[name])
                with Vertical(id="launch-right"):
                    yield Label("Also compare (space ticks)")
                    yield TickList(id="revisions")
                    yield Static(id="revision-whole")  # the highlighted one, never cut
                    yield Input(placeholder="another: git:<rev>:batch_32, clearml:<id>, last:3",
                                id="revision-add", compact=True)  # fmt: skip
                    yield Static("Looking for revisions…", id="discover-notes")
            yield Static(id="estimate")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start run  ctrl+s", id="start", variant="success", compact=True)
                yield Button("Cancel  esc", id="cancel", compact=True)
        yield Footer(compact=True)

    @staticmethod
    def _field(name: str, value: object) -> Input | Select:
        param = REQUEST[name]
        if param.choices:
            options = [(choice, choice) for choice in param.choices]
            return Select(options, value=value, allow_blank=False, id=field_id(name),
                          compact=True)  # fmt: skip
        kind = "integer" if param.number_kind is int else "number"
        return Input(shown(value), id=field_id(name), type=kind, compact=True)

    def on_mount(self) -> None:
        self.query_one("#batch-sizes").focus()
        self._estimate()
        self._discover()

    @work(thread=True, exit_on_error=False, name="discover revisions")
    def _discover(self) -> None:
        found = discover_revisions(self.ws.root)
        self.app.call_from_thread(self._show_discovery, found)

    def _show_discovery(self, found: Discovery) -> None:
        self.discovery = found
        if not self.is_attached:
            return  # the form was closed while discovery ran
        revisions = self.query_one("#revisions", SelectionList)
        known = set(self._values("#revisions"))
        ticked = set(self.defaults["revisions"])
        for revision in found.revisions:
            if revision.spec not in known:
                revisions.add_option(
                    Selection(revision_prompt(revision), revision.spec, revision.spec in ticked)
                )
        notes = [f"{plural(len(found.revisions), 'revision')} found"] + found.warnings
        self.query_one("#discover-notes", Static).update(rich_text("\n".join(notes), "dim", 600))

    @on(SelectionList.SelectionHighlighted, "#revisions")
    def _show_whole(self, event: SelectionList.SelectionHighlighted) -> None:
        """A list row is cut at the list's width (a ClearML id at 80 columns): the highlighted
        revision's name is shown whole below it, wrapped."""
        whole = rich_text(event.selection.value, "bold", 300)
        whole.overflow = "fold"  # an id has no spaces to wrap at
        self.query_one("#revision-whole", Static).update(whole)

    def _values(self, selector: str) -> list:
        selection = self.query_one(selector, SelectionList)
        return [selection.get_option_at_index(i).value for i in range(selection.option_count)]

    @on(Input.Changed)
    @on(Select.Changed)
    @on(SelectionList.SelectedChanged, "#batch-sizes")
    def _estimate(self) -> None:
        """How long the training should take with the values now in the form."""
        found = self.query("#estimate")
        if not found:
            return  # an input announced its first value before the form was complete
        note = found.first(Static)
        try:
            request = self.request()
        except LaunchError as exc:
            note.update(rich_text(str(exc), "red", 300))
            return
        estimate = estimate_training(self.ws, request.batch_sizes or [], request.epochs or 0,
                                     request.folds or 0, self.worker_count)  # fmt: skip
        note.update(rich_text(f"{estimate.text()}; {self.worker_count} worker(s)", "cyan", 300))

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
                self.notify(f"{value!r} is not a revision: use {FORMS_HELP}", severity="error")
                return
            revisions = self.query_one("#revisions", SelectionList)
            if value not in self._values("#revisions"):
                revisions.add_option(Selection(rich_text(value, "bold", 80), value, True))
            revisions.select(value)
            event.input.value = ""
        else:
            self.action_start()

    def request(self) -> RunRequest:
        """The form as a run request, checked as `kwsops run` checks its flags."""
        values: dict = {}
        for name in TRAINING:
            widget = self.query_one(f"#{field_id(name)}")
            if isinstance(widget, Select):
                values[name] = widget.value
                continue
            raw = widget.value.strip()
            try:
                values[name] = REQUEST[name].parse_item(raw)
            except ParamError:
                raise LaunchError(f"{label_of(name).lower()}: {raw!r} is not a number") from None
        batches = sorted(self.query_one("#batch-sizes", SelectionList).selected)
        request = RunRequest(
            batch_sizes=list(batches),
            revisions=list(self.query_one("#revisions", SelectionList).selected),
            origin="tui",
            **values,
        )
        try:
            return request.check(label=lambda name: label_of(name).lower())
        except RequestError as exc:
            raise LaunchError(str(exc)) from None

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
