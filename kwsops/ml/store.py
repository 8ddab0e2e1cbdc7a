"""Spectrogram files on disk: written row batch by row batch, read back row by row.

The packed data set (:mod:`kwsops.ml.features`) is safetensors: an 8-byte little-endian header
length, a JSON header (each tensor's dtype, shape and byte range) and the raw rows. Any
safetensors reader opens it, and nothing pickles. At 100 000 clips the features are 1.6 GB of
float32, so neither side ever holds a whole split:

- :func:`stream_tensors` writes the header first (dtype, shape and offsets are known before
  any clip is read) and then each batch of rows straight into a temp file that is renamed into
  place at the end (:func:`kwsops.atomic.atomic_file`). safetensors' own ``save_file`` needs
  every tensor whole in memory, hence this small writer of the same format.
- :class:`FeatureStore` reads the rows an index asks for with ``os.preadv`` (consecutive rows in
  one call), as a float32 tensor, so training and validation gather one batch at a time.
  :class:`Rows` is the view of a fold's rows that a training loop slices per batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import torch

from kwsops.atomic import atomic_file

DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8")}
CODES = {dtype: code for code, dtype in DTYPES.items()}
MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
_ALIGN = 8  # the header is padded with spaces so the data starts 8-byte aligned, as save_file does
_SOURCE_BATCH = 1024  # rows per read when a whole source is walked (mean_power)


class SpectrogramDataError(ValueError):
    """The manifest, a clip or a packed spectrogram file cannot be used; the message says which."""


def _bad(path: Path, why: str) -> SpectrogramDataError:
    return SpectrogramDataError(
        f"{path}: not a kwsops spectrogram file ({why}); rerun MakeSpectrograms"
    )


class _Entry:
    __slots__ = ("dtype", "shape", "start", "stop")

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...], start: int, stop: int):
        self.dtype, self.shape, self.start, self.stop = dtype, shape, start, stop


def read_header(path: Path, fd: int) -> tuple[dict[str, _Entry], dict[str, str]]:
    """The tensors of the safetensors file open on ``fd`` (byte ranges made absolute) and its
    metadata; checked against the file's size, so a truncated or garbled file is refused."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 8, 0)
    if len(head) < 8:
        raise _bad(path, f"{size} bytes, too short for a header")
    length = int.from_bytes(head, "little")
    if length > MAX_HEADER or 8 + length > size:
        raise _bad(path, f"header of {length} bytes in a file of {size}")
    try:
        header = json.loads(os.pread(fd, length, 8))
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        entries, ranges = {}, []
        for name, info in header.items():
            dtype = DTYPES.get(info["dtype"])
            if dtype is None:
                raise ValueError(f"{name}: dtype {info['dtype']} is not one kwsops writes")
            shape = tuple(int(n) for n in info["shape"])
            start, stop = (int(n) for n in info["data_offsets"])
            if min(shape, default=0) < 0 or stop - start != math.prod(shape) * dtype.itemsize:
                raise ValueError(f"{name}: {stop - start} bytes for shape {list(shape)}")
            entries[name] = _Entry(dtype, shape, 8 + length + start, 8 + length + stop)
            ranges.append((start, stop))
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(path, f"bad header: {exc}") from None
    ranges.sort()
    if [r[0] for r in ranges] != [0] + [r[1] for r in ranges[:-1]] or (
        (ranges[-1][1] if ranges else 0) != size - 8 - length
    ):
        raise _bad(path, f"the tensors do not cover its {size - 8 - length} data bytes exactly")
    return entries, metadata


def _pread_into(path: Path, fd: int, buffer: memoryview, offset: int) -> None:
    done = 0
    while done < len(buffer):
        got = os.preadv(fd, [buffer[done:]], offset + done)
        if got == 0:
            raise _bad(path, f"ends before byte {offset + len(buffer)}")
        done += got


def read_tensor(path: str | os.PathLike, name: str) -> torch.Tensor:
    """One whole tensor of a safetensors file (for the small ones: labels, noise)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpectrogramDataError(f"{path}: not found; run MakeSpectrograms first") from None
    try:
        entries, _ = read_header(path, fd)
        if name not in entries:
            raise _bad(path, f"no {name!r} tensor")
        entry = entries[name]
        out = np.empty(entry.shape, dtype=entry.dtype)
        _pread_into(path, fd, memoryview(out.reshape(-1).view(np.uint8)), entry.start)
    finally:
        os.close(fd)
    return torch.from_numpy(out.astype(np.float32) if entry.dtype == DTYPES["F16"] else out)


class FeatureStore:
    """The ``features`` tensor ``[N, n_mels, frames]`` of a spectrogram file, read on demand.

    ``store[i]`` (int: ``[n_mels, frames]``), ``store[a:b]``, ``store[index]`` (a 1-D integer
    numpy array or tensor, in any order, repeats allowed) give a float32 tensor read from disk,
    as indexing the tensor would; float16 files are widened. One descriptor per process: a
    forked or unpickled copy opens its own.
    """

    def __init__(self, path: str | os.PathLike, name: str = "features"):
        self.path = Path(path)
        self.name = name
        self._fd: int | None = None
        self._pid = 0
        try:
            fd = self._descriptor()
        except FileNotFoundError:
            raise SpectrogramDataError(
                f"{self.path}: not found; run MakeSpectrograms first"
            ) from None
        entries, _ = read_header(self.path, fd)
        entry = entries.get(name)
        if entry is None or len(entry.shape) != 3 or entry.dtype.kind != "f":
            raise _bad(self.path, f"no float {name!r} tensor [clips, mels, frames]")
        self._entry = entry
        self._row_bytes = math.prod(entry.shape[1:]) * entry.dtype.itemsize

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self._entry.shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32  # what reads return, whatever the file stores

    @property
    def stored_dtype(self) -> str:
        return CODES[self._entry.dtype]

    def __len__(self) -> int:
        return self._entry.shape[0]

    def dim(self) -> int:
        return 3

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            # a forked child gets its own descriptor; the inherited one stays the parent's
            self._fd, self._pid = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        with suppress(OSError):
            self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": 0}

    def __getitem__(self, index) -> torch.Tensor:
        n = len(self)
        if torch.is_tensor(index):
            index = index.detach().cpu().numpy()
        if isinstance(index, int | np.integer) or (
            isinstance(index, np.ndarray) and index.ndim == 0
        ):
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for {n} rows of {self.path}")
            return self._run(i % n, i % n + 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step == 1:
                return self._run(start, max(start, stop))
            index = np.arange(start, stop, step)
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (n,):
                raise IndexError(f"a mask of shape {index.shape} for {n} rows of {self.path}")
            index = np.flatnonzero(index)
        if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
            raise IndexError(f"rows of {self.path} take an int, a slice or a 1-D integer index")
        index = index.astype(np.int64, copy=False)
        if index.size and (index.min() < -n or index.max() >= n):
            raise IndexError(f"an index is out of bounds for {n} rows of {self.path}")
        return self._gather(np.where(index < 0, index + n, index))

    def _empty(self, rows: int) -> np.ndarray:
        return np.empty((rows, *self._entry.shape[1:]), dtype=self._entry.dtype)

    def _tensor(self, rows: np.ndarray) -> torch.Tensor:
        if rows.dtype != np.float32:
            rows = rows.astype(np.float32)
        return torch.from_numpy(rows)

    def _read(self, out: np.ndarray, first_row: int) -> None:
        view = memoryview(out.reshape(-1).view(np.uint8))
        _pread_into(
            self.path, self._descriptor(), view, self._entry.start + first_row * self._row_bytes
        )

    def _run(self, start: int, stop: int) -> torch.Tensor:
        out = self._empty(stop - start)
        if stop > start:
            self._read(out, start)
        return self._tensor(out)

    def _gather(self, index: np.ndarray) -> torch.Tensor:
        """Rows in ``index``'s order: the distinct rows read in ascending runs, then placed."""
        rows, where = np.unique(index, return_inverse=True)
        out = self._empty(len(rows))
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for begin, end in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
            if end > begin:
                self._read(out[begin:end], int(rows[begin]))
        if len(rows) != len(index) or not np.array_equal(rows, index):
            out = out[where.reshape(-1)]
        return self._tensor(out)


class Rows:
    """Rows ``index`` of ``source`` (a FeatureStore or a tensor) as a sequence read on access:
    ``rows[batch]`` (a slice or index into ``index``, e.g. a shuffled order's batch) reads only
    those rows and puts them on ``device``. A training loop holds this, never the fold."""

    def __init__(self, source, index: np.ndarray, device: torch.device | str | None = None):
        self.source = source
        self.index = np.asarray(index, dtype=np.int64)
        self.device = device

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.source.shape[1:]))

    def __getitem__(self, batch) -> torch.Tensor:
        if torch.is_tensor(batch):
            batch = batch.detach().cpu().numpy()
        rows = self.source[self.index[batch]]
        return rows if self.device is None else rows.to(self.device)


def mean_power(source, batch: int | None = None) -> torch.Tensor:
    """Mean over rows and frames of ``exp(log-mel)`` ``[n_mels]`` (CPU), read ``batch`` rows at a
    time from anything sliceable (a tensor, a FeatureStore, Rows)."""
    total, count, batch = None, 0, batch or _SOURCE_BATCH
    for start in range(0, len(source), batch):
        rows = source[start : start + batch].cpu()
        part = rows.double().exp().sum(dim=(0, 2))
        total = part if total is None else total + part
        count += rows.shape[0] * rows.shape[2]
    if total is None:
        raise ValueError("no rows to average")
    return (total / count).float()


@contextmanager
def stream_tensors(
    path: str | os.PathLike,
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]],
    metadata: dict[str, str] | None = None,
) -> Iterator[TensorWriter]:
    """Write a safetensors file at ``path`` piece by piece: the header from ``specs`` (name ->
    dtype, shape) first, then ``writer.write(name, rows)`` appends rows to a tensor. The file
    appears at ``path`` only when every tensor is complete and the block ends without error."""
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset, starts = 0, {}
    for name, (dtype, shape) in specs.items():
        dtype = np.dtype(dtype).newbyteorder("<")
        size = math.prod(shape) * dtype.itemsize
        header[name] = {
            "dtype": CODES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        starts[name] = (offset, size, dtype)
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % _ALIGN)
    with atomic_file(path) as handle:
        handle.write(len(encoded).to_bytes(8, "little") + encoded)
        writer = TensorWriter(Path(path), handle, 8 + len(encoded), starts)
        yield writer
        writer.check_complete()


class TensorWriter:
    def __init__(self, path: Path, handle, base: int, starts: dict):
        self.path, self._handle, self._base = path, handle, base
        self._starts = starts
        self._done = dict.fromkeys(starts, 0)

    def write(self, name: str, rows: np.ndarray | torch.Tensor) -> None:
        start, size, dtype = self._starts[name]
        if torch.is_tensor(rows):
            rows = rows.detach().cpu().numpy()
        data = np.ascontiguousarray(rows, dtype=dtype).reshape(-1).view(np.uint8)
        if self._done[name] + len(data) > size:
            raise ValueError(f"{self.path}: more data for {name!r} than its shape holds")
        self._handle.seek(self._base + start + self._done[name])
        self._handle.write(data)
        self._done[name] += len(data)

    def check_complete(self) -> None:
        for name, (_, size, _) in self._starts.items():
            if self._done[name] != size:
                raise ValueError(f"{self.path}: {name!r} got {self._done[name]} of {size} bytes")
