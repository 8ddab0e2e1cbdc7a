"""Long recordings and live input as bounded blocks of mono float32 at the model's rate.

``kwsops detect`` reads any length: a file is decoded a block at a time with soundfile and
resampled with soxr's streaming resampler (its state carries across blocks, so the output is
the whole file resampled, not blocks glued at seams), and raw 16-bit PCM from a pipe is handed
on as soon as it arrives. No step holds more than one block; :func:`file_blocks` and
:func:`pcm_blocks` never yield more than ``block_seconds`` of audio at a time (plus the
resampler's few-millisecond tail at the end).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from kwsops.audio.clip import AudioError, _libsndfile_message

BLOCK_SECONDS = 10.0  # a file's decode block: 640 KB of float32 at 16 kHz
PCM_RATE = 16_000  # what `kwsops detect -` reads: arecord -f S16_LE -r 16000 -c 1
PCM_READ_BYTES = 3_200  # 0.1 s of 16-bit PCM: a live word is seen within a read of its end


def file_blocks(
    path: str | os.PathLike, rate_out: int, block_seconds: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``rate_out``, each at most ``block_seconds`` long.

    Raises :class:`AudioError` (its reason one line) when the file cannot be read, also when
    that only shows part way through."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"a folder, not a recording: give the files in it ({path}/*.wav)")
    if not path.exists():
        raise AudioError("no such file")
    try:
        with sf.SoundFile(path, mode="r") as handle:
            rate, channels = handle.samplerate, handle.channels
            if rate <= 0 or channels <= 0:
                raise AudioError(f"unreadable: bad header ({rate} Hz, {channels} channels)")
            resampler = (
                None
                if rate == rate_out
                else soxr.ResampleStream(rate, rate_out, 1, dtype="float32", quality="HQ")
            )
            # read so that the resampled block stays within block_seconds at rate_out
            size = max(1, int(block_seconds * min(rate, rate_out)))
            seen = 0
            while len(block := handle.read(size, dtype="float32", always_2d=True)):
                seen += len(block)
                if not np.isfinite(block).all():
                    raise AudioError("unreadable: non-finite samples")
                mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0]
                mono = np.ascontiguousarray(mono)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono)
                if len(mono):
                    yield mono
            if not seen:
                raise AudioError("unreadable: no audio frames")
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield tail
    except sf.SoundFileError as exc:
        raise AudioError(f"unreadable: {_libsndfile_message(exc)}") from None
    except RuntimeError as exc:  # libsndfile errors part way through a file
        raise AudioError(f"unreadable: {_libsndfile_message(exc)}") from None
    except OSError as exc:
        raise AudioError(f"unreadable: {exc.strerror or exc}") from None


def pcm_blocks(fd: int, read_bytes: int = PCM_READ_BYTES) -> Iterator[np.ndarray]:
    """Raw little-endian 16-bit mono PCM from file descriptor ``fd`` as float32 blocks in
    [-1, 1), each yielded as soon as it is read (``os.read`` returns what has arrived, so a live
    pipe is never waited on for a full block), until the input closes. An odd trailing byte is
    kept for the next read."""
    odd = b""
    while data := os.read(fd, read_bytes):
        data = odd + data
        cut = len(data) - len(data) % 2
        odd = data[cut:]
        if cut:
            yield np.frombuffer(data[:cut], dtype="<i2").astype(np.float32) / 32768.0


def resampled(blocks: Iterator[np.ndarray], rate_in: int, rate_out: int) -> Iterator[np.ndarray]:
    """``blocks`` at ``rate_in`` as blocks at ``rate_out`` (soxr's streaming resampler)."""
    if rate_in == rate_out:
        yield from blocks
        return
    resampler = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="HQ")
    for block in blocks:
        if len(out := resampler.resample_chunk(block)):
            yield out
    if len(tail := resampler.resample_chunk(np.zeros(0, np.float32), last=True)):
        yield tail
