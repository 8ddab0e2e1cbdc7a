"""The model card written beside an exported model (Markdown): what it recognises, the data it
learnt from, how well it does, and how to feed it with onnxruntime and soundfile alone.

The miss rate at the false-alarm budget is given out of fold (the operating point's, where the
threshold was chosen) and, when the comparison holds it (only with ``_unknown_``/``_silence_``
test clips), on the test clips; a figure that is missing reads "—".
tests/registry run the card's code.
"""

from __future__ import annotations

import json

from kwsops.compare.model import RevisionResult
from kwsops.compare.revisions import ResolvedRevision
from kwsops.keywords import is_word
from kwsops.text import escape_md
from kwsops.workspace import Workspace

MISSING = "—"
SNIPPET = '''import json

import numpy as np
import onnxruntime as ort
import soundfile as sf

MODEL = "{model}"
CLIP = "clip.wav"  # 16 kHz mono, the word trimmed of silence and padded, as in data/output

session = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
props = session.get_modelmeta().custom_metadata_map
labels = json.loads(props["labels"])
rate, samples = int(props["sample_rate"]), int(props["clip_samples"])
threshold = float(props["threshold"])

audio, sr = sf.read(CLIP, dtype="float32", always_2d=True)
if sr != rate:
    raise SystemExit(f"{{CLIP}}: resample to {{rate}} Hz first")
audio = audio.mean(axis=1)[:samples]  # mono, at most {seconds} s
audio = np.pad(audio, (0, samples - len(audio)))  # padded to {seconds} s
probabilities = session.run(None, {{"audio": audio[None, :]}})[0][0]
# as `kwsops predict`: a word only when it wins with at least the threshold; otherwise
# _silence_ when the model scores silence above unknown speech, else _unknown_, with the
# probability that no word was said
NON_WORDS = ("_unknown_", "_silence_")
words = [i for i, label in enumerate(labels) if label not in NON_WORDS]
best = max(words, key=lambda i: probabilities[i])
if int(probabilities.argmax()) == best and probabilities[best] >= threshold:
    label, probability, said = labels[best], probabilities[best], labels[best]
else:
    score = [probabilities[labels.index(x)] if x in labels else -1.0 for x in NON_WORDS]
    label = "_silence_" if score[1] > score[0] else "_unknown_"
    probability, said = 1.0 - probabilities[best], "nothing"
print(label, f"{{probability:.3f}}", said)
'''


def comparison_entry(ws: Workspace, specs: list[str]) -> RevisionResult | None:
    """The last comparison's entry of the revision known by any of ``specs``, if any."""
    from kwsops.compare.model import ReportError, load_comparison

    try:
        comparison = load_comparison(ws.comparison_report)
    except ReportError:
        return None
    return comparison.revision(specs) if comparison else None


def pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f} %"


def snippet(model_file: str, clip_seconds: str) -> str:
    return SNIPPET.format(model=model_file, seconds=clip_seconds)


def write_card(ws: Workspace, result, meta: dict,
               resolved: ResolvedRevision) -> str:  # fmt: skip
    """The card's Markdown for an :class:`kwsops.registry.export.ExportResult`."""
    labels = meta["labels"]
    words = [label for label in labels if is_word(label)]
    trained_on = meta.get("trained_on") or {}
    md = result.metadata
    entry = comparison_entry(ws, [resolved.spec, resolved.requested,
                                  f"workspace:{resolved.batch}" if resolved.batch else ""])  # fmt: skip
    accuracy = entry.ensemble_accuracy.mean if entry else None
    point = result.operating_point
    # out of fold, where the threshold was chosen; and on the test clips, when compared there
    miss, per_hour = (point.miss_rate, point.false_alarms_per_hour) if point else (None, None)
    budget = f" ({per_hour:g} false alarms per hour)" if per_hour is not None else ""
    tested = []
    if entry and entry.spotting and entry.miss_rate is not None:
        tested = [f"- miss rate on the test clips at the false-alarm budget "
                  f"({entry.spotting.budget:g} false alarms per hour): {pct(entry.miss_rate)}"]  # fmt: skip
    params = meta.get("params") or {}
    training = ", ".join(f"{k}={v}" for k, v in sorted(params.items())
                         if not isinstance(v, dict | list))  # fmt: skip
    lines = [
        f"# {escape_md(result.revision)}: keyword spotter",
        "",
        f"{escape_md(result.path.name)} ({result.format}) holds the log-mel front end and "
        f"{result.folds} fold models of revision {escape_md(md['revision'])}; it takes raw "
        "audio and returns the fold ensemble's class probabilities.",
        "",
        "## What it recognises",
        "",
        f"Words: {', '.join(escape_md(w, 80) for w in words) or MISSING}.",
        f"Classes, in output order: {', '.join(escape_md(x, 80) for x in labels)}.",
        f"A word counts as said when its probability reaches the operating threshold "
        f"{md['threshold']}.",
        "",
        "## Data",
        "",
        f"- trained on {trained_on.get('clips', MISSING)} clips from "
        f"{len(trained_on.get('speakers') or []) or 'unknown'} speakers "
        f"(clip list digest {escape_md(md['training_clips_sha256'][:16] or MISSING)})",
        f"- tested on {result.clips} held-out clips (data/spec_ds's test split)",
        f"- clips: {md['sample_rate']} Hz mono, {md['clip_seconds']} s, the word trimmed of silence, "
        "centred (data/output places it at a seeded random offset) and padded with low noise (data/output's layout: `data/output/<label>/<clip>.wav`)",
        "",
        "## Accuracy",
        "",
        f"- ensemble accuracy on the test clips: {pct(result.accuracy)} "
        f"(last comparison: {pct(accuracy)})",
        f"- miss rate at the false-alarm budget{budget}: {pct(miss)}"
        + (", out of fold (the training clips, where the threshold was chosen)" if point else ""),
        *tested,
        f"- exported file vs PyTorch: argmax equal on {result.argmax_agree} of {result.clips} "
        f"clips, largest probability difference {result.max_difference:.1e}",
        f"- latency per clip, one thread: {result.latency_ms:.1f} ms "
        f"(PyTorch: {result.torch_latency_ms:.1f} ms)",
        "",
        "| class | precision | recall | clips |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {escape_md(r['label'])} | {pct(r['precision'])} | {pct(r['recall'])} | "
          f"{r['clips']} |" for r in result.per_class),  # fmt: skip
        "",
        "## Parameters",
        "",
        f"- {result.parameters:,} weights in all ({result.folds} folds)".replace(",", " "),
        f"- architecture: {escape_md(json.dumps(meta.get('arch', {}), sort_keys=True), 400)}",
        f"- features: {escape_md(json.dumps(meta.get('features', {}), sort_keys=True), 400)}",
        f"- training: {escape_md(training, 400)}",
        f"- git commit: {escape_md(md['commit'] or MISSING)}",
        "",
        "## How to feed it",
        "",
        "Input `audio`: float32 `[batch, samples]` at the `sample_rate` of its metadata, "
        f"{md['clip_samples']} samples; output 0: probabilities `[batch, classes]`.",
        "",
        *(feeding_onnx(result) if result.format == "onnx" else feeding_torchscript(result)),
        "",
    ]
    return "\n".join(lines)


def feeding_onnx(result) -> list[str]:
    return [
        "With onnxruntime and soundfile only:",
        "",
        "```python",
        snippet(result.path.name, result.metadata["clip_seconds"]).rstrip(),
        "```",
    ]


def feeding_torchscript(result) -> list[str]:
    return [
        f"torch.jit.load(\"{escape_md(result.path.name)}\")(audio); the labels, threshold and "
        f"provenance are in {escape_md(result.path.with_suffix('.json').name)}.",
    ]
