"""kwsops.tui.readers.logindex: the line-break index behind the console's log view (pure, no Textual)."""

from __future__ import annotations

import os
import random

import pytest

from kwsops.tui.readers.logindex import LineIndex, compile_query


def random_text(seed: int, lines: int) -> bytes:
    rng = random.Random(seed)
    words = ["epoch", "ERROR", "loss", "acc", "fold", "\t", "é", "", "x" * 300]
    out = []
    for number in range(lines):
        out.append(f"{number} " + " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
    return ("\n".join(out)).encode()


def expected_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    pieces = text.split("\n")
    if text.endswith("\n"):
        pieces.pop()
    return [p.rstrip("\r").expandtabs(4) for p in pieces] if text else []


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 4096])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_every_line_reads_back(tmp_path, block_bytes: int, trailing_newline: bool) -> None:
    data = random_text(block_bytes, 400) + (b"\n" if trailing_newline else b"")
    path = tmp_path / "run.log"
    path.write_bytes(data)
    index = LineIndex(path, block_bytes=block_bytes, cache_blocks=4)
    result = index.update()
    assert result.caught_up
    want = expected_lines(data)
    assert index.line_count == len(want) == result.new_lines
    assert index.lines(0, len(want) + 5) == want
    for number in (0, 1, 57, len(want) - 1):
        assert index.line(number) == want[number]
    assert index.lines(100, 30) == want[100:130]
    index.close()


def test_incremental_appends_and_partial_lines(tmp_path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"")
    index = LineIndex(path, block_bytes=16)
    assert index.update().new_lines == 0 and index.line_count == 0
    written = b""
    rng = random.Random(3)
    data = random_text(9, 300) + b"\n"
    position = 0
    while position < len(data):
        step = rng.randint(1, 200)
        piece = data[position : position + step]
        position += step
        with open(path, "ab") as handle:
            handle.write(piece)
        written += piece
        index.update()
        assert index.lines(0, 10_000) == expected_lines(written)
    index.close()


def test_stepwise_indexing_reports_progress(tmp_path) -> None:
    data = random_text(1, 5000) + b"\n"
    path = tmp_path / "big.log"
    path.write_bytes(data)
    index = LineIndex(path, block_bytes=256)
    steps = list(index.index_all(step_bytes=10_000))
    assert len(steps) > 5 and steps[-1].caught_up and not any(s.caught_up for s in steps[:-1])
    assert index.line_count == 5000 == sum(s.new_lines for s in steps)
    assert index.line(4321) == expected_lines(data)[4321]
    assert index.checkpoints < 5000 // 2


def test_truncated_or_replaced_file_is_indexed_again(tmp_path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"a\nb\nc\n")
    index = LineIndex(path, block_bytes=2)
    index.update()
    path.write_bytes(b"x\n")
    result = index.update()
    assert result.reset and index.lines(0, 5) == ["x"]
    replacement = tmp_path / "other.log"
    replacement.write_bytes(b"one\ntwo\nthree\nfour\n")
    os.replace(replacement, path)
    assert index.update().reset and index.lines(0, 9) == ["one", "two", "three", "four"]


def test_missing_file_waits_then_appears(tmp_path) -> None:
    index = LineIndex(tmp_path / "later.log")
    assert index.update().new_lines == 0 and index.line_count == 0
    (tmp_path / "later.log").write_text("hello\n")
    assert index.update().new_lines == 1 and index.line(0) == "hello"


def test_grep_and_find(tmp_path) -> None:
    data = random_text(5, 3000) + b"\n"
    path = tmp_path / "run.log"
    path.write_bytes(data)
    index = LineIndex(path, block_bytes=128)
    index.update()
    want = [n for n, line in enumerate(expected_lines(data)) if "error" in line.lower()]
    pattern = compile_query("error")
    seen: list[tuple[int, int]] = []
    assert (
        list(index.grep(pattern, chunk_bytes=1000, progress=lambda d, t: seen.append((d, t))))
        == want
    )
    assert seen[-1][0] == seen[-1][1]
    assert list(index.grep(pattern, want[10])) == want[10:]
    assert index.find(pattern, want[3]) == want[4]
    assert index.find(pattern, want[3], backwards=True) == want[2]
    assert index.find(pattern, want[0], backwards=True) is None
    assert index.find(pattern, want[-1]) is None
    assert list(index.grep(compile_query("ERROR", case_sensitive=True))) == want
    assert list(index.grep(compile_query(r"^1\d\d ", regex=True))) == list(range(100, 200))


def test_very_long_line_is_cut_not_loaded_whole(tmp_path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"short\n" + b"y" * 3_000_000 + b"\nafter\n")
    index = LineIndex(path, block_bytes=64)
    index.update()
    assert index.line_count == 3
    assert index.line(0) == "short" and index.line(2) == "after"
    assert 0 < len(index.line(1)) <= 256 * 1024
