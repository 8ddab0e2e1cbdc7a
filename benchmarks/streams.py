"""Benchmark `kwsops detect` as a keyword spotter: misses and false alarms per hour in long
recordings the models never heard, and its speed and memory against real time.

    .venv/bin/python benchmarks/streams.py --workspace WS [--minutes 60] [--revision REV]

The recording is built here: eSpeak NG voices the demo set never uses (its languages with
variants outside ``kwsops.audio.demo_data.VARIANTS``) read ordinary sentences and sentences full
of near misses of the six words ("cat", "gum", "relay", "rack" ...), with a command word now and
then (synthesised alone and spliced in, so its span is known exactly), over changing background
noise, with stretches of noise alone. It is one file (FLAC, 16 kHz) of ``--minutes``, written a
block at a time, so a one-hour recording also measures detect's memory.

The real command runs on it: once with a low ``--threshold`` and ``--json``; the threshold sweep
over those detections (each kept when its probability reaches the threshold) gives the trade-off
and the thresholds for 1 and 5 false alarms an hour; then detect runs again at each of those
thresholds and at the default (the revision's operating point), and those runs give the printed
figures. A detection matches a word when its label is right and its span overlaps the word's;
each word is matched once; every other detection is a false alarm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
import soxr
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import PeakMemory  # noqa: E402

from kwsops.audio.demo_data import LANGUAGES  # noqa: E402
from kwsops.audio.espeak import VoiceSettings, get_engine  # noqa: E402
from kwsops.config import DEMO_LABELS  # noqa: E402

RATE = 16_000
# eSpeak variants the demo never speaks with (it cycles through VARIANTS)
HELD_OUT = ("m2", "m4", "m6", "m8", "klatt3", "klatt5", "linda", "max", "adam", "ian", "john",
            "aunty", "quincy", "travis", "zac", "Alicia", "Lee", "Reed", "norbert", "paul")  # fmt: skip
SENTENCES = (
    "The weather report says it will rain in the afternoon, so bring a coat.",
    "I think the train leaves at a quarter past seven from platform two.",
    "Could you send me the figures before the meeting tomorrow morning?",
    "She planted tomatoes and beans along the fence behind the house.",
    "Nobody remembered where the spare keys to the garage were kept.",
    "We should probably order more paper for the printer downstairs.",
    "The museum opens at ten and closes early on Sundays.",
    "He spent the whole weekend painting the kitchen a pale yellow.",
    "Turn the volume down a little, the neighbours are sleeping.",
    "My brother moved to the coast last year and loves the quiet.",
    "The recipe needs two eggs, a cup of flour and some butter.",
    "Please remember to water the plants while I am away.",
    "The children built a small boat out of cardboard and tape.",
    "Traffic on the bridge was slow because of the roadworks.",
    "They found an old map in the attic under a pile of blankets.",
    "Let me check the calendar and get back to you this evening.",
    "The library has a new section for science fiction novels.",
    "Our flight was delayed by two hours because of fog.",
    "It is hard to concentrate when the phone keeps ringing.",
    "The market on the square sells fresh bread every morning.",
)
# near misses of catch, gun, index, like, relax, rock (none of them is the word itself: a
# sentence that says "index" or "like" would count the spotter's right answer a false alarm)
NEAR_MISSES = (
    "The cat sat on the mat and watched the match with a cache of snacks.",
    "He chewed gum, then was gone before the show had begun.",
    "Indeed, the indent in the page was indicated in red ink.",
    "I lick the spoon and hike around the lake on my bike.",
    "The relay team was relaxed, then relayed the reflex test results.",
    "Put the rack by the rook, then lock the sock drawer and knock twice.",
    "A catchy tune, some cash and a cat called Scratch.",
    "The gunner's son got a bun and some fun at the gum stand.",
    "Indexes and indices: the indexer indented the inks in red.",
    "Likely alike, he liked the bike and the lake was as still as glass.",
    "Relaxing and relaxed, she relaxes on the relay of the lax lad.",
    "Rocky rocks and a rocket rocked the rocking chair on the dock.",
)
NOISES = ("white", "pink", "babble", "hum")


@dataclass(frozen=True)
class Word:
    label: str
    start: float
    end: float


def _voice(rng: np.random.Generator) -> VoiceSettings:
    voice = f"{rng.choice(LANGUAGES)}+{rng.choice(HELD_OUT)}"
    return VoiceSettings(voice, int(rng.integers(130, 210)), int(rng.integers(20, 80)),
                         int(rng.integers(20, 90)), 100)  # fmt: skip


def _speak(text: str, voice: VoiceSettings, rng: np.random.Generator) -> np.ndarray:
    audio, native = get_engine().synthesize(text, voice, seed=int(rng.integers(2**31)))
    voiced = np.flatnonzero(np.abs(audio) > 1e-3)
    audio = audio[voiced[0] : voiced[-1] + 1] if voiced.size else audio
    tract = rng.uniform(0.9, 1.12)  # vocal tract length: formants and tempo
    out = soxr.resample(audio.astype(np.float64), native * tract, RATE)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)  # unit RMS


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(noise) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0))
        noise = np.fft.irfft(spectrum, n)
    elif kind == "babble":  # speech-band noise with a syllable-rate envelope
        from scipy import signal

        sos = signal.butter(2, [300, 3000], "bandpass", fs=RATE, output="sos")
        t = np.arange(n) / RATE
        noise = signal.sosfilt(sos, noise) * (1 + 0.8 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    elif kind == "hum":
        t = np.arange(n) / RATE
        mains = rng.choice([50, 60])
        noise = 0.2 * noise + sum(np.sin(2 * np.pi * k * mains * t) / k for k in range(1, 5))
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def build_recording(path: Path, minutes: float, seed: int, said: list[dict] | None = None
                    ) -> list[Word]:  # fmt: skip
    """Write the recording to ``path`` a minute at a time; the words said in it. ``said`` gets
    every utterance (kind, text, start, end, the background and its SNR; a word's own audio as
    spliced in) for benchmarks/stream_words.py."""
    rng = np.random.default_rng(seed)
    words: list[Word] = []
    total = round(minutes * 60 * RATE)
    written = 0
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        while written < total:
            # a minute: one speaker, one background
            voice, kind = _voice(rng), str(rng.choice(NOISES))
            level = 10 ** (rng.uniform(-26, -12) / 20)  # speech RMS
            snr = rng.uniform(10, 30)
            pieces, at = [], 0
            while at < 60 * RATE:
                at += round(rng.uniform(0.15, 0.9) * RATE)  # a pause
                roll = rng.random()
                if roll < 0.1:  # noise alone
                    at += round(rng.uniform(1, 5) * RATE)
                    continue
                if roll < 0.32:  # a command word, alone
                    label = str(rng.choice(DEMO_LABELS))
                    form = str(rng.choice(["{}", "{}!", "{}.", "{}?"]))
                    speech = _speak(form.format(label), voice, rng)
                    start = written + at
                    words.append(Word(label, start / RATE, (start + len(speech)) / RATE))
                else:
                    pool = NEAR_MISSES if rng.random() < 0.4 else SENTENCES
                    label = str(rng.choice(pool))
                    speech = _speak(label, voice, rng)
                speech = speech * level * 10 ** (rng.uniform(-4, 4) / 20)
                pieces.append((at, speech))
                if said is not None:
                    word = roll < 0.32
                    said.append({"kind": "word" if word else "near miss" if pool is NEAR_MISSES
                                 else "sentence", "text": label, "start": (written + at) / RATE,
                                 "end": (written + at + len(speech)) / RATE, "noise": kind,
                                 "snr_db": snr, "voice": voice.voice,
                                 "audio": speech if word else None})  # fmt: skip
                at += len(speech)
            block = _noise(kind, at, rng) * level * 10 ** (-snr / 20)
            for offset, speech in pieces:
                block[offset : offset + len(speech)] += speech
            block = block[: total - written]
            out.write(np.clip(block, -1, 1).astype(np.float32))
            written += len(block)
    return [w for w in words if w.end * RATE <= total]


def recording_of(folder: Path, minutes: float, seed: int) -> tuple[Path, list[Word]]:
    """The recording of ``minutes`` and ``seed`` in ``folder`` and its words: built there, or
    the one built before (``--keep``)."""
    recording = folder / f"stream-{seed}-{minutes:g}min.flac"
    truth_file = recording.with_suffix(".truth.json")
    if truth_file.is_file() and recording.is_file():
        return recording, [Word(**w) for w in json.loads(truth_file.read_text())]
    words = build_recording(recording, minutes, seed)
    truth_file.write_text(json.dumps([asdict(w) for w in words]))
    return recording, words


def run_detect(workspace: Path, recording: Path, revision: str | None,
               threshold: float | None) -> tuple[list[dict], float, float, int, float]:  # fmt: skip
    """(detections, wall seconds, CPU seconds, peak RSS bytes, threshold used) of one
    `kwsops detect`."""
    command = [sys.executable, "-m", "kwsops.cli", "-C", str(workspace), "detect", "--json",
               str(recording)]  # fmt: skip
    command += ["--revision", revision] if revision else []
    command += ["--threshold", f"{threshold}"] if threshold is not None else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc, PeakMemory(proc.pid) as peak:  # fmt: skip
        out, err = proc.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"kwsops detect failed ({proc.returncode}): {err.strip()}")
    used = float(err.split("threshold ")[-1].split()[0])
    return [json.loads(line) for line in out.splitlines()], seconds, cpu, peak.peak, used


def score(detections: list[dict], words: list[Word], hours: float) -> tuple[float, float, int]:
    """(miss rate, false alarms per hour, false alarms): each word matched at most once."""
    matched: set[int] = set()
    false_alarms = 0
    ends = [w.end for w in words]
    for det in sorted(detections, key=lambda d: d["start"]):
        hit = None
        first = int(np.searchsorted(ends, det["start"], side="right"))
        for index in range(first, len(words)):
            word = words[index]
            if word.start >= det["end"]:
                break
            if index not in matched and word.label == det["label"] and word.end > det["start"]:
                hit = index
                break
        if hit is None:
            false_alarms += 1
        else:
            matched.add(hit)
    return 1 - len(matched) / max(1, len(words)), false_alarms / hours, false_alarms


def sweep(detections: list[dict], words: list[Word], hours: float) -> list[tuple]:
    """(threshold, miss rate, false alarms per hour) keeping detections at or above each
    threshold of a grid (every 0.005 and 400 quantiles of the probabilities), highest first."""
    probabilities = np.array([d["probability"] for d in detections] or [1.0])
    grid = np.concatenate([np.quantile(probabilities, np.linspace(0, 1, 401)),
                           np.arange(0.0, 1.0, 0.005)])  # fmt: skip
    rows = []
    for threshold in sorted(set(np.round(grid, 4).tolist()), reverse=True):
        kept = [d for d in detections if d["probability"] >= threshold]
        rows.append((threshold, *score(kept, words, hours)[:2]))
    return rows


def at_budget(rows: list[tuple], budget: float) -> float | None:
    """The lowest threshold of the sweep whose false alarms per hour stay within ``budget``."""
    within = [threshold for threshold, _, per_hour in rows if per_hour <= budget]
    return min(within) if within else None


def poisson_upper(count: int, hours: float) -> float:
    """95 % upper bound of a false-alarm rate from ``count`` seen in ``hours`` (chi-square)."""
    from scipy.stats import chi2

    return float(chi2.ppf(0.975, 2 * (count + 1)) / 2 / hours)


def live_latency(workspace: Path, recording: Path, revision: str | None, words: list[Word],
                 seconds: float, threshold: float | None = None) -> list[float]:  # fmt: skip
    """`kwsops detect -` fed the recording's first ``seconds`` as 16-bit PCM at real-time pace
    (0.1 s a write, as arecord delivers it): for each word it finds, the seconds from the end
    of the word being fed to its line arriving."""
    import threading

    audio, _ = sf.read(recording, frames=round(seconds * RATE), dtype="int16")
    command = [sys.executable, "-m", "kwsops.cli", "-C", str(workspace), "detect", "--json", "-"]
    command += ["--revision", revision] if revision else []
    command += ["--threshold", f"{threshold}"] if threshold is not None else []
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stderr.readline()  # "revision ..., threshold ...": the model is loaded
    started = time.monotonic()

    def feed() -> None:
        step = RATE // 10
        for index in range(0, len(audio), step):
            delay = started + index / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            proc.stdin.write(audio[index : index + step].astype("<i2").tobytes())
            proc.stdin.flush()
        proc.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    arrivals = []
    for line in proc.stdout:
        arrivals.append((time.monotonic() - started, json.loads(line)))
    proc.wait()
    writer.join()
    latencies = []
    for arrived, det in arrivals:
        for word in words:
            if word.label == det["label"] and word.start < det["end"] and word.end > det["start"]:
                latencies.append(arrived - word.end)
                break
    return latencies


def import_rss() -> int:
    """RSS of a process that only imports what detect imports (onnxruntime, numpy, soundfile,
    soxr, kwsops; no torch): the floor under detect's peak."""
    code = ("import psutil, onnxruntime, kwsops.cli.main, kwsops.cli.compare, "
            "kwsops.compare.detect, kwsops.compare.scorer, kwsops.compare.predict, "
            "kwsops.audio.stream; print(psutil.Process().memory_info().rss)")  # fmt: skip
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip


def recording_options(description: str) -> argparse.ArgumentParser:
    """The options of a benchmark over one recording: workspace, revision, the recording."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workspace", type=Path, required=True, help="a trained workspace")
    parser.add_argument("--revision", help="the revision to detect with (default: detect's)")
    parser.add_argument("--minutes", type=float, default=60.0, help="recording length")
    parser.add_argument("--seed", type=int, default=2207)
    parser.add_argument("--keep", type=Path, help="keep (or reuse) the recording here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser


def main() -> None:
    parser = recording_options(__doc__.splitlines()[0])
    parser.add_argument("--low", type=float, default=0.2, help="threshold of the sweep's run")
    parser.add_argument("--exact", choices=("all", "default"), default="all",
                        help="rerun detect at the swept thresholds and the default (all), or at "
                             "the default only (the budgets then come from the sweep alone)")  # fmt: skip
    parser.add_argument("--live", type=float, default=0.0, metavar="SECONDS",
                        help="also feed this much of the recording to `kwsops detect -` at "
                             "real-time pace and time each word's line")  # fmt: skip
    parser.add_argument("--live-threshold", type=float, metavar="P",
                        help="the live run's threshold (default: the revision's)")  # fmt: skip
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 110)
    with tempfile.TemporaryDirectory(prefix="kwsops-streams-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with console.status("building the recording"):
            started = time.perf_counter()
            recording, words = recording_of(folder, args.minutes, args.seed)
        hours = sf.info(recording).duration / 3600
        console.print(f"recording: {hours * 60:.1f} min, {len(words)} words, held-out eSpeak "
                      f"voices, built in {time.perf_counter() - started:.0f} s")  # fmt: skip
        # detect's first use of a revision builds its ONNX scorer (a child process with torch):
        # done here on a second of audio, so the timed runs below measure detect itself
        first = folder / "first-use.wav"
        sf.write(first, np.zeros(RATE, np.float32), RATE)
        _, first_seconds, first_cpu, first_peak, _ = run_detect(args.workspace, first,
                                                                args.revision, None)  # fmt: skip
        console.print(f"first use (builds the ONNX scorer unless cached): {first_seconds:.1f} s, "
                      f"{first_cpu:.1f} CPU s, peak RSS {first_peak / 2**20:.0f} MiB (the "
                      "process tree)")  # fmt: skip
        with console.status(f"kwsops detect --threshold {args.low}"):
            low, low_seconds, low_cpu, low_peak, _ = run_detect(args.workspace, recording, args.revision,
                                                       args.low)  # fmt: skip
        rows = sweep(low, words, hours)
        runs = [("default (operating point)", None)]
        for budget in (1.0, 5.0) if args.exact == "all" else ():
            threshold = at_budget(rows, budget)
            if threshold is not None:
                runs.append((f"<= {budget:g} false alarm/h (swept)", threshold))
        latencies = []
        if args.live > 0:
            with console.status(f"kwsops detect - (live, {args.live:g} s)"):
                latencies = live_latency(args.workspace, recording, args.revision, words,
                                         args.live, args.live_threshold)  # fmt: skip
        results = []
        for name, threshold in runs:
            with console.status(f"kwsops detect: {name}"):
                found, seconds, cpu, peak, used = run_detect(args.workspace, recording,
                                                        args.revision, threshold)  # fmt: skip
            miss, per_hour, count = score(found, words, hours)
            results.append((name, used, miss, per_hour, count, seconds, cpu, peak))
    audio_seconds = hours * 3600
    table = Table(title=f"kwsops detect on {hours * 60:.0f} min of held-out speech, "
                        f"{len(words)} words, {psutil.cpu_count()} CPUs")  # fmt: skip
    for column in ("run", "threshold", "miss rate", "false alarms/h (95% upper)", "seconds",
                   "x real time", "CPU s", "x real time per CPU", "peak RSS (MiB)"):  # fmt: skip
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, used, miss, per_hour, count, seconds, cpu, peak in results:
        table.add_row(name, f"{used:.3f}", f"{miss:.1%}",
                      f"{per_hour:.1f} ({poisson_upper(count, hours):.1f})", f"{seconds:.1f}",
                      f"{audio_seconds / seconds:.0f}", f"{cpu:.1f}", f"{audio_seconds / cpu:.0f}",
                      f"{peak / 2**20:.0f}")  # fmt: skip
    table.add_row(f"sweep run (--threshold {args.low})", f"{args.low:.3f}",
                  f"{score(low, words, hours)[0]:.1%}", f"{score(low, words, hours)[1]:.1f}",
                  f"{low_seconds:.1f}", f"{audio_seconds / low_seconds:.0f}", f"{low_cpu:.1f}",
                  f"{audio_seconds / low_cpu:.0f}", f"{low_peak / 2**20:.0f}")  # fmt: skip
    console.print(table)
    for budget in (1.0, 5.0):
        threshold = at_budget(rows, budget)
        if threshold is None:
            console.print(f"sweep: no threshold keeps false alarms within {budget:g} an hour")
            continue
        _, miss, per_hour = next(row for row in rows if row[0] == threshold)
        console.print(f"sweep of the --threshold {args.low} run: <= {budget:g} false alarm/h at "
                      f"threshold {threshold:.3f}: miss rate {miss:.1%} ({per_hour:.1f}/h)")  # fmt: skip
    console.print(f"a process that only imports detect's modules: {import_rss() / 2**20:.0f} MiB "
                  "RSS; CPU s is the command's user + system time")  # fmt: skip
    if latencies:
        console.print(f"live (`kwsops detect -` at real-time pace): {len(latencies)} words "
                      f"answered, after the word's end: median {np.median(latencies):.2f} s, "
                      f"max {max(latencies):.2f} s")  # fmt: skip
    console.print(f"load average at the end: {psutil.getloadavg()[0]:.1f} (other work shares "
                  f"the CPUs); detect's threads: {os.environ.get('KWSOPS_TORCH_THREADS', '1')}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "minutes": hours * 60, "words": len(words),
            "runs": [dict(zip(("run", "threshold", "miss_rate", "false_alarms_per_hour",
                               "false_alarms", "seconds", "cpu_seconds", "peak_rss"), r,
                              strict=True))
                     for r in results],
            "sweep": [{"threshold": t, "miss_rate": m, "false_alarms_per_hour": f}
                      for t, m, f in rows[:: max(1, len(rows) // 200)]],
            "x_real_time": [audio_seconds / r[5] for r in results],
            "x_real_time_per_cpu": [audio_seconds / r[6] for r in results],
            "import_rss": import_rss(),
            "first_use": {"seconds": first_seconds, "cpu_seconds": first_cpu,
                          "peak_rss": first_peak},
            "live_latency": latencies,
        }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
