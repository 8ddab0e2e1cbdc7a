"""Index a growing log's line breaks so any line reads on demand, whatever the file's size.

One checkpoint (line number, byte offset) per ``block_bytes`` of text, not one offset per line:
a 500 MB log costs kilobytes of index and a line is one cached ``os.pread`` of its block.
``update`` reads forward from the last offset seen (following a log reads only what was
appended; a big log is indexed in steps by a background thread); a file that shrinks or is
replaced is indexed again. No Textual here: the log widget and the benchmark both use it.
"""

from __future__ import annotations

import os
import re
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BLOCK_BYTES = 64 * 1024
SCAN_CHUNK = 1024 * 1024
MAX_LINE_BYTES = 256 * 1024  # a longer line is cut when read (it is still one line)
TAB_SIZE = 4


@dataclass(frozen=True)
class IndexUpdate:
    new_lines: int  # lines added to line_count by this call (after a reset: all of them)
    reset: bool  # the file shrank or was replaced; earlier line numbers are void
    caught_up: bool  # indexed to the end of the file as it was when the call started
    scanned: int  # bytes read by this call


def compile_query(text: str, *, regex: bool = False, case_sensitive: bool = False) -> re.Pattern:
    """A bytes pattern for ``find``/``grep``; plain text is matched literally."""
    source = text.encode("utf-8") if regex else re.escape(text.encode("utf-8"))
    return re.compile(source, re.MULTILINE | (0 if case_sensitive else re.IGNORECASE))


def decode_line(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode("utf-8", errors="replace").expandtabs(TAB_SIZE)


class LineIndex:
    """Line-break index of one file; ``update`` from one thread, read from any."""

    def __init__(
        self, path: str | os.PathLike, *, block_bytes: int = BLOCK_BYTES, cache_blocks: int = 64
    ) -> None:
        self.path = Path(path)
        self.block_bytes = block_bytes
        self._cache_blocks = cache_blocks
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._cache: OrderedDict[tuple[int, int], list[str]] = OrderedDict()
        self._clear()

    def _clear(self) -> None:
        self._cp_lines = array("q", [0])  # line number of each checkpoint
        self._cp_offsets = array("q", [0])  # byte offset where that line starts
        self._lines = 0  # complete (newline-terminated) lines indexed
        self._indexed = 0  # byte offset just after the last newline indexed
        self._tail_end = 0  # end of a trailing line without newline (== _indexed if none)
        self._size = 0  # file size at the last update
        self._cache.clear()

    # state -----------------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        with self._lock:
            return self._lines + (1 if self._tail_end > self._indexed else 0)

    @property
    def complete_lines(self) -> int:  # a trailing line still being written is not one
        return self._lines

    @property
    def size(self) -> int:
        return self._size

    @property
    def indexed_bytes(self) -> int:
        with self._lock:
            return max(self._indexed, self._tail_end)

    @property
    def checkpoints(self) -> int:
        return len(self._cp_offsets)  # the index's memory: two int64 per checkpoint

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None
            self._identity = None

    # scanning --------------------------------------------------------------------------------
    def _reopen(self) -> tuple[int | None, bool]:
        """The descriptor to read, and whether the index was reset (file replaced/truncated)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return self._fd, False
        identity = (stat.st_dev, stat.st_ino)
        reset = False
        with self._lock:
            if self._fd is not None and identity != self._identity:
                os.close(self._fd)
                self._fd = None
                reset = self._lines > 0 or self._tail_end > 0
                self._clear()
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
                self._identity = identity
            if stat.st_size < max(self._indexed, self._tail_end):
                self._clear()
                reset = True
        return self._fd, reset

    def update(self, max_bytes: int | None = None) -> IndexUpdate:
        """Index bytes appended since the last call (at most ``max_bytes`` of them)."""
        fd, reset = self._reopen()
        if fd is None:
            return IndexUpdate(0, reset, True, 0)
        before = 0 if reset else self.line_count
        size = os.fstat(fd).st_size
        start = self._indexed
        end = size if max_bytes is None else min(size, start + max_bytes)
        lines, indexed, cut_from = self._lines, self._indexed, self._cp_offsets[-1]
        new_lines: list[int] = []
        new_offsets: list[int] = []
        position = start
        while position < end:
            data = os.pread(fd, min(SCAN_CHUNK, end - position), position)
            if not data:
                break
            last_newline = data.rfind(b"\n")
            if last_newline >= 0:
                counted_to, counted = 0, 0
                cut = cut_from + self.block_bytes - position
                while cut - 1 <= last_newline:
                    newline = data.find(b"\n", max(cut - 1, 0), last_newline + 1)
                    counted += data.count(b"\n", counted_to, newline + 1)
                    counted_to = newline + 1
                    cut_from = position + newline + 1
                    new_lines.append(lines + counted)
                    new_offsets.append(cut_from)
                    cut = cut_from + self.block_bytes - position
                lines += counted + data.count(b"\n", counted_to, last_newline + 1)
                indexed = position + last_newline + 1
            position += len(data)
        with self._lock:
            self._cp_lines.extend(new_lines)
            self._cp_offsets.extend(new_offsets)
            self._lines, self._indexed, self._size = lines, indexed, size
            self._tail_end = position if position >= size else indexed
        return IndexUpdate(self.line_count - before, reset, end >= size, position - start)

    def index_all(
        self, step_bytes: int = 8 * SCAN_CHUNK, cancelled: Callable[[], bool] = lambda: False
    ) -> Iterator[IndexUpdate]:
        """Index the whole file in steps, yielding after each (for progress and cancelling)."""
        while not cancelled():
            result = self.update(step_bytes)
            yield result
            if result.caught_up:
                return

    # reading ---------------------------------------------------------------------------------
    def _block_span(self, line: int) -> tuple[int, int, int]:
        """(first line, start offset, end offset) of the block holding complete line ``line``."""
        with self._lock:
            block = bisect_right(self._cp_lines, line) - 1
            start = self._cp_offsets[block]
            end = (
                self._cp_offsets[block + 1] if block + 1 < len(self._cp_offsets) else self._indexed
            )
            return self._cp_lines[block], start, end

    def _read_block(self, start: int, end: int) -> list[str]:
        key = (start, end)
        with self._lock:
            if (cached := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return cached
        # only a block's last line can be long: cut it, keep the lines before it whole
        data = self._read_span(start, min(end, start + self.block_bytes + MAX_LINE_BYTES))
        pieces = data.split(b"\n")
        if data.endswith(b"\n"):
            pieces.pop()
        lines = [decode_line(piece[:MAX_LINE_BYTES]) for piece in pieces]
        with self._lock:
            self._cache[key] = lines
            if len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
        return lines

    def lines(self, first: int, count: int) -> list[str]:
        """Lines ``first`` .. ``first + count - 1`` (fewer at the end of the file)."""
        result: list[str] = []
        total = self.line_count
        line = max(first, 0)
        stop = min(first + count, total)
        while line < stop:
            if line >= self._lines:  # the trailing line still being written
                with self._lock:
                    start, end = self._indexed, self._tail_end
                result.append(decode_line(self._read_span(start, min(end, start + MAX_LINE_BYTES))))
                break
            block_first, start, end = self._block_span(line)
            block = self._read_block(start, end)
            taken = block[line - block_first : line - block_first + (stop - line)]
            if not taken:
                break
            result.extend(taken)
            line += len(taken)
        return result

    def line(self, number: int) -> str:
        found = self.lines(number, 1)
        return found[0] if found else ""

    # searching -------------------------------------------------------------------------------
    def _groups(self, first_line: int, chunk_bytes: int) -> list[tuple[int, int, int]]:
        """(first line, start, end) spans of whole blocks, about ``chunk_bytes`` each, from the
        block holding ``first_line`` to the end (the trailing unterminated line included)."""
        with self._lock:
            lines, offsets = self._cp_lines, self._cp_offsets
            block = max(bisect_right(lines, first_line) - 1, 0)
            spans: list[tuple[int, int, int]] = []
            while block < len(offsets):
                last = block
                while last + 1 < len(offsets) and offsets[last + 1] - offsets[block] < chunk_bytes:
                    last += 1
                end = offsets[last + 1] if last + 1 < len(offsets) else self._indexed
                if end > offsets[block]:
                    spans.append((lines[block], offsets[block], end))
                block = last + 1
            if self._tail_end > self._indexed:
                spans.append((self._lines, self._indexed, self._tail_end))
        return spans

    def _read_span(self, start: int, end: int) -> bytes:
        fd = self._fd
        return os.pread(fd, end - start, start) if fd is not None and end > start else b""

    @staticmethod
    def _matches(pattern: re.Pattern, line: int, data: bytes) -> Iterator[int]:
        """Numbers of the lines of ``data`` (whose first line is ``line``) that match."""
        position, counted_to = 0, 0
        while (match := pattern.search(data, position)) is not None:
            line += data.count(b"\n", counted_to, match.start())
            counted_to = match.start()
            yield line
            newline = data.find(b"\n", match.end())
            if newline < 0:
                return
            position = newline + 1

    def grep(self, pattern: re.Pattern, first_line: int = 0, *, chunk_bytes: int = 4 * SCAN_CHUNK,
             cancelled: Callable[[], bool] = lambda: False,
             progress: Callable[[int, int], None] | None = None) -> array:  # fmt: skip
        """Numbers of the lines (from ``first_line``) that match, in order."""
        found = array("q")
        spans = self._groups(first_line, chunk_bytes)
        total = sum(end - start for _, start, end in spans) or 1
        done = 0
        for line, start, end in spans:
            if cancelled():
                break
            matches = self._matches(pattern, line, self._read_span(start, end))
            found.extend(n for n in matches if n >= first_line)
            done += end - start
            if progress is not None:
                progress(done, total)
        return found

    def find(self, pattern: re.Pattern, from_line: int, *, backwards: bool = False,
             chunk_bytes: int = SCAN_CHUNK) -> int | None:  # fmt: skip
        """The nearest line after (or before) ``from_line`` that matches, or None."""
        spans = self._groups(0 if backwards else from_line + 1, chunk_bytes)
        if backwards:
            spans = reversed([span for span in spans if span[0] < from_line])
        for line, start, end in spans:
            found = self._matches(pattern, line, self._read_span(start, end))
            if backwards:
                before = [n for n in found if n < from_line]
                if before:
                    return before[-1]
            elif (after := next((n for n in found if n > from_line), None)) is not None:
                return after
        return None
