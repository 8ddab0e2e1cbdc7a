"""eSpeak NG speech synthesis through the shared library shipped in ``espeakng-loader``.

A thin ctypes binding of ``speak_lib.h``: no system eSpeak and no ffmpeg are needed.
The library keeps global state and is not thread-safe: each process uses one engine
(``get_engine()``) and speaks one utterance at a time under a lock.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NATIVE_SAMPLE_RATE = 22_050

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_EE_OK = 0


class ESpeakError(RuntimeError):
    """eSpeak NG could not be loaded or refused a request."""


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_void_p),  # a union of int / const char* / char[8]: 8 bytes
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class VoiceSettings:
    """Everything that shapes one utterance; eSpeak's own units."""

    voice: str = "en"  # language voice, optionally "+variant", e.g. "en-us+f2"
    rate: int = 175  # words per minute, 80..450
    pitch: int = 50  # base pitch 0..100
    pitch_range: int = 50  # 0 monotone .. 100
    volume: int = 100  # 0..200
    word_gap: int = 0  # extra pause between words, 10 ms units


def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise ESpeakError(
            "eSpeak NG is not installed: pip install espeakng-loader (it ships the library)"
        ) from exc
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class ESpeak:
    """eSpeak NG in synchronous (retrieval) mode, one utterance at a time.

    eSpeak keeps static state between utterances that ``espeak_Initialize`` does not reset
    (the same text came out a few samples different after other speech), so every utterance
    runs in a freshly loaded copy of the library: dlopen, initialise, speak, terminate,
    dlclose. That costs about 5 ms and makes equal arguments give equal samples.
    """

    _lock = threading.Lock()  # the library is process-global and not thread-safe

    def __init__(self, library_path: str | None = None, data_path: str | None = None) -> None:
        if library_path is None or data_path is None:
            default_lib, default_data = _default_paths()
            library_path = library_path or default_lib
            data_path = data_path or default_data
        self.library_path = str(library_path)
        self.data_path = Path(data_path)
        if not (self.data_path / "phontab").is_file():
            raise ESpeakError(f"eSpeak NG data folder {self.data_path} has no phontab")
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._on_audio)  # must outlive every library copy
        with self._lock:
            lib, rate = self._open()
            self._close(lib)
        self.sample_rate = rate

    def _open(self) -> tuple[ctypes.CDLL, int]:
        try:
            lib = ctypes.CDLL(self.library_path, mode=os.RTLD_LOCAL)
        except OSError as exc:
            raise ESpeakError(f"cannot load eSpeak NG library {self.library_path}: {exc}") from exc
        _declare(lib)
        # espeak_Initialize wants the folder that *contains* espeak-ng-data
        folder = str(self.data_path.parent).encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, folder, _DONT_EXIT)
        if rate <= 0:
            self._close(lib)
            raise ESpeakError(f"espeak_Initialize failed with data at {self.data_path}")
        lib.espeak_SetSynthCallback(self._callback)
        return lib, int(rate)

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        dlclose = getattr(_ctypes, "dlclose", None)
        if dlclose is not None:
            dlclose(lib._handle)

    def _on_audio(self, wav: ctypes.Array, count: int, _events: ctypes.Array) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def variants(self) -> list[str]:
        """Names usable after "+" in a voice, e.g. "f2", "croak" (files in voices/!v)."""
        folder = self.data_path / "voices" / "!v"
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def synthesize(
        self,
        text: str,
        settings: VoiceSettings = VoiceSettings(),
        ssml: bool = False,
        seed: int = 0,
    ) -> tuple[np.ndarray, int]:
        """Speak ``text``; return float32 mono samples in [-1, 1] and the sample rate.

        ``seed`` feeds eSpeak's noise generator (breath, whisper voices).
        """
        data = text.encode("utf-8") + b"\0"
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        with self._lock:
            lib, rate = self._open()
            self._chunks = []
            try:
                lib.espeak_ng_SetRandSeed(int(seed))
                _check(lib.espeak_SetVoiceByName(settings.voice.encode()), settings.voice)
                for param, value in (
                    (_RATE, settings.rate),
                    (_PITCH, settings.pitch),
                    (_RANGE, settings.pitch_range),
                    (_VOLUME, settings.volume),
                    (_WORDGAP, settings.word_gap),
                ):
                    _check(lib.espeak_SetParameter(param, int(value), 0), f"parameter {param}")
                result = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
                _check(result, f"text {text!r}")
                pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            finally:
                self._chunks = []
                self._close(lib)
        return pcm.astype(np.float32) / 32768.0, rate


def _check(result: int, what: str) -> None:
    if result != _EE_OK:
        raise ESpeakError(f"eSpeak NG refused {what} (error {result})")


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_uint = ctypes.c_int, ctypes.c_uint
    lib.espeak_Initialize.argtypes = [c_int, c_int, ctypes.c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = c_int
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_SetParameter.restype = c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        c_uint,
        c_int,
        c_uint,
        c_uint,
        ctypes.POINTER(c_uint),
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = c_int


_ENGINE: ESpeak | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> ESpeak:
    """The process's one eSpeak NG engine, initialised on first use."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = ESpeak()
        return _ENGINE


def synthesize(
    text: str,
    voice: str = "en",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    volume: int = 100,
    word_gap: int = 0,
    ssml: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with the process's engine: (float32 mono samples, sample rate)."""
    settings = VoiceSettings(voice, rate, pitch, pitch_range, volume, word_gap)
    return get_engine().synthesize(text, settings, ssml=ssml, seed=seed)
