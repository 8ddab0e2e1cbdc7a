"""Recording trees in the layouts the field uses, made of tone "recordings" (tests/helpers/
clips.py) that a tiny model learns in seconds: the original study's, Google Speech Commands',
mixed-case label folders with a custom speaker naming, and a tree with one label only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tests.helpers.clips import RATE, tone_clip

STUDY_LABELS = ("Catch", "Gun", "Index", "Like", "Relax", "Rock")
WORDS = ("left", "right", "stop")
SC_SPEAKERS = ("0a7c2a8d", "1b4c9b89", "2c6d1e3f", "3d8e4f50", "4e0f6a71", "5f2a8b92")
SC_TEST, SC_VALIDATION = "4e0f6a71", "5f2a8b92"  # the official lists' speakers
NOISE_SECONDS = (7.5, 4.0)


def _write(path: Path, audio: np.ndarray, **kwargs: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, RATE, **kwargs)


def original_study(root: Path, takes: int = 3, whatsapp: int = 2) -> dict[str, int]:
    """``ML/<Label>/<label>_<n>.wav`` and ``ML/Whatsapp/<Label>/PTT-<n>.ogg`` (Opus), no speaker
    in the names, plus a notes file in ML/. Returns clips per label."""
    for index, label in enumerate(STUDY_LABELS):
        for take in range(takes):
            _write(
                root / "ML" / label / f"{label.lower()}_{take:02d}.wav",
                tone_clip(index, take % 4, take),
            )
        for note in range(whatsapp):
            _write(
                root / "ML" / "Whatsapp" / label / f"PTT-2023010{note}-WA00{index}.ogg",
                tone_clip(index, 5, 10 + note),
                format="OGG",
                subtype="OPUS",
            )
    (root / "ML" / "notes.txt").write_text("recorded on phones, spring 2023\n")
    return {label: takes + whatsapp for label in STUDY_LABELS}


def speech_commands(root: Path, takes: int = 2) -> dict[str, list[str]]:
    """``<word>/<speaker>_nohash_<n>.wav``, ``_background_noise_/`` (two noise recordings and a
    README), ``testing_list.txt`` and ``validation_list.txt`` naming one speaker each, and a
    LICENSE. Returns the list files' entries."""
    lists: dict[str, list[str]] = {"testing_list.txt": [], "validation_list.txt": []}
    for index, word in enumerate(WORDS):
        for number, speaker in enumerate(SC_SPEAKERS):
            for take in range(takes):
                rel = f"{word}/{speaker}_nohash_{take}.wav"
                _write(root / rel, tone_clip(index, number, take))
                if speaker == SC_TEST:
                    lists["testing_list.txt"].append(rel)
                elif speaker == SC_VALIDATION:
                    lists["validation_list.txt"].append(rel)
    rng = np.random.default_rng(3)
    for name, seconds in zip(("running_tap.wav", "pink_noise.wav"), NOISE_SECONDS, strict=True):
        noise = 0.1 * rng.standard_normal(int(seconds * RATE)).astype(np.float32)
        _write(root / "_background_noise_" / name, noise)
    (root / "_background_noise_" / "README.md").write_text("long noise recordings\n")
    for name, entries in lists.items():
        (root / name).write_text("".join(f"{entry}\n" for entry in entries))
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return lists


def mixed_case(root: Path) -> dict[str, str]:
    """``Rock/``, ``rock/``, ``Whatsapp/ROCK/`` and ``Gun/``, ``gun/``, files named
    ``<speaker>-<n>.<ext>`` (a naming only a ``speaker_pattern`` reads). Returns source ->
    speaker."""
    speakers: dict[str, str] = {}
    folders = {"Rock": 0, "rock": 0, "Whatsapp/ROCK": 0, "Gun": 1, "gun": 1}
    for n, name in enumerate(("alice", "bob", "carol", "dave")):
        for folder, label in folders.items():
            rel = f"{folder}/{name}-{n}.wav"
            _write(root / rel, tone_clip(label, n, len(speakers)))
            speakers[rel] = name
    return speakers


def one_label(root: Path, clips: int = 8) -> None:
    """``catch/spk<k>__catch_<n>.wav`` only: nothing a model could tell apart."""
    for n in range(clips):
        _write(root / "catch" / f"spk{n % 4}__catch_{n}.wav", tone_clip(0, n % 4, n))
