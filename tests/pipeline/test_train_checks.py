"""Checks that depend on a training parameter run where it is used (Train), whatever is up to
date: a changed ``--folds`` on a workspace whose MakeSpectrograms is done is checked as a fresh
workspace would check it, and the clip-by-clip fall-back of the folds is said in the run's
output, run.log, `kwsops runs show` and the report."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from kwsops.runs.folder import list_runs
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.clips import tone_clip

pytestmark = pytest.mark.slow

RUN = ("run", "--batch-sizes", "16", "--epochs", "1")
# four speakers; like has 5 clips (spk00 said it twice): enough for 4 folds, not for 5
TAKES = {"catch": {0: 2, 1: 2, 2: 2, 3: 2}, "gun": {0: 2, 1: 2, 2: 2, 3: 2},
         "like": {0: 2, 1: 1, 2: 1, 3: 1}}  # fmt: skip


def write_recordings(ws: Workspace) -> None:
    for index, (label, speakers) in enumerate(TAKES.items()):
        (ws.input_dir / label).mkdir(parents=True)
        for speaker, takes in speakers.items():
            for take in range(takes):
                clip = tone_clip(index, speaker, take, seconds=2.6)
                sf.write(ws.input_dir / label / f"spk{speaker:02d}__t{take}.wav", clip, 16_000)


def test_changed_folds_are_checked_and_their_fall_back_said_whatever_is_up_to_date(
    tmp_path, new_workspace
):
    ws = new_workspace(tmp_path / "ws")
    write_recordings(ws)
    first = run_cli(ws, *RUN, "--folds", "2")
    meta = json.loads((ws.spec_dir / "meta.json").read_text())
    training_speakers = {s for s in meta["train"]["speakers"] if s}
    assert len(training_speakers) == 3  # one speaker held out for test
    # 21 recordings and as many generated _silence_ clips as the median word (8), which get
    # their own share of the test split; one speaker is 5 of the 21 recordings, far from
    # test_size 0.1: the line and the report say so
    n, total = len(meta["test"]["ids"]), len(meta["train"]["ids"]) + len(meta["test"]["ids"])
    assert total == 21 + 8 and meta["labels"] == ["_silence_", "catch", "gun", "like"]
    share = (
        f"test share {n / total:.2f} ({n} of {total} clips), not 0.1: whole speakers are held out"
    )
    assert meta["split"]["share_note"].startswith(share)
    assert share in " ".join(first.stdout.split())
    report = (ws.root / "reports/comparison_versions.md").read_text()
    assert share in " ".join(report.split())

    said = "folds clip by clip: 3 training speakers for 4 folds"
    more = run_cli(ws, *RUN, "--folds", "4")
    assert said in " ".join(more.stdout.split())
    run = list_runs(ws.runs_dir)[0]
    assert said in run.log.read_text()
    shown = run_cli(ws, "runs", "show", run.run_id)
    assert said in " ".join(shown.stdout.split())
    report = (ws.root / "reports/comparison_versions.md").read_text()
    assert said in " ".join(report.split())

    refused = run_cli(ws, *RUN, "--folds", "5", check=False)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "label like has 5 clips; the test split and 5 folds need at least 6" in " ".join(
        (refused.stdout + refused.stderr).split()
    )
    assert not (ws.batch_dir(16) / "fold_4").exists()  # refused before any fold trained
