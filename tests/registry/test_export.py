"""`kwsops export`: one ONNX file with the front end and the fold ensemble; the card's code,
run in a fresh interpreter that imports only onnxruntime, soundfile and numpy, agrees with
`kwsops predict`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import soundfile as sf
import torch

from kwsops.audio.clip import load_clip
from kwsops.cli.main import main
from kwsops.compare.model import load_comparison
from kwsops.compare.revisions import _fold_files
from kwsops.config import FeatureSettings
from kwsops.keywords import SILENCE, read_operating_point
from kwsops.ml.features import log_mel
from kwsops.ml.frontend import LogMel
from kwsops.ml.model import read_model_meta
from kwsops.text import clean_text
from kwsops.tracking.index import list_tasks
from tests.helpers.trained import LABELS, Trained

CODE = re.compile(r"```python\n(.*?)```", re.S)
# the card's snippet, for many clips: it must not import kwsops (checked in the child)
RUN_CARD = """
import sys
{code}
assert not [m for m in sys.modules if m.split(".")[0] in ("kwsops", "torch")], "imports kwsops"
"""


def clips(ws, per_label: int = 2) -> list[Path]:
    found = []
    for folder in sorted(p for p in ws.output_dir.iterdir() if p.is_dir() and p.name[0] != "_"):
        found += sorted(folder.glob("*.wav"))[:per_label]
    return found


def model_labels(ws) -> list[str]:
    """The labels of the revision's fold models (the words and the non-word classes that
    Preprocess made: ``_silence_`` always, ``_unknown_`` with unknown speech)."""
    folds = _fold_files(ws.models_dir / "batch_4")
    labels = read_model_meta(folds[0])["labels"]
    assert set(LABELS) <= set(labels) and SILENCE in labels, labels
    return labels


def test_front_end_matches_log_mel_on_real_clips(trained_copy: Trained):
    audio = np.stack([sf.read(p, dtype="float32")[0] for p in clips(trained_copy.ws, 3)])
    settings = FeatureSettings()
    expected = log_mel(torch.from_numpy(audio), settings)
    with torch.no_grad():
        got = LogMel(settings)(torch.from_numpy(audio))
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= 1e-4


def test_onnx_export_runs_in_onnxruntime_alone_and_agrees_with_predict(
    trained_copy: Trained, tmp_path: Path, capsys
):
    ws = trained_copy.ws
    output = tmp_path / "out" / "spotter.onnx"
    assert main(["export", "workspace:batch_4", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "argmax equal on" in printed and "ms (PyTorch:" in printed
    model = onnx.load(str(output))
    props = {p.key: p.value for p in model.metadata_props}
    labels = json.loads(props["labels"])
    assert labels == model_labels(ws) and props["sample_rate"] == "16000"
    # the operating point Train kept beside the folds travels in the file
    point = read_operating_point(ws.models_dir / "batch_4")
    assert point is not None and float(props["threshold"]) == point.threshold
    assert props["clip_seconds"] == "2.6"
    assert props["revision"] == "workspace:batch_4" and props["training_clips_sha256"]
    (audio_input,) = model.graph.input
    assert audio_input.name == "audio"
    assert [d.dim_value for d in audio_input.type.tensor_type.shape.dim][1] == 41600

    card = output.with_suffix(".md").read_text(encoding="utf-8")
    # the operating point's, measured out of fold by Train; and the test clips', when the
    # comparison holds it
    budget = f"{point.false_alarms_per_hour:g} false alarms per hour"
    assert point.miss_rate is not None
    miss = f"{100 * point.miss_rate:.1f} %"
    assert f"miss rate at the false-alarm budget ({budget}): {miss}, out of fold" in card
    comparison = load_comparison(ws.comparison_report.with_suffix(".json"))
    entry = next((r for r in (comparison.revisions if comparison else [])
                  if r.spec == "workspace:batch_4"), None)  # fmt: skip
    if entry is not None and entry.spotting and entry.miss_rate is not None:
        tested = f"{100 * entry.miss_rate:.1f} %"
        assert f"miss rate on the test clips at the false-alarm budget ({budget}): {tested}" in card
    else:
        assert "miss rate on the test clips" not in card
    (code,) = CODE.findall(card)
    assert "import kwsops" not in code and "torch" not in code
    # data/output holds each word at a random offset (training on detector-like windows);
    # predict centres the word: both run on the clip predict makes (its Preprocess chain),
    # so that the file's code and predict see the same audio
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    files = []
    for index, clip in enumerate(clips(ws)):
        files.append(prepared / f"{index:02d}-{clip.name}")
        sf.write(files[-1], load_clip(clip), 16_000, subtype="PCM_16")
    answers = {}
    for clip in files:
        program = RUN_CARD.format(code=code.replace('CLIP = "clip.wav"', f"CLIP = {str(clip)!r}"))
        done = subprocess.run([sys.executable, "-c", program], cwd=output.parent,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        label, probability, _said = done.stdout.rsplit(" ", 2)
        answers[clean_text(str(clip), 400)] = (clean_text(label), float(probability))

    assert main(["predict", "--revision", "workspace:batch_4", *map(str, files)]) == 0
    predicted = {}
    for line in capsys.readouterr().out.splitlines():
        label, probability, path = re.match(r"^(.*)  ([01]\.\d{3})  (.*)$", line).groups()
        predicted[path] = (label, float(probability))
    assert predicted.keys() == answers.keys()
    for path, (label, probability) in predicted.items():
        assert answers[path][0] == label, path
        # predict runs the Preprocess chain again (trim, pad with fresh low noise): near, not equal
        assert abs(answers[path][1] - probability) <= 0.02, path


def test_torchscript_export_is_checked_too(trained_copy: Trained, tmp_path: Path, capsys):
    output = tmp_path / "spotter.pt"
    assert main(["export", "workspace:batch_4", "--format", "torchscript",
                 "--output", str(output)]) == 0  # fmt: skip
    network = torch.jit.load(str(output))
    audio = torch.from_numpy(sf.read(clips(trained_copy.ws, 1)[0], dtype="float32")[0])[None]
    with torch.no_grad():
        probabilities = network(audio)
    labels = model_labels(trained_copy.ws)
    assert probabilities.shape == (1, len(labels)) and abs(float(probabilities.sum()) - 1) < 1e-5
    assert json.loads(output.with_suffix(".json").read_text())["revision"] == "workspace:batch_4"
    assert "torch.jit.load" in (tmp_path / "spotter.pt.md").read_text(encoding="utf-8")


def test_promote_exports_and_keeps_a_promote_model_task_offline(trained_copy: Trained, capsys):
    ws = trained_copy.ws
    assert main(["promote", f"git:{trained_copy.strong_sha}:batch_4"]) == 0
    exported = ws.root / "exports" / "kws-v1.0.0.onnx"
    assert exported.is_file() and exported.with_suffix(".md").is_file()
    props = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert props["version"] == "kws@v1.0.0" and props["commit"] == trained_copy.strong_sha

    (record,) = list_tasks(ws.root, "promote model")
    assert record.mode == "offline" and record.status == "completed"
    assert set(record.tags) == {"kws@v1.0.0", "production"}
    assert {"model.onnx", "model_card.md"} <= set(record.artifacts)
    session = json.loads((Path(record.session or "") / "task.json").read_text())
    assert {"kws@v1.0.0", "production"} <= set(session["tags"])
    kept = Path(record.session or "").rglob("*.onnx")
    assert any(p.stat().st_size == exported.stat().st_size for p in kept)

    # export without a revision: the production version, named as such
    capsys.readouterr()
    assert main(["export", "--output", str(ws.root / "again.onnx")]) == 0
    assert "revision kws@v1.0.0 (production)" in capsys.readouterr().out


def test_bad_export_arguments_are_one_line_and_exit_4(trained_copy: Trained, tmp_path, capsys):
    assert main(["export", "workspace:batch_4", "--output", str(tmp_path)]) == 4
    assert main(["export", "workspace:batch_99"]) == 4
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 2 and "is a folder" in err[0] and "batch_99" in err[1]
    assert not (trained_copy.ws.root / "exports").exists()


def test_the_revisions_operating_point_travels_in_the_file_and_the_card(
    trained_copy: Trained, tmp_path: Path
):
    from kwsops.keywords import OperatingPoint, write_operating_point

    ws = trained_copy.ws
    write_operating_point(ws.models_dir / "batch_4", OperatingPoint(0.73, 2.0, miss_rate=0.125))
    output = tmp_path / "spotter.onnx"
    assert main(["export", "workspace:batch_4", "--output", str(output)]) == 0
    props = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert props["threshold"] == "0.73"
    card = output.with_suffix(".md").read_text(encoding="utf-8")
    assert "miss rate at the false-alarm budget (2 false alarms per hour): 12.5 %" in card
    assert "operating threshold 0.73" in card
