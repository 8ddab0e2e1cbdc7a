"""The classes beside the words: ``_unknown_`` speech and ``_silence_`` from where files sit,
long unknown recordings cut into clips, silence from noise recordings and generated noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from kwsops.audio.layout import plan_layout
from kwsops.audio.manifest import read_manifest
from kwsops.audio.preprocess import preprocess
from kwsops.config import AudioSettings, LayoutSettings
from kwsops.keywords import SILENCE, UNKNOWN
from kwsops.pipeline.preprocess import NO_UNKNOWN, summary_line
from tests.audio.test_preprocess import recording


def placed(rel_paths: list[str], **settings) -> dict[str, tuple]:
    layout = plan_layout(rel_paths, LayoutSettings(**settings))
    return {rel: (p.kind, p.label, p.speaker, p.folder) for rel, p in layout.places.items()}


def test_unknown_folder_in_any_layout_is_unknown_speech_with_speakers() -> None:
    found = placed(
        [
            "catch/a__1.wav",
            "gun/b__1.wav",
            "_unknown_/a__hello.wav",
            "_Unknown_/sentences/deep/b__story.flac",
            "ML/_unknown_/c__x.wav",
            "_other_/d__x.wav",
        ]
    )
    assert found["_unknown_/a__hello.wav"] == ("recording", UNKNOWN, "a", "_unknown_")
    assert found["_Unknown_/sentences/deep/b__story.flac"][:3] == ("recording", UNKNOWN, "b")
    assert found["ML/_unknown_/c__x.wav"][:3] == ("recording", UNKNOWN, "c")
    assert found["_other_/d__x.wav"][1] is None  # any other _folder_ is still not a label
    assert found["catch/a__1.wav"][1] == "catch"


def test_unlisted_folders_are_unknown_words_only_when_asked() -> None:
    rel = ["catch/a__1.wav", "gun/a__1.wav", "bed/b__1.wav", "bird/deep/c__2.wav"]
    listed = placed(rel, labels=("catch", "gun"), unknown_words=True)
    assert listed["bed/b__1.wav"][:3] == ("recording", UNKNOWN, "b")
    assert listed["bird/deep/c__2.wav"][:3] == ("recording", UNKNOWN, "c")
    assert listed["catch/a__1.wav"][1] == "catch"
    refused = placed(rel, labels=("catch", "gun"))  # unknown_words off: not a label, as before
    assert refused["bed/b__1.wav"][1] is None
    unlisted = placed(rel, unknown_words=True)  # without a list every folder is a label
    assert unlisted["bed/b__1.wav"][1] == "bed"


def _sentence(seconds: float, rate: int = 16000) -> np.ndarray:
    """Syllable-like bursts with short pauses, ``seconds`` long: speech to a level detector."""
    parts = []
    while sum(len(p) for p in parts) < seconds * rate:
        parts.append(recording(rate, seconds=0.3, lead=0.05, tail=0.1))
    return np.concatenate(parts)[: round(seconds * rate)]


def _inputs(root: Path, *, unknown: bool, noise: bool) -> None:
    for label in ("catch", "gun"):
        for n in range(4):
            path = root / label / f"s{n}__{label}_{n}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, recording(16000, seconds=0.4 + 0.05 * n), 16000)
    if unknown:
        (root / "_unknown_" / "talk").mkdir(parents=True)
        sf.write(root / "_unknown_/talk/s9__story.wav", _sentence(12.0), 16000)
        sf.write(root / "_unknown_/s8__word.wav", recording(16000, seconds=0.5), 16000)
    if noise:
        (root / "_background_noise_").mkdir()
        hiss = np.random.default_rng(1).standard_normal(16000 * 9) * 0.05
        sf.write(root / "_background_noise_/hiss.wav", hiss.astype(np.float32), 16000)


def test_a_long_unknown_recording_is_cut_into_clip_length_pieces(tmp_path: Path) -> None:
    _inputs(tmp_path / "in", unknown=True, noise=True)
    summary = preprocess(tmp_path / "in", tmp_path / "out", workers=1)
    rows = read_manifest(tmp_path / "out/manifest.csv")
    story = [r for r in rows if r.source == "_unknown_/talk/s9__story.wav"]
    # 12 s at 2.6 s a clip: four whole pieces and a last piece over a quarter of a clip
    assert len(story) == 5 and {r.status for r in story} == {"kept"}
    assert {r.label for r in story} == {UNKNOWN} and {r.speaker for r in story} == {"s9"}
    assert len({r.output for r in story}) == 5
    for row in story:
        assert sf.info(tmp_path / "out" / row.output).frames == AudioSettings().clip_samples
    assert summary.kept_per_label[UNKNOWN] == 6  # and the short one, a clip as words are
    # silence: the recorded noise's pieces (9 s: 3) and as many generated as the median word
    noise_pieces = [r for r in rows if r.label == SILENCE and r.source.endswith("hiss.wav")]
    generated = [r for r in rows if r.label == SILENCE and "generated" in r.source]
    assert len(noise_pieces) == 3 and len(generated) == 4
    assert summary.kept_per_label[SILENCE] == 7
    assert "unknown-speech clips" in summary_line(summary)


def test_without_unknown_speech_silence_is_generated_and_the_run_says_so(tmp_path: Path) -> None:
    _inputs(tmp_path / "in", unknown=False, noise=False)
    summary = preprocess(tmp_path / "in", tmp_path / "out", workers=1)
    assert summary.kept_per_label == {SILENCE: 4, "catch": 4, "gun": 4}
    line = summary_line(summary)
    assert line.count(NO_UNKNOWN) == 1 and line.startswith("12 kept, 0 rejected; 2 labels")
    levels = []
    for row in read_manifest(tmp_path / "out/manifest.csv"):
        if row.label == SILENCE:
            audio, _ = sf.read(tmp_path / "out" / row.output)
            levels.append(float(np.sqrt(np.mean(audio**2))))
    assert min(levels) > 0 and max(levels) / min(levels) > 3  # faint and loud noise
