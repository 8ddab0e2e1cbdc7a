"""Pick one run from a list (the Logs view's "another run's log")."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from kwsops.runs.request import params_line
from kwsops.runs.show import RunSummary
from kwsops.text import rich_text
from kwsops.tui import formatting as fmt


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
