"""The model side of spotting, without `kwsops detect`: slide a revision's window over a long
synthetic stream of held-out voices and count hits and false alarms per hour.

    python benchmarks/window_stream.py --workspace DIR [--batch-size 32] [--minutes 15]
                                       [--hop 0.1]

The stream: eSpeak voices whose variants are not in the demo set (``HELD_OUT``), speaking
sentences none of which the demo says, near misses and, a quarter of the utterances, one of the
six words, with pauses, at levels from -20 to -3 dBFS over a -55 dBFS noise floor. The log-mel
is computed once over the stream and sliced per window; each window is scored by the fold
ensemble; consecutive firing windows (gaps up to 3 hops) are one detection, labelled by its
best window; a detection is a hit when a not yet found word of its label lies inside it.
Prints the lowest miss rate at most 1, 3, 5 and 10 false alarms per hour over a threshold
sweep, and the figures at the revision's operating point and at the default threshold.
`kwsops detect` (benchmarks/streams.py) is the product; this measures what training gives it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soxr
import torch

from kwsops.audio.demo_data import LANGUAGES, _mic, speaker_profiles
from kwsops.audio.espeak import VoiceSettings, get_engine
from kwsops.config import DEMO_LABELS, FeatureSettings
from kwsops.keywords import DEFAULT_THRESHOLD, is_word, read_operating_point
from kwsops.ml.features import frames_for, log_mel
from kwsops.ml.model import load_model
from kwsops.ml.spotting import poisson_interval
from kwsops.workspace import Workspace

RATE = 16_000
HELD_OUT = ("m2", "m4", "m6", "m8", "linda", "john", "paul", "max", "david", "aunty",
            "robert", "shelby", "norbert", "anika", "caleb", "ian")  # fmt: skip
SENTENCES = (
    "I was thinking we could paint the fence this weekend if it stays dry.",
    "The train to the city leaves every twenty minutes in the morning.",
    "My neighbour grows tomatoes and beans in her back yard.",
    "Could you pass me the salt and the bread, please?",
    "We watched an old film about sailors and a storm at sea.",
    "The shop on the high street closes early on Wednesdays.",
    "He spent the whole afternoon fixing the bicycle chain.",
    "There were hundreds of birds on the lake this morning.",
    "The teacher asked everyone to read the first chapter again.",
    "I need to buy new shoes before the trip next month.",
    "The coffee machine in the office has broken down again.",
    "She plays the piano every evening after work.",
    "Our cat sleeps on the windowsill in the afternoon sun.",
    "The roads were very quiet because of the holiday.",
    "They built a new school on the edge of the village.",
    "Remember to water the plants while I am away.",
    "The museum has a large collection of old maps.",
    "We ordered pizza and watched the football match.",
    "The wind blew the leaves across the garden path.",
    "He called his sister to wish her a happy birthday.",
    "The lecture was interesting but far too long.",
    "Let us meet at the station at half past six.",
    "The baby finally fell asleep after her bath.",
    "A lorry was parked across the entrance to the car park.",
)
NEAR = ("cash", "gum", "indie", "lime", "relay", "rack", "match", "gone", "lake", "wok",
        "catalogue", "gunner", "indicate", "likely", "relative", "rocky")  # fmt: skip
MERGE_HOPS = 3


def speak(text: str, speaker, voice: str, rng: np.random.Generator) -> np.ndarray:
    settings = VoiceSettings(
        voice,
        int(np.clip(speaker.rate * rng.uniform(0.9, 1.1), 80, 450)),
        int(np.clip(speaker.pitch + rng.integers(-6, 7), 0, 100)),
        int(speaker.pitch_range),
        100,
    )
    audio, native = get_engine().synthesize(text, settings, False, seed=int(rng.integers(2**31)))
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    audio = audio[voiced[0] : voiced[-1] + 1] if voiced.size else audio
    audio = soxr.resample(audio.astype(np.float64), native * speaker.vtlp, RATE)
    return _mic(audio, speaker, RATE, rng)


def build_stream(minutes: float, seed: int = 7) -> tuple[np.ndarray, list[tuple]]:
    """(samples, [(start_s, end_s, word)]) of a stream of held-out voices."""
    rng = np.random.default_rng(seed)
    speakers = speaker_profiles(len(HELD_OUT), seed=seed + 100)
    parts, words, at = [], [], 0
    while at < minutes * 60 * RATE:
        k = int(rng.integers(len(speakers)))
        voice = f"{LANGUAGES[k % len(LANGUAGES)]}+{HELD_OUT[k]}"
        draw = rng.random()
        label = str(rng.choice(DEMO_LABELS)) if draw < 0.25 else None
        text = label or str(rng.choice(NEAR if draw < 0.4 else SENTENCES))
        audio = speak(text, speakers[k], voice, rng) * 10 ** (rng.uniform(-20, -3) / 20)
        gap = int(rng.uniform(0.3, 1.5) * RATE)
        parts.append(np.zeros(gap))
        at += gap
        if label:
            words.append((at / RATE, (at + len(audio)) / RATE, label))
        parts.append(audio)
        at += len(audio)
    stream = np.concatenate(parts)
    stream += np.random.default_rng(seed).standard_normal(len(stream)) * 10 ** (-55 / 20)
    return stream.astype(np.float32), words


def window_scores(stream, folder: Path, hop_s: float) -> tuple[np.ndarray, np.ndarray, list]:
    """(window start times, [windows, classes] ensemble probabilities, labels)."""
    paths = sorted(folder.glob("fold_*/model.safetensors"))
    loaded = [load_model(path) for path in paths]
    models, meta = [m for m, _ in loaded], loaded[0][1]
    features = FeatureSettings(**meta["features"])
    window = frames_for(round(2.6 * features.sample_rate), features)
    mel = log_mel(torch.from_numpy(stream), features)[0]
    step = round(hop_s * features.sample_rate / features.hop_length)
    starts = list(range(0, mel.shape[1] - window, step))
    probs = np.zeros((len(starts), len(meta["labels"])))
    with torch.inference_mode():
        for i in range(0, len(starts), 256):
            batch = torch.stack([mel[:, s : s + window] for s in starts[i : i + 256]])
            probs[i : i + len(batch)] = np.mean(
                [torch.softmax(model(batch), 1).numpy() for model in models], axis=0
            )
    times = np.array(starts) * features.hop_length / features.sample_rate
    return times, probs, meta["labels"]


def detections(times, best, score, labels, threshold: float) -> list[tuple]:
    fired, found, i = score >= threshold, [], 0
    while i < len(fired):
        if not fired[i]:
            i += 1
            continue
        j = last = i
        while j < len(fired) and (fired[j] or j - last <= MERGE_HOPS):
            last = j if fired[j] else last
            j += 1
        top = max(range(i, last + 1), key=lambda k: score[k] if fired[k] else -1.0)
        found.append((times[i], times[last] + 2.6, labels[best[top]]))
        i = last + 1
    return found


def figures(words, found, hours: float) -> tuple[float, int]:
    hit, alarms = set(), 0
    for start, end, label in found:
        match = [n for n, (ws, we, wl) in enumerate(words)
                 if wl == label and n not in hit and ws >= start - 0.2 and we <= end + 0.2]  # fmt: skip
        if match:
            hit.add(match[0])
        else:
            alarms += 1
    return 1.0 - len(hit) / len(words), alarms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--hop", type=float, default=0.1, help="window hop, seconds")
    args = parser.parse_args()
    folder = Workspace(args.workspace).batch_dir(args.batch_size)
    started = time.perf_counter()
    stream, words = build_stream(args.minutes)
    minutes = len(stream) / RATE / 60
    print(f"stream {minutes:.1f} min, {len(words)} words ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    times, probs, labels = window_scores(stream, folder, args.hop)
    print(f"{len(times)} windows scored ({time.perf_counter() - started:.0f} s)")
    columns = [i for i, name in enumerate(labels) if is_word(name)]
    best = np.array(columns)[probs[:, columns].argmax(axis=1)]
    score = probs[np.arange(len(probs)), best]
    hours = minutes / 60
    sweep = np.concatenate([np.linspace(0.3, 0.99, 70), [0.995, 0.998, 0.999]])
    rows = []
    for threshold in sweep:
        miss, alarms = figures(words, detections(times, best, score, labels, threshold), hours)
        rows.append((threshold, miss, alarms / hours))
    for budget in (1, 3, 5, 10):
        within = [row for row in rows if row[2] <= budget]
        if within:
            th, miss, rate = min(within, key=lambda row: row[1])
            print(f"at most {budget} FA/h: miss {miss:.1%} (threshold {th:.3f}, {rate:.1f}/h)")
    point = read_operating_point(folder)
    for name, threshold in (("operating point", point.threshold if point else None),
                            ("default", DEFAULT_THRESHOLD)):  # fmt: skip
        if threshold is None:
            continue
        miss, alarms = figures(words, detections(times, best, score, labels, threshold), hours)
        low, high = poisson_interval(alarms, hours)
        print(f"{name} {threshold:.3f}: miss {miss:.1%}, {alarms / hours:.1f} FA/h "
              f"(95 % CI {low:.1f}-{high:.1f}) over {minutes:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
