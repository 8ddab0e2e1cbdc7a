"""`kwsops export`: one file a phone app can run, the log-mel front end and every fold inside.

ONNX (opset 17, TorchScript exporter: torch's default dynamo exporter needs ``onnxscript``):
input ``audio`` float32 ``[batch, clip samples]``, output ``probabilities`` ``[batch, classes]``,
and ``metadata_props``: ``labels`` (JSON, in output order), ``sample_rate``, ``clip_seconds``,
``threshold`` (the revision's operating point, :mod:`kwsops.keywords`), ``revision``,
``commit``, ``training_clips_sha256``, ``version`` when registered. The file is written under a
temp name, checked with onnxruntime against PyTorch on the test split's clips (every argmax
equal, probabilities within :data:`TOLERANCE`), and only then renamed into place, with its
model card beside it (:mod:`kwsops.registry.card`). ``--format torchscript`` writes the same
network traced (``torch.jit.load`` runs it) with the metadata in a ``.json`` beside it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kwsops.atomic import atomic_file, atomic_write_text
from kwsops.config import AudioSettings, FeatureSettings
from kwsops.progress import ProgressFn, no_progress
from kwsops.workspace import Workspace

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-4
SHARED = 0o644
OPSET = 17
LATENCY_REPEATS = 20
_CHECK_BATCH = 32


class ExportError(ValueError):
    """The export cannot be made (a bad format, output or revision); the message says why."""


class ExportCheckError(ExportError):
    """The exported file disagrees with PyTorch: nothing is written (exit 1)."""

    exit_code = 1


@dataclass
class ExportResult:
    path: Path
    card: Path
    format: str
    revision: str  # as shown: kws@v1.2.0 (production), workspace:batch_32
    metadata: dict[str, str]
    folds: int = 0
    parameters: int = 0  # weights of every fold together
    clips: int = 0  # test clips checked
    max_difference: float = 0.0  # largest |exported - PyTorch| probability
    argmax_agree: int = 0
    latency_ms: float = 0.0  # per clip, one thread, the exported file
    torch_latency_ms: float = 0.0  # the same with PyTorch's fold models and log_mel
    operating_point: object | None = None  # kwsops.keywords.OperatingPoint, when kept
    accuracy: float | None = None  # the ensemble on the test clips
    per_class: list[dict] = field(default_factory=list)


def test_clips(ws: Workspace) -> tuple[list[Path], list[str]]:
    """The test split's clips in data/output and their labels (data/spec_ds/meta.json)."""
    meta_path = ws.spec_dir / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        ids, labels = meta["test"]["ids"], meta["labels"]
        truth = meta["test"].get("labels")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(
            f"{meta_path}: cannot read the test split ({exc}); run MakeSpectrograms first"
        ) from None
    if truth is None:  # the labels are in the packed split
        from kwsops.ml.features import load_split

        split = load_split(ws.spec_dir, "test")
        truth = [labels[int(i)] for i in split.labels]
    else:
        truth = [labels[int(i)] if isinstance(i, int) else str(i) for i in truth]
    return [ws.output_dir / clip for clip in ids], truth


def _read_clips(paths: list[Path], samples: int) -> np.ndarray:
    import soundfile as sf

    batch = np.zeros((len(paths), samples), dtype=np.float32)
    for row, path in zip(batch, paths, strict=True):
        try:
            audio, _ = sf.read(path, dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise ExportError(f"{path}: test clip unreadable ({exc}); run Preprocess again") from None
        clip = audio.mean(axis=1)[:samples]
        row[: len(clip)] = clip
    return batch


def _torch_probs(models, columns, settings: FeatureSettings, audio: np.ndarray) -> np.ndarray:
    """PyTorch's answer, the way `kwsops predict` computes it (log_mel, fold softmaxes)."""
    from kwsops.ml.features import log_mel
    from kwsops.ml.model import predict_proba

    out = []
    for start in range(0, len(audio), _CHECK_BATCH):
        features = log_mel(torch.from_numpy(audio[start : start + _CHECK_BATCH]), settings)
        out.append(np.mean([predict_proba(m, features)[:, cols].numpy()
                            for m, cols in zip(models, columns, strict=True)], axis=0))  # fmt: skip
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _latency_ms(run, clip: np.ndarray) -> float:
    """Median milliseconds of ``run(one clip)`` on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(clip)  # warm up
        times = []
        for _ in range(LATENCY_REPEATS):
            tic = time.perf_counter()
            run(clip)
            times.append((time.perf_counter() - tic) * 1000)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times)


class _Onnx:
    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"audio": audio})[0]


def _write_onnx(network: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict) -> None:
    import onnx

    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "model.onnx"
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(network, (example,), str(raw), input_names=["audio"],
                              output_names=["probabilities"], opset_version=OPSET,
                              dynamic_axes={"audio": {0: "batch"}, "probabilities": {0: "batch"}},
                              dynamo=False)  # fmt: skip
        model = onnx.load(str(raw))
    onnx.helper.set_model_props(model, metadata)
    model.doc_string = "kwsops keyword spotter: audio -> the fold ensemble's class probabilities"
    onnx.checker.check_model(model)
    with atomic_file(path) as handle:
        handle.write(model.SerializeToString())


def _write_torchscript(network: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(network, example)
    with atomic_file(path) as handle:
        torch.jit.save(traced, handle)


class _TorchScript:
    def __init__(self, path: Path):
        self.module = torch.jit.load(str(path))

    @torch.no_grad()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(audio)).numpy()


def card_path(path: Path, fmt: str) -> Path:
    """``kws-v1.2.0.md`` beside the ONNX file, ``kws-v1.2.0.pt.md`` beside a TorchScript one."""
    return path.with_suffix(".md") if fmt == "onnx" else path.with_name(f"{path.name}.md")


def default_output(ws: Workspace, stem: str, fmt: str) -> Path:
    return ws.root / "exports" / f"{stem}.{'onnx' if fmt == 'onnx' else 'pt'}"


def export_revision(
    ws: Workspace,
    revision: str | None = None,
    fmt: str = "onnx",
    output: Path | None = None,
    progress: ProgressFn = no_progress,
) -> ExportResult:
    """Export ``revision`` (None: the production version, as predict) and check it."""
    from kwsops.compare.predict import load_ensemble, resolve_one
    from kwsops.compare.revisions import materialise
    from kwsops.keywords import DEFAULT_THRESHOLD, read_operating_point
    from kwsops.ml.frontend import Ensemble
    from kwsops.ml.model import count_parameters
    from kwsops.registry.card import write_card
    from kwsops.versioning.tags import model_name

    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not known; use {' or '.join(FORMATS)}")
    resolved, shown = resolve_one(ws, revision)
    version = resolved.origin.get("version", "")
    stem = version.replace("@", "-") if version else "-".join(
        [model_name(ws.root), *filter(None, [resolved.sha[:8], resolved.batch, resolved.task_id])]
    )  # kws-v1.2.0, kws-batch_32, kws-1a2b3c4d-batch_32, kws-<task id>
    path = Path(output) if output else default_output(ws, stem, fmt)
    if path.is_dir():
        raise ExportError(f"--output {path} is a folder; give a file name (e.g. {path}/{stem}.onnx)")
    clips, truth = test_clips(ws)
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="export-", dir=ws.state_dir))
    try:
        progress(0, 4, "fetching the fold models")
        fetched = materialise(ws, resolved, scratch / "models")
        models, columns, meta = load_ensemble(fetched.model_paths)
        settings = FeatureSettings(**meta["features"])
        audio_settings = AudioSettings(sample_rate=settings.sample_rate)
        samples = audio_settings.clip_samples
        point = None
        if resolved.kind != "clearml":
            point = read_operating_point(fetched.model_paths[0].parent.parent)
        threshold = point.threshold if point else DEFAULT_THRESHOLD
        metadata = {
            "labels": json.dumps(meta["labels"]),
            "sample_rate": str(settings.sample_rate),
            "clip_seconds": str(audio_settings.clip_seconds),
            "clip_samples": str(samples),
            "threshold": str(threshold),
            "revision": resolved.spec,
            "commit": resolved.sha or resolved.origin.get("commit", ""),
            "training_clips_sha256": str((meta.get("trained_on") or {}).get("ids_sha256", "")),
            "version": version,
            "producer": "kwsops",
        }
        network = Ensemble(settings, models, columns)
        example = torch.zeros(2, samples)
        progress(1, 4, f"writing {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = scratch / path.name
        if fmt == "onnx":
            _write_onnx(network, example, candidate, metadata)
            runner = _Onnx(candidate)
        else:
            _write_torchscript(network, example, candidate)
            runner = _TorchScript(candidate)
        progress(2, 4, f"checking it on {len(clips)} test clips")
        audio = _read_clips(clips, samples)
        expected = _torch_probs(models, columns, settings, audio)
        got = np.concatenate([runner(audio[i : i + _CHECK_BATCH])
                              for i in range(0, len(audio), _CHECK_BATCH)]) if len(audio) else expected  # fmt: skip
        agree = int((got.argmax(1) == expected.argmax(1)).sum()) if len(audio) else 0
        difference = float(np.abs(got - expected).max()) if len(audio) else 0.0
        if agree != len(audio) or difference > TOLERANCE:
            raise ExportCheckError(
                f"the exported model disagrees with PyTorch on the test clips: argmax equal on "
                f"{agree} of {len(audio)}, largest probability difference {difference:.2e} "
                f"(allowed {TOLERANCE:g}); nothing was written"
            )
        progress(3, 4, "measuring latency")
        one = audio[:1] if len(audio) else np.zeros((1, samples), dtype=np.float32)
        result = ExportResult(
            path=path, card=card_path(path, fmt), format=fmt, revision=shown,
            metadata=metadata, folds=len(models), parameters=count_parameters(network),
            operating_point=point, clips=len(audio), max_difference=difference, argmax_agree=agree,
            latency_ms=_latency_ms(runner, one),
            torch_latency_ms=_latency_ms(lambda a: _torch_probs(models, columns, settings, a), one),
        )  # fmt: skip
        labels = meta["labels"]
        if len(audio):
            predicted = [labels[i] for i in got.argmax(1)]
            result.accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
            result.per_class = _per_class(labels, truth, predicted)
        atomic_write_text(result.card, write_card(ws, result, meta, resolved))
        if fmt == "torchscript":
            atomic_write_text(path.with_suffix(".json"), json.dumps(metadata, indent=1) + "\n")
        with atomic_file(path) as handle:  # last: a model file is there only once checked
            handle.write(candidate.read_bytes())
        sidecar = [path.with_suffix(".json")] if fmt == "torchscript" else []
        for written in (path, result.card, *sidecar):
            written.chmod(SHARED)  # a file to hand on: not the temp file's 0600
        progress(4, 4, f"{path.name}: checked on {len(audio)} clips")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _per_class(labels: list[str], truth: list[str], predicted: list[str]) -> list[dict]:
    rows = []
    for label in labels:
        support = sum(t == label for t in truth)
        called = sum(p == label for p in predicted)
        hits = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        rows.append({
            "label": label, "clips": support,
            "precision": hits / called if called else 0.0,
            "recall": hits / support if support else 0.0,
        })  # fmt: skip
    return rows
