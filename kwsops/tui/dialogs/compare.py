"""Two runs side by side: the params and results that differ (the Runs view's ``d``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from kwsops.text import rich_text


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
