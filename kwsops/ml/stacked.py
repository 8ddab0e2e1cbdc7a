"""Stacked K-fold training: the folds of one batch size train together, as grouped networks.

``train_folds`` trains several folds of one ``TrainSettings`` in lockstep and writes, per fold,
what :func:`kwsops.ml.training.train_fold` writes: ``model.safetensors`` (a plain TC-ResNet that
``load_model`` reads), ``history.csv`` and ``metrics.json``. Each fold keeps what ``train_fold``
gives it: its train/val indices, its seed (``seed * 1000 + fold``) for the initial weights, the
shuffling generator, the Augmenter and (on CPU, draw for draw) dropout; its own AdamW, one-cycle
schedule, early stopping and best weights. In float64 a fold comes out exactly as from
``train_fold`` (tests/ml/test_stacked.py); in float32 rounding differs from the first step on,
so runs agree in distribution, not digit for digit.

How folds are stacked: every fold is still its own ``TCResNet`` (its parameters are the leaves
its own optimizer steps), and ``GroupedTCResNet`` runs several of them as one network: the folds'
weights are concatenated along the output channels and every convolution runs with
``groups = folds``, batch norm over ``folds x channels``, so a fold's channels only see its own
clips and statistics. A step stacks each fold's own augmented batch into one
``[B, folds, n_mels, frames]`` tensor. Folds whose batch at a step has another length (the last,
short batch of an epoch; folds differ in size) run as a separate group, so batch-norm statistics
are never diluted by padding; a fold that stopped early leaves the stack: no gradient, no
optimizer step, its weights, batch-norm statistics and AdamW state stop changing.

On CPU the groups run as channels-last 2-D convolutions (faster per clip than the model's own
1-D ones here, measured) and the folds are split into one group per core ("lanes"), each on its
own worker thread with one torch thread; the next step's augmentation runs on whichever lane is
free meanwhile (it needs nothing from the model). Lanes are worker threads rather than torch's
intra-op threads: an intra-op team waits for its slowest thread at every operator, which on a
shared machine made a 2-thread step slower than a 1-thread one. On a GPU, where a step of this
small network is kernel-launch bound, all folds run in one group.

Clips are read a batch at a time (``data.features[index]``), never a whole fold or split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kwsops.config import TrainSettings, available_cores
from kwsops.ml.compute import autocast, repeatable
from kwsops.ml.features import SpecSplit
from kwsops.ml.fold.files import FoldResult, FoldRun, write_fold
from kwsops.ml.fold.setup import (
    DEFAULT_OPTIONS,
    Fold,
    FoldData,
    FoldOptions,
    FoldSetup,
    new_fold,
)
from kwsops.ml.model import TCResNet, TemporalBlock
from kwsops.progress import ProgressFn, no_progress

EpochFn = Callable[[int, int, dict], None]  # (fold, epoch, history row)
# validation clips per fold and forward pass: eval mode scores every clip on its own, so the
# chunk only bounds memory; 64 x folds stays in cache better than train_fold's 256
_EVAL_CLIPS = 64
T = TypeVar("T")


def _clip_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``ClipNorm`` over the last axis: ``(x - mean) / (std + eps)``, unbiased std. Two plain
    passes: ~4x faster on CPU than ``torch.std_mean``'s, the same values up to rounding."""
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    std = (centred.square().sum(dim=-1, keepdim=True) / (x.shape[-1] - 1)).sqrt()
    return centred / (std + eps)


class GroupedTCResNet:
    """Several ``TCResNet``s of one architecture run as one grouped network.

    Call it with ``x`` of shape ``[B, G, n_mels, frames]`` (clip ``b`` of member ``g`` at
    ``x[b, g]``) and the indices of the ``G`` member models; it returns ``[B, G, n_classes]``
    logits, what each member's own ``forward`` returns for its own clips. Weights are gathered
    with ``torch.cat`` on each call, so gradients land in each member's own parameters. In
    training mode each member's batch-norm running statistics are updated as its own
    ``BatchNorm1d`` would update them; dropout draws each member's mask from its own generator.
    On CPU the network runs as channels-last 2-D convolutions (faster there, measured).
    """

    def __init__(self, models: Sequence[nn.Module], channels_last: bool = True):
        if not models or not all(isinstance(m, TCResNet) for m in models):
            raise TypeError("GroupedTCResNet stacks TCResNet models only")
        for norm in (n for m in models for n in m.modules() if isinstance(n, nn.BatchNorm1d)):
            if norm.momentum is None or not norm.track_running_stats or not norm.affine:
                raise TypeError("GroupedTCResNet needs affine batch norm with running statistics")
        self.models = list(models)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(
        self,
        x: torch.Tensor,
        members: Sequence[int],
        *,
        train: bool,
        dropout_gens: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        models = [self.models[i] for i in members]
        batch, groups, n_mels, frames = x.shape
        if groups != len(models):
            raise ValueError(f"x stacks {groups} members, {len(models)} given")
        first = models[0]
        x = _clip_norm(x.reshape(batch, groups, n_mels * frames), first.norm.eps)
        x = x.reshape(batch, groups * n_mels, 1, frames).contiguous(
            memory_format=self.memory_format
        )
        x = self._bn(x, [m.band_norm for m in models], train)
        x = torch.relu(
            self._bn(self._conv(x, [m.stem[0] for m in models]), [m.stem[1] for m in models], train)
        )
        for index in range(len(first.blocks)):
            x = self._block(x, [m.blocks[index] for m in models], train)
        pooled = x.mean(dim=(2, 3)).reshape(batch, groups, -1)
        pooled = self._dropout(pooled, first.dropout.p, train, dropout_gens)
        weight = torch.stack([m.head.weight for m in models])  # [G, classes, channels]
        bias = torch.stack([m.head.bias for m in models])
        return torch.einsum("bgc,gkc->bgk", pooled, weight) + bias

    def _block(self, x: torch.Tensor, blocks: list[TemporalBlock], train: bool) -> torch.Tensor:
        y = torch.relu(
            self._bn(self._conv(x, [b.conv1 for b in blocks]), [b.bn1 for b in blocks], train)
        )
        y = self._bn(self._conv(y, [b.conv2 for b in blocks]), [b.bn2 for b in blocks], train)
        if isinstance(blocks[0].shortcut, nn.Identity):
            return torch.relu(y + x)
        shortcut = self._conv(x, [b.shortcut[0] for b in blocks])
        return torch.relu(y + self._bn(shortcut, [b.shortcut[1] for b in blocks], train))

    def _conv(self, x: torch.Tensor, convs: list[nn.Conv1d]) -> torch.Tensor:
        first = convs[0]
        weight = torch.cat([c.weight for c in convs]).unsqueeze(2)  # [G*out, in, 1, kernel]
        weight = weight.contiguous(memory_format=self.memory_format)
        bias = torch.cat([c.bias for c in convs]) if first.bias is not None else None
        return F.conv2d(
            x,
            weight,
            bias,
            stride=(1, first.stride[0]),
            padding=(0, first.padding[0]),
            dilation=(1, first.dilation[0]),
            groups=len(convs) * first.groups,
        )

    @staticmethod
    def _bn(x: torch.Tensor, norms: list[nn.BatchNorm1d], train: bool) -> torch.Tensor:
        first = norms[0]
        running_mean = torch.cat([n.running_mean for n in norms])
        running_var = torch.cat([n.running_var for n in norms])
        out = F.batch_norm(
            x,
            running_mean,
            running_var,
            torch.cat([n.weight for n in norms]),
            torch.cat([n.bias for n in norms]),
            training=train,
            momentum=first.momentum,
            eps=first.eps,
        )
        if train:  # F.batch_norm updated the concatenated copies: hand each fold its share
            with torch.no_grad():
                for norm, mean, var in zip(
                    norms,
                    running_mean.split(first.num_features),
                    running_var.split(first.num_features),
                    strict=True,
                ):
                    norm.running_mean.copy_(mean)
                    norm.running_var.copy_(var)
                    norm.num_batches_tracked.add_(1)
        return out

    @staticmethod
    def _dropout(
        x: torch.Tensor, p: float, train: bool, gens: Sequence[torch.Generator] | None
    ) -> torch.Tensor:
        """``F.dropout`` per member, each mask drawn from that member's generator as F.dropout
        draws it on CPU (``bernoulli_(1 - p)`` on an empty ``[B, channels]``, then ``/ (1-p)``)."""
        if not train or p == 0:
            return x
        if gens is None or len(gens) != x.shape[1]:
            raise ValueError("training with dropout needs one generator per member")
        if p == 1:
            return x * 0
        masks = [x.new_empty(x.shape[0], x.shape[2]).bernoulli_(1 - p, generator=g) for g in gens]
        return x * torch.stack(masks, dim=1).div_(1 - p)


@dataclass(eq=False)  # a training state: equal only to itself
class _Fold(Fold):
    """A fold's own training state (:class:`kwsops.ml.fold.setup.Fold`) and what a stacked
    epoch keeps of it: its augmented batches ahead, its training sums, whether it is done."""

    done: bool = False
    seconds: float = 0.0  # from train_folds' start to this fold's last epoch
    ready: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0

    def start_epoch(self) -> torch.Tensor:
        """Draw the epoch's order (as train_fold does, before any of its steps) and reset sums."""
        order = super().start_epoch()
        self.seen, self.loss_sum, self.correct = 0, 0.0, 0
        self.model.train()
        return order

    def train_fit(self) -> tuple[float, float]:
        """The epoch's (mean training loss, accuracy on the augmented clips)."""
        return self.loss_sum / max(self.seen, 1), self.correct / max(self.seen, 1)

    def batch_length(self, step: int, batch_size: int) -> int:
        """Clips in this epoch's ``step``-th batch; 0 when there is none or it is skipped (one
        clip: batch norm needs two, as in train_fold)."""
        length = max(0, min(batch_size, len(self.train_idx) - step * batch_size))
        return length if length >= 2 else 0

    def augment(self, step: int, batch_size: int, data: SpecSplit) -> None:
        """Read and augment the ``step``-th batch with this fold's Augmenter, for a later
        ``take``. Needs nothing from the model, so it may run while the previous step trains."""
        assert self.order is not None
        positions = self.order[step * batch_size : (step + 1) * batch_size]
        index = torch.from_numpy(self.train_idx)[positions]
        x, y = data.features[index].to(self.device), data.labels[index].to(self.device)
        self.ready[step] = self.augmenter(x, y)

    def take(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ready.pop(step)


def _train_step(
    net: GroupedTCResNet,
    members: list[int],
    folds: list[_Fold],
    step: int,
    label_smoothing: float,
    dtype: torch.dtype | None = None,
) -> None:
    """One optimizer step for each fold in ``folds`` (augmented batches of one length); the
    forward pass under autocast to ``dtype`` when given (:func:`step_dtype`)."""
    augmented = [f.take(step) for f in folds]
    x = torch.stack([xb for xb, _ in augmented], dim=1)  # [B, G, n_mels, frames]
    y = torch.stack([yb for _, yb in augmented], dim=1)  # [B, G] or soft [B, G, classes]
    with autocast(x.device, dtype):
        logits = net(x, members, train=True, dropout_gens=[f.dropout_gen for f in folds]).to(
            x.dtype
        )
    n_classes = logits.shape[2]
    per_clip = F.cross_entropy(
        logits.reshape(-1, n_classes),
        y.reshape(-1, n_classes) if y.dim() == 3 else y.reshape(-1),
        reduction="none",
        label_smoothing=label_smoothing,
    )
    losses = per_clip.reshape(x.shape[0], len(folds)).mean(dim=0)  # each fold's own mean loss
    for f in folds:
        f.optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()  # folds share no weights: each gradient is its own loss's
    hard = y if y.dim() == 2 else y.argmax(2)
    correct = (logits.detach().argmax(2) == hard).sum(dim=0).tolist()
    for f, loss, right in zip(folds, losses.detach().tolist(), correct, strict=True):
        f.optimizer.step()
        if f.schedule.last_epoch + 1 < f.schedule.total_steps:
            f.schedule.step()
        f.seen += x.shape[0]
        f.loss_sum += loss * x.shape[0]
        f.correct += right


def _padded(index: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """``index[start : start + length]``, filled up to ``length`` with copies of ``index[0]``."""
    part = index[start : start + length]
    return torch.cat([part, index[:1].expand(length - len(part))])


@torch.inference_mode()
def _evaluate(
    net: GroupedTCResNet, members: list[int], folds: list[_Fold], data: SpecSplit
) -> list[tuple[float, float]]:
    """(mean cross-entropy, accuracy) of each fold on its own validation clips, in eval mode,
    as ``kwsops.ml.training.evaluate`` computes them. Eval mode treats every clip on its own, so
    folds with fewer clips are padded with copies of their first one and the copies ignored."""
    sizes = [len(f.val_idx) for f in folds]
    vals = [torch.from_numpy(f.val_idx) for f in folds]
    device = folds[0].device
    loss = [0.0] * len(folds)
    correct = [0] * len(folds)
    for start in range(0, max(sizes), _EVAL_CLIPS):
        length = min(_EVAL_CLIPS, max(sizes) - start)
        index = torch.stack([_padded(v, start, length) for v in vals], dim=1)  # [length, G]
        x = data.features[index.reshape(-1)].reshape(length, len(folds), *data.features.shape[1:])
        logits = net(x.to(device), members, train=False)
        for g, size in enumerate(sizes):
            n = max(0, min(length, size - start))
            if n == 0:
                continue
            target = data.labels[index[:n, g]].to(device)
            loss[g] += float(F.cross_entropy(logits[:n, g], target, reduction="sum"))
            correct[g] += int((logits[:n, g].argmax(1) == target).sum())
    return [(lo / max(s, 1), c / max(s, 1)) for lo, c, s in zip(loss, correct, sizes, strict=True)]


def _split(members: list[int], parts: int) -> list[list[int]]:
    """``members`` in at most ``parts`` contiguous runs of near-equal length (longer first)."""
    return [run.tolist() for run in np.array_split(np.array(members), parts) if len(run)]


class _Lanes:
    """Runs a phase's tasks on ``lanes`` worker threads of one torch thread each (first come,
    first served, in submission order) and waits for all; inline when ``lanes`` is 1."""

    def __init__(self, lanes: int, threads_each: int = 1):
        self.count = lanes
        self.pool = (
            ThreadPoolExecutor(
                lanes, "stacked-lane", initializer=torch.set_num_threads, initargs=(threads_each,)
            )
            if lanes > 1
            else None
        )

    def run(self, tasks: list[Callable[[], T]]) -> list[T]:
        if self.pool is None:
            return [task() for task in tasks]
        futures = [self.pool.submit(task) for task in tasks]
        return [future.result() for future in futures]

    def close(self) -> None:
        if self.pool is not None:
            # a cancel (TaskCancelled in the main thread) lands here: queued steps are dropped,
            # the running ones (a step each) finish, nothing is written
            self.pool.shutdown(wait=True, cancel_futures=True)


def default_lanes(device: torch.device) -> int:
    """One lane per core this process may use on CPU (whatever ``$KWSOPS_TORCH_THREADS`` says
    for a per-fold worker: two stacked tasks at once share the cores, one alone uses them all);
    one on a GPU."""
    if device.type != "cpu":
        return 1
    return available_cores()


def _check_folds(folds: list[int], settings: TrainSettings) -> None:
    if not folds:
        raise ValueError("no folds to train")
    for fold in folds:
        if not 0 <= fold < settings.folds:
            raise ValueError(f"fold {fold} out of range: 0..{settings.folds - 1}")


@dataclass
class _Stack:
    """The folds of one ``train_folds`` call run as one grouped network on ``lanes``, epoch by
    epoch; each fold's rows go to ``on_epoch``, the fold-epochs done to ``progress``."""

    setup: FoldSetup
    data: SpecSplit
    folds: list[_Fold]
    lanes: _Lanes
    progress: ProgressFn
    on_epoch: EpochFn | None
    start: float  # the call's start: a fold's seconds run from it to its last epoch
    done_epochs: int = 0

    def __post_init__(self) -> None:
        channels_last = self.setup.device.type == "cpu"
        self.net = GroupedTCResNet([f.model for f in self.folds], channels_last=channels_last)

    def train(self) -> None:
        """Every epoch until each fold ran its last or stopped early."""
        for epoch in range(1, self.setup.settings.epochs + 1):
            active = [i for i, f in enumerate(self.folds) if not f.done]  # members of self.net
            if not active:
                break
            epoch_start = time.monotonic()
            self._steps(active)
            self._record(epoch, active, self._scores(active), epoch_start)

    def _steps(self, active: list[int]) -> None:
        """One epoch's optimizer steps; each step's clips augmented while the one before trains."""
        bs = self.setup.settings.batch_size
        for i in active:
            self.folds[i].start_epoch()
        self.lanes.run(self._augmenting(active, 0))
        steps = max(-(-len(self.folds[i].train_idx) // bs) for i in active)
        for step in range(steps):
            self.lanes.run(self._training(active, step) + self._augmenting(active, step + 1))

    def _augmenting(self, active: list[int], step: int) -> list[Callable[[], None]]:
        bs = self.setup.settings.batch_size
        folds = [self.folds[i] for i in active]
        return [partial(f.augment, step, bs, self.data) for f in folds if f.batch_length(step, bs)]

    def _training(self, active: list[int], step: int) -> list[Callable[[], None]]:
        """A step's training tasks: the folds whose batch has one length, split over the lanes."""
        bs = self.setup.settings.batch_size
        by_length: dict[int, list[int]] = {}
        for i in active:
            if length := self.folds[i].batch_length(step, bs):
                by_length.setdefault(length, []).append(i)
        groups = [g for members in by_length.values() for g in _split(members, self.lanes.count)]
        smoothing, dtype = self.setup.settings.label_smoothing, self.setup.dtype
        return [
            partial(_train_step, self.net, g, [self.folds[i] for i in g], step, smoothing, dtype)
            for g in groups
        ]

    def _scores(self, active: list[int]) -> list[tuple[float, float]]:
        """Each active fold's (validation loss, accuracy), in the order of ``active``."""
        for i in active:
            self.folds[i].model.eval()
        parts = self.lanes.run(
            [
                partial(_evaluate, self.net, g, [self.folds[i] for i in g], self.data)
                for g in _split(active, self.lanes.count)
            ]
        )
        return [score for part in parts for score in part]

    def _record(
        self,
        epoch: int,
        active: list[int],
        scores: list[tuple[float, float]],
        epoch_start: float,
    ) -> None:
        """The epoch into each fold's book, the callbacks, and which folds are done."""
        epochs = self.setup.settings.epochs
        total = len(self.folds) * epochs
        for i, val in zip(active, scores, strict=True):
            f = self.folds[i]
            row = f.record(epoch, f.train_fit(), val, epoch_start)
            if self.on_epoch is not None:
                self.on_epoch(f.fold, epoch, dict(row))
            self.done_epochs += 1
            self.progress(self.done_epochs, total, f.epoch_note(epoch, val[1]))
            if f.book.stopped or epoch == epochs:
                f.done, f.seconds = True, time.monotonic() - self.start
            if f.book.stopped:
                self.done_epochs += epochs - epoch
                self.progress(self.done_epochs, total, f.stop_note(epoch))


def train_folds(
    spec_dir: Path,
    out_dirs: Mapping[int, Path],
    settings: TrainSettings,
    *,
    options: FoldOptions = DEFAULT_OPTIONS,
    progress: ProgressFn = no_progress,
    on_epoch: EpochFn | None = None,
    lanes: int | None = None,
) -> list[FoldResult]:
    """Train the folds ``out_dirs`` names (fold -> its output folder) of ``settings`` together.

    Writes into ``out_dirs[fold]`` what ``train_fold`` writes for that fold and returns the
    ``FoldResult``s in the order of ``out_dirs``. ``lanes``: how many stacked groups train at
    once, each on its own worker thread of one torch thread (default :func:`default_lanes`).
    Results depend on ``lanes`` (which folds share a grouped convolution changes its rounding),
    never on timing.

    ``on_epoch(fold, epoch, row)`` gets each fold's history rows; ``progress`` counts
    fold-epochs (``len(out_dirs) * epochs`` in all; a fold that stops early counts its remaining
    epochs as done). A row's ``seconds`` is the stacked epoch's wall time, shared by its folds;
    ``metrics.json``'s ``seconds`` is the time from the call's start to the fold's last epoch
    and its ``stacked_folds`` says how many folds shared that time.
    """
    folds = list(out_dirs)
    _check_folds(folds, settings)
    setup = FoldSetup.of(settings, options)
    lanes = max(1, min(lanes or default_lanes(setup.device), len(folds)))
    start = time.monotonic()
    source = FoldData.load(spec_dir, settings, options.data)
    pool = _Lanes(lanes)
    try:
        with repeatable(settings.seed, 1):
            states = [new_fold(setup, source, fold, _Fold) for fold in folds]
            _Stack(setup, source.data, states, pool, progress, on_epoch, start).train()
    finally:
        pool.close()
    run = FoldRun(setup, source, lanes, stacked_folds=len(states))
    return [write_fold(Path(out_dirs[s.fold]), s, run, s.seconds) for s in states]
