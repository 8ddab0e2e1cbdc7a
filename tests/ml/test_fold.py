"""The fold module on its own: history.csv written and read back, a call's shared settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kwsops.config import TrainSettings
from kwsops.ml.augment import AugmentSettings
from kwsops.ml.fold.book import HISTORY_FIELDS, EpochBook
from kwsops.ml.fold.files import read_history, write_history
from kwsops.ml.fold.setup import FoldOptions, FoldSetup, fold_seed
from kwsops.ml.model import default_arch


def rows_of(book: EpochBook) -> list[dict]:
    model = torch.nn.Linear(2, 2)
    for epoch, (val_loss, val_acc) in enumerate([(1.5, 0.25), (1.25, 0.5), (1.3, 0.75)], 1):
        book.record(model, epoch, (2.0 / epoch, 0.1 * epoch), (val_loss, val_acc), 1e-3, 0.0)
    return book.history


def test_history_round_trip(tmp_path: Path) -> None:
    book = EpochBook(patience=1)
    rows = rows_of(book)
    assert book.best["epoch"] == 2 and book.stopped  # lowest val loss; one epoch without
    path = tmp_path / "history.csv"
    write_history(path, rows)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(HISTORY_FIELDS)
    assert read_history(path) == [{k: float(v) for k, v in row.items()} for row in rows]


def test_history_without_a_column_reads_without_it(tmp_path: Path) -> None:
    """An epoch row that lacks a field (an older history) is read without it, not as 0."""
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in rows_of(EpochBook(5))]
    write_history(tmp_path / "history.csv", rows)
    read = read_history(tmp_path / "history.csv")
    assert [set(row) for row in read] == [set(HISTORY_FIELDS) - {"seconds"}] * 3
    assert [row["epoch"] for row in read] == [1.0, 2.0, 3.0]


def test_a_calls_setup_takes_options_over_settings_extra() -> None:
    extra = {"augment": {"mixup": True}, "arch": {"stem": 8}}
    settings = TrainSettings(precision="float32", seed=7, extra=extra)
    setup = FoldSetup.of(settings, FoldOptions(device="cpu"))
    assert setup.augment == AugmentSettings(mixup=True)
    assert setup.arch == {**default_arch(), "stem": 8}
    assert (setup.device, setup.dtype, setup.precision) == (torch.device("cpu"), None, "float32")
    given = FoldSetup.of(settings, FoldOptions(augment=AugmentSettings.none(), device="cpu"))
    assert given.augment == AugmentSettings.none()
    assert fold_seed(settings, 3) == 7003
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        FoldSetup.of(TrainSettings(extra={"augment": {"chorus": 1}}), FoldOptions())
