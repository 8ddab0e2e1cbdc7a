"""The demo data set: real eSpeak NG synthesis, real libsndfile encoders, a small set."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kwsops.audio.demo_data import (
    DemoSummary,
    generate_demo_data,
    plan_demo_files,
    render_demo_file,
    speaker_profiles,
)
from kwsops.audio.espeak import NATIVE_SAMPLE_RATE, ESpeak, ESpeakError, synthesize
from kwsops.config import AUDIO_EXTENSIONS, DEMO_LABELS, WHATSAPP_DIR
from kwsops.keywords import UNKNOWN

PER_LABEL, SPEAKERS = 12, 4
NAME = re.compile(r"^(spk\d{2})__([a-z\-]+)_(\d{3})\.(wav|flac|ogg|opus|mp3)$")
CLASSES = (*DEMO_LABELS, UNKNOWN)
UNKNOWN_FILES = 2 * PER_LABEL  # unknown speech: twice a word's recordings by default


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def label_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts
    return parts[1] if parts[0] == WHATSAPP_DIR else parts[0]


def speech_contrast_db(audio: np.ndarray, sr: int) -> float:
    """Loudest 0.3 s against the quietest 0.1 s: speech over the noise floor."""
    energy = np.concatenate([[0.0], np.cumsum(audio.mean(axis=1).astype(np.float64) ** 2)])

    def windows(seconds: float) -> np.ndarray:
        width = int(seconds * sr)
        return (energy[width:] - energy[:-width]) / width

    return float(10 * np.log10(windows(0.3).max() / max(windows(0.1).min(), 1e-20)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary, list]:
    root = tmp_path_factory.mktemp("demo") / "input"
    calls: list[tuple[int, int, str]] = []
    summary = generate_demo_data(
        root, per_label=PER_LABEL, speakers=SPEAKERS, workers=2,
        progress=lambda done, total, detail="": calls.append((done, total, detail)),
    )  # fmt: skip
    return root, summary, calls


def test_counts_names_and_speakers(demo: tuple[Path, DemoSummary, list]) -> None:
    root, summary, _ = demo
    files = files_in(root)
    total = PER_LABEL * len(DEMO_LABELS) + UNKNOWN_FILES
    assert len(files) == summary.total_files == summary.written == total
    assert summary.per_label == {
        **{label: PER_LABEL for label in DEMO_LABELS},
        UNKNOWN: UNKNOWN_FILES,
    }
    on_disk: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for path in files:
        match = NAME.match(path.name)
        assert match, path.name
        speaker, label, _index, _ext = match.groups()
        if label_of(path, root) == UNKNOWN:
            kinds[label] = kinds.get(label, 0) + 1
        else:
            assert label == label_of(path, root)
        on_disk[speaker] = on_disk.get(speaker, 0) + 1
    assert on_disk == summary.per_speaker
    assert kinds == {
        "word": UNKNOWN_FILES // 3,
        "near-miss": UNKNOWN_FILES // 3,
        "sentence": UNKNOWN_FILES // 3,
    }
    assert sorted(on_disk) == [f"spk{i:02d}" for i in range(1, SPEAKERS + 1)]
    assert sum(summary.per_format.values()) == summary.total_files


def test_container_mix(demo: tuple[Path, DemoSummary, list]) -> None:
    root, _, _ = demo
    infos = {path: sf.info(path) for path in files_in(root)}
    assert {path.suffix for path in infos} == set(AUDIO_EXTENSIONS)
    assert {(i.format, i.subtype) for i in infos.values()} >= {
        ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III"), ("FLAC", "PCM_16")
    }  # fmt: skip
    wavs = [i for i in infos.values() if i.format == "WAV"]
    assert len({i.samplerate for i in wavs}) >= 3
    assert len({i.subtype for i in wavs}) >= 3
    assert {i.channels for i in wavs} == {1, 2}
    for path, info in infos.items():
        if path.suffix == ".opus":
            assert info.subtype == "OPUS" and info.samplerate in (8000, 12000, 16000, 24000, 48000)
    whatsapp = [path for path in infos if path.relative_to(root).parts[0] == WHATSAPP_DIR]
    assert 1 <= len(whatsapp) <= len(infos) * 0.35
    assert all(infos[path].subtype == "OPUS" for path in whatsapp)
    assert {path.parent.name for path in whatsapp} <= set(CLASSES)


def test_every_file_decodes_with_speech_over_noise(demo: tuple[Path, DemoSummary, list]) -> None:
    root, _, _ = demo
    contrasts, durations = [], []
    for path in files_in(root):
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        assert np.isfinite(audio).all(), path
        peak_db = 20 * np.log10(np.abs(audio).max())
        assert -32 < peak_db < 0.5, (path, peak_db)
        durations.append(len(audio) / sr)
        contrasts.append(speech_contrast_db(audio, sr))
        assert contrasts[-1] > 6, (path, contrasts[-1])
    assert np.median(contrasts) > 15
    assert min(durations) > 0.3
    assert np.mean(np.array(durations) <= 2.6) >= 0.9


def test_progress_counts_up_to_total(demo: tuple[Path, DemoSummary, list]) -> None:
    _, summary, calls = demo
    done = [call[0] for call in calls]
    assert done == sorted(done) and calls[-1][:2] == (summary.total_files, summary.total_files)
    assert len(calls) == summary.total_files + 1  # the start, then one per file


def test_same_arguments_give_identical_bytes(demo: tuple[Path, DemoSummary, list], tmp_path: Path) -> None:  # fmt: skip
    root, _, _ = demo
    again = tmp_path / "again"
    generate_demo_data(again, per_label=PER_LABEL, speakers=SPEAKERS, workers=1)  # no pool
    first = {p.relative_to(root): p.read_bytes() for p in files_in(root)}
    second = {p.relative_to(again): p.read_bytes() for p in files_in(again)}
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_bytes_do_not_depend_on_the_clock_or_the_encoder_state() -> None:
    """libsndfile stamps float WAVs with the time and gives Ogg streams a random serial."""
    plan = plan_demo_files(per_label=12, speakers=4)
    float_wav = next(item for item in plan if item.subtype == "FLOAT")
    ogg = [next(item for item in plan if item.subtype == kind) for kind in ("VORBIS", "OPUS")]
    before = [render_demo_file(item) for item in (float_wav, *ogg)]
    time.sleep(1.1)
    assert [render_demo_file(item) for item in (float_wav, *ogg)] == before


def test_rerun_writes_only_missing_files(demo: tuple[Path, DemoSummary, list], tmp_path: Path) -> None:  # fmt: skip
    root, _, _ = demo
    folder = tmp_path / "input"
    generate_demo_data(folder, per_label=3, speakers=2, workers=1)
    files = files_in(folder)
    missing, user_file = files[0], folder / "catch" / "my_own.wav"
    missing.unlink()
    sf.write(user_file, np.zeros(1600, np.float32), 16000)
    leftover = missing.with_name(f".{missing.name}.tmp-abc123")  # a killed run's temp file
    leftover.write_bytes(b"half")
    foreign = folder / "catch" / ".notes.txt.tmp-keep"  # not ours: must stay
    foreign.write_bytes(b"user")
    stamps = {p: p.stat().st_mtime_ns for p in files[1:] + [user_file]}
    summary = generate_demo_data(folder, per_label=3, speakers=2, workers=2)
    assert (summary.written, summary.skipped) == (1, len(files) - 1)
    assert missing.exists() and not leftover.exists() and foreign.exists()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    again = generate_demo_data(folder, per_label=3, speakers=2, workers=2)
    assert (again.written, again.skipped) == (0, len(files))


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="per_label"):
        generate_demo_data(tmp_path, per_label=0)


def test_speakers_differ_from_each_other() -> None:
    import librosa

    profiles = speaker_profiles(16)
    assert len({p.voice for p in profiles}) == 16
    assert max(p.pitch for p in profiles) - min(p.pitch for p in profiles) > 40
    assert max(p.vtlp for p in profiles) / min(p.vtlp for p in profiles) > 1.2
    medians = []
    for profile in profiles[:4]:
        audio, sr = synthesize("rock", profile.voice, pitch=round(profile.pitch))
        f0 = librosa.yin(audio, fmin=60, fmax=450, sr=sr)
        medians.append(float(np.median(f0)))
    assert max(medians) / min(medians) > 1.5, medians


def test_espeak_is_deterministic_whatever_came_before() -> None:
    first, sr = synthesize("relax?", "en-us+f2", rate=160, pitch=60, seed=3)
    synthesize("catch!", "en+croak", rate=300, pitch=10, seed=9)
    second, _ = synthesize("relax?", "en-us+f2", rate=160, pitch=60, seed=3)
    other, _ = synthesize("relax?", "en-gb-x-rp+m3", rate=160, pitch=60, seed=3)
    assert sr == NATIVE_SAMPLE_RATE and first.dtype == np.float32
    assert 0.2 < len(first) / sr < 2.0 and np.abs(first).max() > 0.1
    assert np.array_equal(first, second)
    assert not np.array_equal(first[: len(other)], other[: len(first)])


def test_espeak_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ESpeakError, match="no phontab"):
        ESpeak(library_path="/nonexistent/libespeak-ng.so", data_path=str(tmp_path))
    import espeakng_loader

    with pytest.raises(ESpeakError, match="cannot load .*nonexistent"):
        ESpeak("/nonexistent/libespeak-ng.so", espeakng_loader.get_data_path())
    with pytest.raises(ESpeakError, match="no-such-voice"):
        synthesize("rock", "no-such-voice")
