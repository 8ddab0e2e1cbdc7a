"""Dialogs: confirm an action, pick a run, compare two runs, show help."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from kwsops.runs.request import params_line
from kwsops.text import rich_text
from kwsops.tui import formatting as fmt
from kwsops.tui.monitor import RunSummary


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no; Enter or y confirms, Escape or n declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: Text, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="dialog-screen")
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button(self.no, id="no", variant="primary")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class RunPicker(ModalScreen[str | None]):
    """Choose one run from a list (newest first)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, runs: Iterable[RunSummary], title: str) -> None:
        super().__init__(classes="dialog-screen")
        self.runs, self.title_text = list(runs), title

    def compose(self) -> ComposeResult:
        options = []
        for run in self.runs:
            label = Text(f"{run.run_id}  ")
            label.append_text(fmt.state_text(run.status))
            label.append_text(rich_text(f"  {run.kind} · {params_line(run.params or {})}", "dim"))
            options.append(Option(label, id=run.run_id))
        with Vertical(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title")
            yield OptionList(*options, id="run-options")
        yield Footer(compact=True)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class CompareDialog(ModalScreen[None]):
    """Two runs side by side: the params and results that differ."""

    BINDINGS = [Binding("escape,q,d", "close", "Close")]

    def __init__(self, first: str, second: str, rows: list[list[str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.first, self.second, self.rows = first, second, rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(f"Run {self.first} vs {self.second}", classes="dialog-title")
            if not self.rows:
                yield Static("Same params, same results.")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("", self.first, self.second)
        for name, left, right in self.rows:
            table.add_row(rich_text(name, "bold", 80), rich_text(left, limit=200),
                          rich_text(right, limit=200))  # fmt: skip
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


HELP = """\
# kwsops console

Launch, watch, read and compare keyword-spotting runs without leaving the terminal.
Runs are separate processes: close the console and the run goes on; open it again and it
reattaches. Every action is also in the command palette (**ctrl+p**), under the name the
footer gives it.

## Everywhere

| key | action |
| --- | --- |
| **1** … **6** | Dashboard, Logs, Report, Runs, Data, Curves (the top line; a click works too) |
| **s** | start a run: batch sizes, epochs, folds, learning rate, revisions to compare |
| **c** | cancel the active run (asks first; its running tasks end as cancelled) |
| **R** | rerun the last failed run: the same command and resolved parameters |
| **ctrl+p** | command palette |
| **?** | this help |
| **q** | quit (a run keeps running) |

## Logs

| key | action |
| --- | --- |
| **/** | search; **n** / **N** next / previous match (wraps around) |
| **f** | filter: show only matching lines (empty: all lines) |
| **Esc** | clear search and filter, follow again |
| **End** / **G** | follow the end of the log; scrolling up pauses |
| **g** / **Home**, **PgUp** / **PgDn**, arrows, **j** **k** **h** **l** | move |
| **a** | follow the active run's log (a run started here is followed by itself) |
| **o** | open another run's log |

## Report

| key | action |
| --- | --- |
| **v** | the report's figures: confusion matrices as heat maps, parameters that differ |
| **t** | show or hide the table of contents |
| **b** | back to the comparison report |
| **w** | open it in the web browser (the HTML page), when there is one |
| **p** | promote a revision: a version of the model and its stage (GTO tags in git) |

## Runs

| key | action |
| --- | --- |
| **Enter** | the selected run's log |
| **m** / **w** | its run report here / in the web browser |
| **f** | filter by outcome (all, running, ok, failed, cancelled, killed) |
| **o** / **O** | sort by the next column / reverse (or click a column's title) |
| **space**, then **d** | mark a run, then compare it with the selected one |
| **R** | rerun the selected run |

## Data, Curves

| key | action |
| --- | --- |
| **r** | Data: read the manifest again |
| **v** | Data: verify every versioned file against its DVC hash (`kwsops verify`) |
| **Curves** | validation accuracy and loss by epoch, one line per fold, live while a run trains |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)
