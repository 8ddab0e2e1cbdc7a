"""`kwsops predict`: the Preprocess chain and the fold ensemble on recordings, per file."""

from __future__ import annotations

import json
import re

import pytest

from kwsops import exitcodes
from kwsops.audio.layout import plan_layout
from kwsops.cli.main import main
from kwsops.compare.predict import default_revision
from kwsops.text import clean_text
from kwsops.workspace import Workspace
from tests.helpers.comparison import make_comparison
from tests.helpers.trained import LABELS, Trained


@pytest.fixture
def trained(trained_workspace: Trained, monkeypatch) -> Trained:
    built = trained_workspace
    monkeypatch.chdir(built.ws.root)
    monkeypatch.setenv("KWSOPS_TORCH_THREADS", "1")  # no idle OpenMP spinning on a shared machine
    return built


LINE = re.compile(r"^(?P<label>.*)  (?P<p>[01]\.\d{3})  (?P<path>.*)$")


def predictions(out: str) -> dict[str, tuple[str, float]]:
    found = {}
    for line in out.splitlines():
        match = LINE.match(line)
        assert match, line
        found[match["path"]] = (match["label"], float(match["p"]))
    return found


def recordings(ws: Workspace, per_label: int) -> list[str]:
    files = []
    for label in LABELS:
        files += sorted(str(p) for p in (ws.input_dir / label).iterdir())[:per_label]
    return files


def test_predict_agrees_with_the_labels_of_most_recordings(trained, capsys):
    ws = trained.ws
    files = recordings(ws, 8)
    # threshold 0: the ensemble's own best label (the tiny model is unsure of its third label)
    args = ["-C", str(ws.root), "predict", "--revision", "workspace:batch_4", "--threshold", "0"]
    assert main([*args, *files]) == 0
    captured = capsys.readouterr()
    assert "revision workspace:batch_4" in captured.err
    found = predictions(captured.out)
    assert sorted(found) == sorted(clean_text(f, 400) for f in files)
    agree = 0
    for path in files:
        label, probability = found[clean_text(path, 400)]
        assert 0.0 < probability <= 1.0
        rel = path.split("data/input/")[1]
        truth = plan_layout([rel]).places[rel].label
        agree += label == clean_text(truth)
    assert agree >= 0.75 * len(files), captured.out
    assert "\x1b" not in captured.out  # the hostile label is printed inert


def test_a_bad_file_gets_an_error_line_and_the_others_are_classified(trained, tmp_path, capsys):
    ws = trained.ws
    good = recordings(ws, 1)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not audio at all" * 10)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    files = [good[0], str(broken), str(tmp_path / "missing.flac"), str(empty), *good[1:]]
    code = main(["-C", str(ws.root), "predict", "--revision", "workspace:batch_4", *files])
    assert code == exitcodes.TASK_FAILED
    captured = capsys.readouterr()
    assert len(predictions(captured.out)) == len(good)
    assert f"{broken}: error: unreadable" in captured.err
    assert "missing.flac: error: no such file" in captured.err
    assert f"{empty}: error: empty file" in captured.err


def test_predict_with_a_git_revision_fetches_its_models(trained, capsys):
    ws = trained.ws
    files = recordings(ws, 1)
    revision = f"git:{trained.weak_sha[:10]}:batch_4"
    assert main(["-C", str(ws.root), "predict", "--revision", revision, *files]) == 0
    assert len(predictions(capsys.readouterr().out)) == len(files)
    assert not list(ws.state_dir.glob("predict-*"))  # fetched models are cleaned up


def test_default_revision_is_the_reports_best_else_the_first_batch_size(tmp_path):
    ws = Workspace(tmp_path)
    assert default_revision(ws) == "workspace:batch_16"
    (ws.models_dir / "batch_8" / "fold_0").mkdir(parents=True)
    assert default_revision(ws) == "workspace:batch_8"  # batch_16 was never trained
    ws.luigi_cfg.write_text("[VersionModels]\nbatch_sizes = [32, 64]\n")
    (ws.models_dir / "batch_32").mkdir()
    assert default_revision(ws) == "workspace:batch_32"
    report = make_comparison()
    report["revisions"][0]["spec"] = "git:abc:batch_64"  # the best
    ws.reports_dir.mkdir()
    ws.comparison_report.with_suffix(".json").write_text(json.dumps(report))
    assert default_revision(ws) == "git:abc:batch_64"
    ws.comparison_report.with_suffix(".json").write_text('{"revisions": [{"spec": "x"}]}')
    assert default_revision(ws) == "workspace:batch_32"  # not a comparison: not its best
