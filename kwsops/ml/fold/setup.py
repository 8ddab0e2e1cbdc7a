"""A fold's settings and its seeded start, the same in both ways of training.

A fold ``k`` is seeded with ``seed * 1000 + k`` and set up in one order (network, noise bank,
Augmenter, shuffling generator, AdamW and its schedule), so a fold starts alike whether it trains
alone (:mod:`kwsops.ml.training`) or stacked with others (:mod:`kwsops.ml.stacked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from kwsops.config import TrainSettings
from kwsops.ml.augment import Augmenter, AugmentSettings, noise_bank
from kwsops.ml.compute import pick_device, precision_name, repeatable, step_dtype
from kwsops.ml.features import SpecSplit, load_noise, load_split
from kwsops.ml.fold.book import EpochBook
from kwsops.ml.model import build_model, default_arch
from kwsops.ml.split import fold_indices
from kwsops.ml.store import Rows

Pair = tuple[np.ndarray, np.ndarray]  # a fold's (train, val) indices into the train split


@dataclass(frozen=True)
class FoldOptions:
    """What a training call may set beside its ``TrainSettings``; both ways of training take it."""

    augment: AugmentSettings | None = None  # None: settings.extra["augment"] over the defaults
    device: str | torch.device | None = None  # None: CUDA when present, else the CPU
    data: SpecSplit | None = None  # a train split already in memory (the benchmarks' own)


DEFAULT_OPTIONS = FoldOptions()


@dataclass(frozen=True)
class FoldSetup:
    """What every fold of a training call shares: its settings, augmentation, architecture
    (``default_arch()`` under ``settings.extra["arch"]``), device and the steps' dtype."""

    settings: TrainSettings
    augment: AugmentSettings
    arch: dict
    device: torch.device
    dtype: torch.dtype | None  # the training steps' autocast dtype (step_dtype); None: float32

    @classmethod
    def of(cls, settings: TrainSettings, options: FoldOptions) -> FoldSetup:
        augment = options.augment
        if augment is None:
            augment = AugmentSettings.from_dict(dict(settings.extra.get("augment", {})))
        arch = {**default_arch(), **settings.extra.get("arch", {})}
        device = torch.device(options.device) if options.device is not None else pick_device()
        return cls(settings, augment, arch, device, step_dtype(settings.precision, device))

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)


def fold_pairs(data: SpecSplit, folds: int, seed: int) -> tuple[list[Pair], str]:
    """``folds`` (train, val) index pairs of a split and the clip-by-clip fall-back note ("" when
    the folds group by speaker), see :func:`kwsops.ml.split.fold_indices`."""
    return fold_indices(data.labels.numpy(), data.speakers, data.ids, folds, seed, data.label_names)


@dataclass(frozen=True)
class FoldData:
    """The train split the folds are cut from, their index pairs, the fall-back note and the
    recorded background noise (``None``: none)."""

    data: SpecSplit
    pairs: list[Pair]
    note: str
    recorded: torch.Tensor | None

    @classmethod
    def load(cls, spec_dir: Path, settings: TrainSettings, data: SpecSplit | None) -> FoldData:
        """``spec_dir``'s train split (or ``data``) cut into ``settings.folds`` folds."""
        data = data if data is not None else load_split(spec_dir, "train")
        pairs, note = fold_pairs(data, settings.folds, settings.seed)
        return cls(data, pairs, note, load_noise(spec_dir))


def fold_seed(settings: TrainSettings, fold: int) -> int:
    return settings.seed * 1000 + fold


@dataclass(eq=False)  # a training state: equal only to itself
class Fold:
    """One fold's own training state: its clips, network, augmentation, generators, optimizer,
    schedule and epoch book."""

    fold: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    model: torch.nn.Module
    augmenter: Augmenter
    order_gen: torch.Generator
    dropout_gen: torch.Generator  # dropout masks of a fold trained outside its seeded block
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.OneCycleLR
    book: EpochBook
    device: torch.device
    lr: float = 0.0  # the learning rate at the start of this epoch
    order: torch.Tensor | None = None  # this epoch's shuffled positions in train_idx (CPU)

    def start_epoch(self) -> torch.Tensor:
        """The epoch's learning rate and shuffled order, drawn before any of its steps."""
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.order = torch.randperm(len(self.train_idx), generator=self.order_gen)
        return self.order

    def record(
        self, epoch: int, train: tuple[float, float], val: tuple[float, float], epoch_start: float
    ) -> dict:
        """The epoch's history row (:meth:`EpochBook.record`)."""
        return self.book.record(self.model, epoch, train, val, self.lr, epoch_start)

    def epoch_note(self, epoch: int, val_acc: float) -> str:
        return f"fold {self.fold} epoch {epoch} val_acc {val_acc:.3f}"

    def stop_note(self, epoch: int) -> str:
        return f"fold {self.fold} stopped early at epoch {epoch}, best {self.book.best['epoch']}"


FoldT = TypeVar("FoldT", bound=Fold)


def new_fold(setup: FoldSetup, source: FoldData, fold: int, kind: type[FoldT] = Fold) -> FoldT:
    """Fold ``fold`` of ``source`` set up with its own seed, in the one order both ways of
    training use; ``kind``: a ``Fold`` subclass that keeps more (its extra fields default)."""
    train_idx, val_idx = source.pairs[fold]
    seed = fold_seed(setup.settings, fold)
    data, device = source.data, setup.device
    n_classes, n_mels = len(data.label_names), data.features.shape[1]
    with repeatable(seed, torch.get_num_threads()):
        model = build_model(setup.arch, n_classes, n_mels).to(device)
        # a fold trained alone draws only its dropout masks from the global generator later on:
        # a stacked fold goes on from the state its own run would have here
        dropout_gen = torch.Generator(device=device)
        if device.type == "cpu":
            dropout_gen.set_state(torch.get_rng_state())
        else:
            dropout_gen.manual_seed(seed)
        bank = fold_noise_bank(data, train_idx, seed, source.recorded)
        augmenter = Augmenter(
            setup.augment,
            n_classes,
            data.feature_settings,
            bank.to(device),
            seed=seed,
            label_names=data.label_names,
        )
        order_gen = torch.Generator().manual_seed(seed)
        optimizer, schedule = new_optimizer(model, setup.settings, len(train_idx))
    return kind(
        fold=fold,
        train_idx=train_idx,
        val_idx=val_idx,
        model=model,
        augmenter=augmenter,
        order_gen=order_gen,
        dropout_gen=dropout_gen,
        optimizer=optimizer,
        schedule=schedule,
        book=EpochBook(setup.settings.patience),
        device=device,
    )


def fold_noise_bank(
    data: SpecSplit, train_idx: np.ndarray, seed: int, recorded: torch.Tensor | None
) -> torch.Tensor:
    """The fold's noise bank (CPU): speech-shaped noise from the mean spectrum of its training
    clips, read a batch at a time (never the whole fold at once), and the recorded noise."""
    frames = data.features.shape[2]
    clips = Rows(data.features, train_idx)
    return noise_bank(data.feature_settings, frames, clips, seed=seed, recorded=recorded)


def new_optimizer(
    model: torch.nn.Module, settings: TrainSettings, n_train: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.OneCycleLR]:
    """A fold's AdamW and its one-cycle schedule over every step of ``settings.epochs``."""
    # fused: one kernel for all of a model's tensors (the per-tensor loop was ~10% of a step)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
        fused=True,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=settings.learning_rate,
        total_steps=settings.epochs * max(1, -(-n_train // settings.batch_size)),
        pct_start=0.15,
        div_factor=10.0,
        final_div_factor=100.0,
    )
    return optimizer, schedule
