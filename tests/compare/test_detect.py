"""`kwsops detect`: words found in a long stream at the right times, one detection per word,
window features equal to the clip's, blocks of bounded size, live input answered before it
closes, and predict's `_silence_`/`_unknown_` under the operating point."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kwsops import exitcodes
from kwsops.audio.clip import speech_bounds
from kwsops.audio.stream import file_blocks, pcm_blocks
from kwsops.cli.main import main
from kwsops.compare.detect import Detector, detect_blocks, window_features
from kwsops.compare.scorer import Scorer, load_scorer
from kwsops.config import FeatureSettings
from kwsops.keywords import SILENCE, UNKNOWN, OperatingPoint, write_operating_point
from kwsops.ml.features import log_mel
from kwsops.ml.model import read_model_meta
from kwsops.text import clean_text
from tests.helpers.trained import LABELS, Trained, fold_paths

RATE = 16_000
GAP_SECONDS = 4.0  # between inserted words: more than a window, so each is heard alone
# the words inserted: the tiny model scores its third label's own clips at 0.47 only, under
# any threshold that keeps it quiet on noise
WORDS = LABELS[:2]


def scorer_of(trained: Trained) -> Scorer:
    """The workspace models' ONNX scorer (built once, then read from the workspace's cache)."""
    return load_scorer(trained.ws.cache_dir, fold_paths(trained))


def torch_log_mel(audio: np.ndarray) -> np.ndarray:
    return log_mel(torch.from_numpy(np.ascontiguousarray(audio)), FeatureSettings()).numpy()


def word_of(path: Path) -> np.ndarray:
    """The word of a Preprocess output clip, without its padding."""
    clip, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    start, end = speech_bounds(clip, RATE, 30.0)
    return clip[start:end]


def synthetic_stream(trained: Trained, per_label: int = 3) -> tuple[np.ndarray, list[tuple]]:
    """Low noise (the clips' -70 dBFS bed) with words from data/output inserted every
    GAP_SECONDS: (audio, truth) with truth rows (label, start s, end s)."""
    rng = np.random.default_rng(7)
    pieces, truth, at = [], [], 1.0
    for round_ in range(per_label):
        for label in WORDS:
            clips = sorted((trained.ws.output_dir / label).glob("*.wav"))
            word = word_of(clips[round_ * 5 % len(clips)])
            truth.append((label, at, at + len(word) / RATE))
            pieces.append((round(at * RATE), word))
            at += len(word) / RATE + GAP_SECONDS
    audio = (rng.standard_normal(round((at + 1.0) * RATE)) * 3e-4).astype(np.float32)
    for start, word in pieces:
        audio[start : start + len(word)] += word
    return audio, truth


def matches(detections, truth) -> list[list]:
    """For each true word, the detections whose span overlaps it."""
    return [[d for d in detections if d.start < end and d.end > start] for _, start, end in truth]


def test_window_features_are_log_mel_of_each_window():
    settings = FeatureSettings()
    window, hop, count = 41_600, 3_200, 7
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((count - 1) * hop + window).astype(np.float32) * 0.1
    sliced = window_features(audio, count, window, hop, settings, torch_log_mel)
    for index in range(count):
        alone = torch_log_mel(audio[index * hop : index * hop + window])[0]
        np.testing.assert_allclose(sliced[index], alone, atol=1e-3, rtol=1e-4)
    # the edge frames differ from the stream's: without the recomputation this test fails
    whole = torch_log_mel(audio)[0]
    assert not np.allclose(whole[:, hop // 160], sliced[1, :, 0], atol=1e-3)


def test_the_detector_finds_each_inserted_word_once_at_its_time(trained):
    audio, truth = synthetic_stream(trained)
    ensemble = scorer_of(trained)
    blocks = (audio[i : i + RATE] for i in range(0, len(audio), RATE))
    detections = list(detect_blocks(ensemble, blocks, threshold=0.5))
    found = matches(detections, truth)
    for (label, start, end), hits in zip(truth, found, strict=True):
        assert len(hits) == 1, (label, start, end, detections)
        assert hits[0].label == label
        assert hits[0].start >= start - 0.3 and hits[0].end <= end + 0.3, (hits[0], start, end)
    assert len(detections) == len(truth), detections  # nothing fired on the noise between
    assert all(0.5 <= d.probability <= 1.0 for d in detections)


LONG_SECONDS = 30  # fifteen 2 s blocks: many more than one window holds, scored in seconds


def test_blocks_stay_bounded_on_a_long_stream(trained, tmp_path):
    long = tmp_path / "long.flac"
    rng = np.random.default_rng(1)
    with sf.SoundFile(long, "w", samplerate=44_100, channels=2, subtype="PCM_16") as handle:
        for _ in range(LONG_SECONDS):  # stereo 44.1 kHz, written a second at a time
            handle.write((rng.standard_normal((44_100, 2)) * 0.01).astype(np.float32))
    sizes = [len(block) for block in file_blocks(long, RATE, block_seconds=2.0)]
    assert max(sizes) <= 2 * RATE
    assert abs(sum(sizes) - LONG_SECONDS * RATE) <= 1
    detector = Detector(scorer_of(trained), threshold=0.5)
    held = []
    for block in file_blocks(long, RATE, block_seconds=2.0):
        detector.feed(block)
        held.append(len(detector.buffer))
    detector.finish()
    assert max(held) <= detector.window + 2 * RATE
    assert detector.windows_scored >= (LONG_SECONDS - 2.6) / 0.2


def test_raw_pcm_blocks_come_as_they_arrive():
    read_fd, write_fd = os.pipe()
    got = []
    with os.fdopen(write_fd, "wb", buffering=0) as writer:
        writer.write(b"\x00\x40" * 100 + b"\x00")  # 100 samples and half of one
        blocks = pcm_blocks(read_fd)
        got.append(next(blocks))  # given without waiting for the pipe to close
        writer.write(b"\xc0")
    got += list(blocks)
    os.close(read_fd)
    samples = np.concatenate(got)
    assert len(got[0]) == 100 and np.allclose(got[0], 0.5)
    assert len(samples) == 101 and samples[-1] == np.float32(-16384 / 32768)


def write_stream(trained: Trained, path: Path) -> list[tuple]:
    audio, truth = synthetic_stream(trained, per_label=1)
    sf.write(path, audio, RATE)
    return truth


def test_piped_output_is_tab_separated_lines_and_json_lines(trained, tmp_path, capsys):
    stream = tmp_path / "stream.wav"
    truth = write_stream(trained, stream)
    args = ["-C", str(trained.ws.root), "detect", "--revision", "workspace:batch_4"]
    assert main([*args, "--threshold", "0.5", str(stream)]) == exitcodes.OK
    captured = capsys.readouterr()
    assert "revision workspace:batch_4, threshold 0.500" in captured.err
    lines = captured.out.splitlines()
    assert len(lines) == len(truth)
    for line, (label, start, _) in zip(lines, truth, strict=True):
        name, begin, end, found, probability = line.split("\t")
        assert name == str(stream) and found == clean_text(label)
        assert abs(float(begin) - start) < 0.5 and float(begin) < float(end)
        assert begin == f"{float(begin):.2f}" and 0.5 <= float(probability) <= 1.0

    assert main([*args, "--threshold", "0.5", "--json", str(stream)]) == exitcodes.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == [label for label, _, _ in truth]
    assert set(rows[0]) == {"file", "start", "end", "label", "probability"}


def test_a_lower_threshold_gives_more_detections(trained, tmp_path, capsys):
    stream = tmp_path / "stream.wav"
    write_stream(trained, stream)
    outputs = []
    for threshold in ("0.99", "0.0"):
        main(["-C", str(trained.ws.root), "detect", "--threshold", threshold, str(stream)])
        outputs.append(capsys.readouterr().out.splitlines())
    assert len(outputs[0]) < len(outputs[1])


def test_a_hostile_label_or_file_name_stays_one_inert_line():
    from kwsops.cli.compare import detection_line
    from kwsops.compare.detect import Detection

    detection = Detection(1.234, 1.789, LABELS[2], 0.91234)
    line = detection_line("a\tb\nc.wav", detection, as_json=False)
    assert line.split("\t") == ["a b c.wav", "1.23", "1.79", clean_text(LABELS[2]), "0.912"]
    assert "\x1b" not in line and "\n" not in line
    row = json.loads(detection_line("a\tb\nc.wav", detection, as_json=True))
    assert row == {"file": "a\tb\nc.wav", "start": 1.23, "end": 1.79, "label": LABELS[2],
                   "probability": 0.9123}  # fmt: skip


def test_a_bad_file_gets_one_line_and_the_others_go_on(trained, tmp_path, capsys):
    stream = tmp_path / "stream.wav"
    truth = write_stream(trained, stream)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not audio at all" * 10)
    files = [str(broken), str(tmp_path / "missing.ogg"), str(stream)]
    code = main(["-C", str(trained.ws.root), "detect", "--threshold", "0.5", *files])
    assert code == exitcodes.TASK_FAILED
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == len(truth)
    errors = [line for line in captured.err.splitlines() if ": error: " in line]
    assert errors == [f"{broken}: error: unreadable: {errors[0].split('unreadable: ')[1]}",
                      f"{tmp_path / 'missing.ogg'}: error: no such file"]  # fmt: skip


def test_live_input_is_answered_before_it_closes(trained):
    audio, truth = synthetic_stream(trained, per_label=1)
    first_end = truth[0][2]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    sent = pcm[: round((first_end + 3.0) * RATE)]  # the first word and 3 s after it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "KWSOPS_TORCH_THREADS": "1"}
    command = [sys.executable, "-m", "kwsops.cli", "-C", str(trained.ws.root), "detect",
               "--threshold", "0.5", "-"]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        writer = threading.Thread(
            target=lambda: proc.stdin.write(sent.tobytes()) or proc.stdin.flush()
        )
        writer.start()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 300
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if selector.select(timeout=1.0):
                line += proc.stdout.read1(4096)
            assert proc.poll() is None, proc.stderr.read().decode()
        writer.join()
        assert proc.poll() is None  # the input is still open: the word was answered live
        name, start, _, label, _ = line.decode().splitlines()[0].split("\t")
        assert name == "-" and label == clean_text(truth[0][0])
        assert abs(float(start) - truth[0][1]) < 0.5
        proc.stdin.close()
        assert proc.wait(timeout=120) == exitcodes.OK


def test_predict_says_silence_or_unknown_under_the_operating_point(trained, tmp_path, capsys):
    copy = tmp_path / "ws"
    shutil.copytree(trained.ws.root, copy, symlinks=True)
    write_operating_point(
        copy / "data" / "models" / "batch_4", OperatingPoint(threshold=1.0, false_alarms_per_hour=1)
    )
    recording = sorted((copy / "data" / "input" / LABELS[0]).iterdir())[0]
    args = ["-C", str(copy), "predict", "--revision", "workspace:batch_4", str(recording)]
    # under a reachable threshold the word is named, with the best word's probability
    assert main([*args, "--threshold", "0"]) == exitcodes.OK
    word, best, _ = capsys.readouterr().out.split("  ", 2)
    assert word == LABELS[0], word
    # under the operating point 1.0 no word is named: _silence_ when the model scores silence
    # above unknown speech (a model without _unknown_ scores no unknown speech: the fixture's
    # models have _silence_ only), with the probability that no word was said
    assert main(args) == exitcodes.OK
    out = capsys.readouterr().out
    labels = read_model_meta(fold_paths(trained)[0])["labels"]
    assert SILENCE in labels and UNKNOWN not in labels, labels
    label, no_word, _ = out.split("  ", 2)
    assert label == SILENCE, out
    # predict pads with fresh low noise each time: near, not equal
    assert abs(float(no_word) - (1 - float(best))) <= 0.02, out


def events_of(rows: list[list[float]], threshold: float = 0.5) -> list:
    """Detections of a score sequence (one row per window, columns go, stop, _unknown_) over
    windows whose only sound is a burst in their last 0.5 s."""
    from kwsops.compare.detect import Events

    events = Events(["go", "stop", UNKNOWN], threshold, hop_seconds=0.2, window_seconds=2.6)
    energy = np.full(261, -10.0)
    energy[-60:-10] = 0.0  # a word in the window's last half second
    found = [d for i, row in enumerate(rows) for d in events.push(i, np.array(row), energy)]
    return found + events.flush()


def test_one_run_of_firing_windows_is_one_detection_even_with_a_dip():
    quiet, go = [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]
    dip = [0.45, 0.1, 0.45]
    found = events_of([quiet, [0.6, 0.1, 0.3], go, go, dip, go, go, quiet, quiet])
    assert [(d.label, round(d.end - d.start, 2)) for d in found] == [("go", 0.5)]
    # fires on window 2 (its average 0.75; window 1's was 0.35), printed one window later
    # with the higher average of the two
    assert found[0].probability == pytest.approx(0.9)
    # the span: the burst of the first firing window (window 1: 0.2 s to 2.8 s)
    assert found[0].start == pytest.approx(0.2 + 2.0, abs=0.02)
    assert found[0].end == pytest.approx(0.2 + 2.5, abs=0.02)


def test_unknown_speech_never_fires_and_a_later_word_fires_again():
    quiet, go, stop = [0.1, 0.1, 0.8], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]
    rows = [go, go, *[quiet] * 20, stop, stop, *[[0.3, 0.3, 0.4]] * 5]
    assert [d.label for d in events_of(rows)] == ["go", "stop"]
    assert events_of(rows, threshold=0.95) == []


def test_predict_names_silence_when_it_beats_unknown_speech():
    from kwsops.compare.predict import decide

    labels = ["go", SILENCE, "stop", UNKNOWN]
    assert decide(labels, np.array([0.7, 0.1, 0.1, 0.1]), 0.5) == ("go", pytest.approx(0.7))
    assert decide(labels, np.array([0.4, 0.35, 0.1, 0.15]), 0.5) == (SILENCE, pytest.approx(0.6))
    assert decide(labels, np.array([0.2, 0.1, 0.1, 0.6]), 0.1)[0] == UNKNOWN  # it wins
    assert decide(["go", "stop"], np.array([0.55, 0.45]), 0.6) == (UNKNOWN, pytest.approx(0.45))
    # a workspace without unknown speech: _silence_ but no _unknown_ class, so under the
    # threshold the answer is _silence_ (nothing scores unknown speech)
    no_unknown = [SILENCE, "go", "stop"]
    assert decide(no_unknown, np.array([0.1, 0.6, 0.3]), 1.0) == (SILENCE, pytest.approx(0.4))
    assert decide(no_unknown, np.array([0.1, 0.6, 0.3]), 0.5) == ("go", pytest.approx(0.6))


def test_a_word_winning_one_window_alone_never_fires():
    quiet, spike, go = [0.1, 0.1, 0.8], [0.99, 0.005, 0.005], [0.9, 0.05, 0.05]
    # the average of the spike and a quiet window reaches 0.545 for go, but go won one window
    assert events_of([quiet, spike, quiet, quiet]) == []
    assert [d.label for d in events_of([quiet, spike, go, quiet])] == ["go"]
