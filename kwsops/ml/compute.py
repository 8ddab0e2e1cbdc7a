"""Where and how training steps run: the device, the steps' precision, and seeded, repeatable
blocks. Both ways of training (:mod:`kwsops.ml.training`, :mod:`kwsops.ml.stacked`) and the fold
set-up (:mod:`kwsops.ml.fold`) use them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from kwsops.config import PRECISIONS


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def step_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the training steps' forward pass runs in under autocast; None: float32.

    ``auto`` is bfloat16 on a CPU with bfloat16 arithmetic (AVX512-BF16 or AMX): a stacked
    step of the default network takes ~0.6x the float32 time there, with the same held-out
    accuracy (README "Scale"). Elsewhere float32: a CPU without it would emulate bfloat16, and
    on a GPU a step of this small network waits on kernel launches, not arithmetic. Only the
    convolutions and the head run in bfloat16; weights, gradients, the optimizer, batch-norm
    statistics, the loss and every validation score stay float32.
    """
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(
            f"training precision {precision!r}: use {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"
        )
    if device.type != "cpu":
        return None
    capabilities = getattr(torch.cpu, "get_capabilities", dict)()
    native = capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")
    return torch.bfloat16 if native else None


def precision_name(dtype: torch.dtype | None) -> str:
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``'s kind; nothing when ``dtype`` is None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def repeatable(seed: int, threads: int) -> Iterator[None]:
    """Seeds, deterministic kernels and a fixed thread count for the block; restores them after.

    Deterministic mode would also fill every new tensor with NaN (a debugging aid that finds
    reads of uninitialised memory): ~10% of a CPU training step here, 30,000 fills an epoch,
    and no value changes without it, so it is off.
    """
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.utils.deterministic.fill_uninitialized_memory = old_fill
