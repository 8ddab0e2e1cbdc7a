"""Dialogs: confirm an action, pick a run, show help."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Markdown, OptionList, Static
from textual.widgets.option_list import Option

from kwsops.tui import formatting as fmt
from kwsops.tui.monitor import RunSummary


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no; Enter or y confirms, Escape or n declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="dialog-screen")
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, id="yes", variant="error")
                yield Button(self.no, id="no", variant="primary")
        yield Footer()

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
            label.append(f"  {fmt.params_text(run.params or {})}", style="dim")
            options.append(Option(label, id=run.run_id))
        with Vertical(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title")
            yield OptionList(*options, id="run-options")
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


HELP = """\
# kwsops console

Launch, watch, read and compare keyword-spotting runs without leaving the terminal.
Runs are separate processes: close the console and the run goes on; open it again and it
reattaches. Every action is also in the command palette (**ctrl+p**).

## Everywhere

| key | action |
| --- | --- |
| **1** … **5** | Dashboard, Logs, Report, Runs, Data |
| **s** | start a run (choose batch sizes, epochs, folds, learning rate, revisions) |
| **c** | cancel the active run (asks first; the run marks itself cancelled) |
| **R** | rerun the last failed run with the same parameters (on Runs: the selected run) |
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
| **a** | follow the active run's log |
| **o** | open another run's log |

## Report, Runs, Data

| key | action |
| --- | --- |
| **t** | Report: show or hide the table of contents |
| **b** | Report: back to the comparison report |
| **Enter** | Runs: open the selected run's log |
| **m** | Runs: open the selected run's report |
| **r** | Data: read the manifest again |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Markdown(HELP)
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
