"""The top line of every screen: the workspace and the views, the shown one highlighted.

The number keys that switch views are shown here rather than in the footer, so at 80 columns
the footer keeps room for the keys that act (start, cancel, rerun, the screen's own).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widget import Widget

from kwsops.text import clean_text
from kwsops.tui.state import console_app

VIEW_TITLES = (
    ("dashboard", "Dashboard"),
    ("logs", "Logs"),
    ("report", "Report"),
    ("runs", "Runs"),
    ("data", "Data"),
    ("curves", "Curves"),
)


class TopBar(Widget):
    """``◉ <workspace>  1 Dashboard 2 Logs …``; a click on a view opens it."""

    DEFAULT_CSS = """
    TopBar {
        height: 1;
        dock: top;
        background: $panel;
    }
    """

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self._spans: list[tuple[int, int, str]] = []

    def render(self) -> Text:
        """Help and quit always show: the workspace name gives way first (cut, then dropped),
        then the views' titles (their numbers stay)."""
        name = clean_text(console_app(self.app).workspace.root.name, 24)
        width = self.size.width
        long = Text.assemble(("?", "bold"), (" help  ", "dim"), ("q", "bold"), (" quit ", "dim"))
        short = Text.assemble(("?", "bold"), " help ", ("q", "bold"), " quit ")
        for titled in (True, False):
            views_width = sum(
                len(f" {n} ") + (len(f"{title} ") if titled else 0)
                for n, (_, title) in enumerate(VIEW_TITLES, start=1)
            )
            for keys in (long, short):
                room = width - views_width - keys.cell_len - 3  # " ◉ "
                if room >= len(name) + 2:
                    return self._line(name, titled, keys, width)
            if room >= 6:  # a cut name still says which workspace
                return self._line(name[: room - 3] + "…", titled, short, width)
            if room >= 0:
                return self._line("", titled, short, width)
        return self._line("", False, Text.assemble(("?", "bold"), " ", ("q", "bold"), " "), width)

    def _line(self, name: str, titled: bool, keys: Text, width: int) -> Text:
        text = Text.assemble((" ◉ ", "bold"), (name, "bold"), "  " if name else "")
        self._spans = []
        for number, (mode, title) in enumerate(VIEW_TITLES, start=1):
            start = text.cell_len
            current = mode == self.mode
            text.append(f" {number} ", "bold reverse" if current else "bold")
            if titled:
                text.append(f"{title} ", "bold" if current else "dim")
            self._spans.append((start, text.cell_len, mode))
        room = width - text.cell_len - keys.cell_len
        return text.append(" " * max(room, 0)).append_text(keys)

    async def on_click(self, event: events.Click) -> None:
        for start, end, mode in self._spans:
            if start <= event.x < end:
                await self.app.switch_mode(mode)
                return
