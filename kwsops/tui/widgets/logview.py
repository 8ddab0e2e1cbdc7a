"""A log view that opens any size of log at once: a Line API widget over ``LineIndex``.

Only visible lines are read (a block ``pread`` each, cached); a thread worker indexes the file
in steps, then follows it, posting ``LogIndexed``. Filtering and searching run in thread
workers too. Scrolling up stops following; End (or G) follows again.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.segment import Segment
from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from kwsops.text import clean_text
from kwsops.tui.messages import LogFiltered, LogFound, LogIndexed
from kwsops.tui.readers.logindex import LineIndex, compile_query
from kwsops.tui.workers import ForwardWorkerErrors

STEP_BYTES = 16 * 1024 * 1024
LEVELS = (
    ("logview--error", re.compile(r"\b(ERROR|CRITICAL|Traceback)\b|✘")),
    ("logview--warning", re.compile(r"\bWARNING\b")),
)


class LogView(ForwardWorkerErrors, ScrollView, can_focus=True):
    BINDINGS = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("left,h", "scroll_left", "Left", show=False),
        Binding("right,l", "scroll_right", "Right", show=False),
        Binding("pageup,b", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "follow", "Follow", show=False),  # the status line says End
    ]
    COMPONENT_CLASSES = {
        "logview--gutter",
        "logview--match",
        "logview--current",
        "logview--error",
        "logview--warning",
    }

    follow: reactive[bool] = reactive(True)
    highlight: reactive[str] = reactive("")

    def __init__(self, *, poll_interval: float = 0.25, id: str | None = None) -> None:
        super().__init__(id=id)
        self.poll_interval = poll_interval
        self.path: Path | None = None
        self.index: LineIndex | None = None
        self.generation = 0
        self.line_count = 0  # lines the UI knows about (from the last LogIndexed)
        self.fraction = 1.0
        self.filter_query = ""
        self.filtered: list[int] | None = None
        self.current: int | None = None  # the line the last search landed on
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._max_width = 0

    # opening ---------------------------------------------------------------------------------
    def open(self, path: Path | None) -> None:
        """Show ``path`` (None: nothing), following its end."""
        self.generation += 1
        for group in ("log", "log-filter", "log-search"):
            self.workers.cancel_group(self, group)
        self.path, self.index = path, (LineIndex(path) if path else None)
        self.line_count, self.fraction, self._max_width = 0, 0.0 if path else 1.0, 0
        self.filter_query, self.filtered, self.current = "", None, None
        self._cache.clear()
        self.follow = True
        self._resize()
        if self.index is not None:
            self._watch_file(self.generation, self.index)

    def on_unmount(self) -> None:
        self.workers.cancel_group(self, "log")

    @work(thread=True, group="log", exit_on_error=False, name="log index")
    def _watch_file(self, generation: int, index: LineIndex) -> None:
        worker = get_current_worker()
        seen: tuple = ()  # what the last message said; a growing last line is news too
        try:
            while not worker.is_cancelled:
                result = index.update(STEP_BYTES)
                fraction = 1.0 if result.caught_up else index.indexed_bytes / max(index.size, 1)
                state = (index.size, index.line_count, result.caught_up)
                if result.reset or state != seen:
                    seen = state
                    self.post_message(
                        LogIndexed(
                            generation, index.line_count, result.reset, fraction, result.caught_up
                        )
                    )
                if result.caught_up:
                    worker.cancelled_event.wait(self.poll_interval)
        finally:
            index.close()  # this worker owns the index's file descriptor

    def on_log_indexed(self, message: LogIndexed) -> None:
        if message.generation != self.generation:
            message.stop()
            return
        if message.reset:
            self._cache.clear()
            self.current, self._max_width = None, 0
            if self.filter_query:
                self.set_filter(self.filter_query)
        self.line_count, self.fraction = message.line_count, message.fraction
        self._resize()

    # filtering and searching -----------------------------------------------------------------
    def set_filter(self, query: str) -> None:
        """Show only lines matching ``query`` (empty: all lines)."""
        self.workers.cancel_group(self, "log-filter")
        self.filter_query, self.filtered, self.current = query, ([] if query else None), None
        self.highlight = query
        self._cache.clear()
        self._resize()
        if query and self.index is not None:
            self._filter(self.generation, self.index, query)

    @work(thread=True, group="log-filter", exit_on_error=False, name="log filter")
    def _filter(self, generation: int, index: LineIndex, query: str) -> None:
        worker = get_current_worker()
        pattern, first, append = compile_query(query), 0, False
        while not worker.is_cancelled and generation == self.generation:
            complete = index.complete_lines
            if complete > first or not append:
                try:
                    found = index.grep(pattern, first, cancelled=lambda: worker.is_cancelled)
                except OSError:
                    if generation != self.generation:
                        return  # another file is shown: its index was closed under us
                    raise
                lines = [n for n in found if n < complete]
                if lines or not append:
                    self.post_message(LogFiltered(generation, query, lines, append))
                first, append = max(complete, first), True
            worker.cancelled_event.wait(self.poll_interval)

    def on_log_filtered(self, message: LogFiltered) -> None:
        if message.generation != self.generation or message.query != self.filter_query:
            message.stop()
            return
        if message.append and self.filtered is not None:
            self.filtered.extend(message.lines)
        else:
            self.filtered = list(message.lines)
        self._resize()

    def search(self, query: str, *, backwards: bool = False) -> None:
        """Move to the next (previous) line matching ``query`` from the current line."""
        if not query or self.index is None:
            return
        self.highlight = query
        start = self.current if self.current is not None else self._top_line(backwards)
        self._find(self.generation, self.index, query, start, backwards, self.filtered)

    def _top_line(self, backwards: bool) -> int:
        position = int(self.scroll_y) + (self.size.height if backwards else -1)
        lines = self.filtered
        if lines is not None:
            return (
                lines[position]
                if 0 <= position < len(lines)
                else (-1 if position < 0 else self.line_count)
            )
        return position

    @work(thread=True, group="log-search", exclusive=True, exit_on_error=False, name="log search")
    def _find(
        self,
        generation: int,
        index: LineIndex,
        query: str,
        start: int,
        backwards: bool,
        filtered: list[int] | None,
    ) -> None:
        pattern, text = compile_query(query), re.compile(re.escape(query), re.IGNORECASE)

        def look(start: int) -> int | None:
            if filtered is None:
                return index.find(pattern, start, backwards=backwards)
            candidates = (
                reversed([n for n in filtered if n < start])
                if backwards
                else (n for n in filtered if n > start)
            )
            return next((n for n in candidates if text.search(index.line(n))), None)

        try:
            found = look(start)
            if found is None:  # wrap around, like less and vim
                found = look(self.line_count if backwards else -1)
        except OSError:
            if generation != self.generation:
                return  # another file is shown: its index was closed under us
            raise
        self.post_message(LogFound(generation, query, found))

    def on_log_found(self, message: LogFound) -> None:
        if message.generation != self.generation or message.line is None:
            return
        self.current = message.line
        self.follow = False
        row = message.line
        if self.filtered is not None:
            row = self.filtered.index(message.line) if message.line in self.filtered else 0
        self.scroll_to(
            y=max(0, row - self.size.height // 2), x=self._hit_x(message), animate=False, force=True
        )
        self._cache.clear()
        self.refresh()

    def _hit_x(self, found: LogFound) -> float:
        """Sideways to the hit when it is off screen (a long line), else where it is."""
        assert self.index is not None and found.line is not None
        line = clean_text(self.index.line(found.line), 1 << 20)
        hit = re.search(re.escape(found.query), line, re.IGNORECASE)
        if hit is None:
            return self.scroll_x
        if Text(line).cell_len > self._max_width:  # not drawn yet: room to scroll to it
            self._max_width = Text(line).cell_len
            self._resize()
        start = Text(line[: hit.start()]).cell_len
        end = start + Text(hit.group()).cell_len
        body = self.size.width - len(str(max(self.line_count, 1))) - 1
        if self.scroll_x <= start and end <= self.scroll_x + body:
            return self.scroll_x
        return max(0, start - body // 4)

    # scrolling -------------------------------------------------------------------------------
    @property
    def visible_count(self) -> int:
        return len(self.filtered) if self.filtered is not None else self.line_count

    def _resize(self) -> None:
        gutter = len(str(max(self.line_count, 1))) + 1
        self.virtual_size = Size(self._max_width + gutter + 1, self.visible_count)
        if self.follow:
            self.scroll_to(y=self.visible_count, animate=False, force=True)  # clamped to the end
        self.refresh()

    def action_follow(self) -> None:
        self.follow, self.current = True, None
        self._resize()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            self.follow = False  # the person scrolled up (a shrinking view only clamps)
        elif new > old and new >= self.max_scroll_y:
            self.follow = True  # back at the end: follow again

    def watch_highlight(self) -> None:
        self._cache.clear()
        self.refresh()

    # rendering -------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.size.width
        if self.index is None or row >= self.visible_count:
            return Strip.blank(width, self.rich_style)
        number = self.filtered[row] if self.filtered is not None else row
        last = number >= self.line_count - 1
        key = (number, scroll_x, width, number == self.current)
        cached = None if last else self._cache.get(key)
        if cached is not None:
            return cached
        strip = self._render_number(number, scroll_x, width)
        if not last:
            self._cache[key] = strip
        return strip

    def _render_number(self, number: int, scroll_x: int, width: int) -> Strip:
        assert self.index is not None
        line = clean_text(self.index.line(number), 1 << 20)  # no escape sequence reaches the screen
        gutter_width = len(str(max(self.line_count, 1))) + 1
        gutter = Strip(
            [
                Segment(
                    f"{number + 1:>{gutter_width - 1}} ",
                    self.get_component_rich_style("logview--gutter"),
                )
            ]
        )
        text = Text(line, no_wrap=True, end="")
        for component, pattern in LEVELS:
            if pattern.search(line):
                text.stylize(self.get_component_rich_style(component))
                break
        if self.highlight:
            text.highlight_regex(
                re.compile(re.escape(self.highlight), re.IGNORECASE),
                self.get_component_rich_style("logview--match"),
            )
        if number == self.current:
            text.stylize(self.get_component_rich_style("logview--current"))
        if text.cell_len > self._max_width:
            self._max_width = text.cell_len
            self.call_later(self._resize)
        body = Strip(list(text.render(self.app.console)), text.cell_len)
        body = body.crop_extend(scroll_x, scroll_x + width - gutter_width, self.rich_style)
        return Strip.join([gutter, body]).simplify()
