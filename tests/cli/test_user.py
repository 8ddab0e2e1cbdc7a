"""The `kwsops` command tried as a new user would, on a real tiny workspace: what runs is what
was asked for (reruns, compared revisions), bad values stop before anything is recorded, errors
say what is wrong on one line, and output that is not a terminal is never wrapped.

The module's runs are made once (``tried``) and only read; a test that runs something more in
the trained workspace works on a copy, so the tests pass alone and in any order."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kwsops.stamps import STAMP_NAME
from kwsops.workspace import Workspace
from tests.helpers.cli import run_cli
from tests.helpers.workspaces import clone_workspace

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]  # pipeline runs: scheduled first
SMALL = ("--epochs", "1", "--folds", "2", "--batch-sizes", "16")


def runs(ws: Workspace) -> list[Path]:
    return sorted(ws.runs_dir.iterdir()) if ws.runs_dir.is_dir() else []


def params(run: Path) -> dict:
    return json.loads((run / "params.json").read_text())


@pytest.fixture(scope="module")
def tried(tmp_path_factory: pytest.TempPathFactory, demo_ran: Workspace) -> tuple[Workspace, dict]:
    """One real run (1 epoch, 2 folds, batch 16: a copy of the session's ``demo_ran``), then
    one that adds a git revision to compare (its training is up to date, only Validate runs
    again; the comparison it wrote is kept), then `validate` of batch 16 and a rerun of that
    validate: four runs of three kinds."""
    ws = clone_workspace(demo_ran.root, tmp_path_factory.mktemp("cli") / "ws")
    run_cli(ws, "run", *SMALL, "--revisions", "git:HEAD:batch_16", "--quiet")
    ticked = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    run_cli(ws, "validate", "--revisions", "workspace:batch_16", "--quiet")
    run_cli(ws, "rerun", "last", "--quiet")
    return ws, ticked


@pytest.fixture
def trained(tried: tuple[Workspace, dict]) -> Workspace:
    """The workspace of the module's runs: read it, never run in it."""
    return tried[0]


@pytest.fixture
def trained_copy(trained: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the module's workspace, for a test that runs something more."""
    return clone_workspace(trained.root, tmp_path / "ws")


def test_ticked_revisions_are_compared_beside_the_new_models(tried: tuple[Workspace, dict]):
    trained, data = tried  # what the second run compared (Validate reran since)
    specs = [rev["spec"] for rev in data["revisions"]]
    assert "workspace:batch_16" in specs and any(s.startswith("git:") for s in specs)
    status = json.loads((runs(trained)[1] / "status.json").read_text())
    assert status["best_revision"] == data["best"]
    assert status["best_accuracy"] == pytest.approx(
        data["revisions"][0]["accuracy"]["mean"], abs=1e-5
    )
    for name in ("comparison_versions.html", "plots/accuracy.png"):
        assert (trained.reports_dir / name).is_file()
    assert any(rev.get("curves_plot") for rev in data["revisions"])


def test_params_json_records_what_ran_and_a_rerun_repeats_it(trained_copy: Workspace) -> None:
    trained = trained_copy
    first = params(runs(trained)[0])
    # the flags, and what luigi.cfg filled in: nothing is left to a later default
    assert first["kind"] == "run" and first["command"] == "run"
    assert (first["epochs"], first["folds"], first["batch_sizes"]) == (1, 2, [16])
    assert (first["learning_rate"], first["seed"], first["workers"]) == (0.005, 42, 2)
    before = set(runs(trained))
    result = run_cli(trained, "rerun", runs(trained)[0].name)
    assert "rerun of" in result.stdout
    # the run added, not the last name: two runs in one second sort by their random suffix
    (added,) = set(runs(trained)) - before
    again = params(added)
    assert again["kind"] == "rerun" and again["rerun_of"] == runs(trained)[0].name
    drop = ("kind", "rerun_of", "run_id")
    assert {k: v for k, v in again.items() if k not in drop} == {
        k: v for k, v in first.items() if k not in drop
    }
    log = (runs(trained)[0] / "run.log").read_text()  # training lines, not only Luigi's
    assert "kwsops.train: batch 16 fold 0 epoch 1/1: loss" in log and "val_acc" in log


def test_a_validate_rerun_stays_validate(trained: Workspace) -> None:
    validate, again = runs(trained)[2:4]  # the module's `validate`, then `rerun last`
    assert params(again)["command"] == "validate" and params(again)["rerun_of"] == validate.name
    events = [json.loads(line) for line in (again / "events.jsonl").read_text().splitlines()]
    families = {e.get("family") for e in events if e.get("family")}
    assert families == {"Validate"}  # no training, no stage before it


def test_validate_without_revisions_compares_the_batch_sizes_trained(
    trained_copy: Workspace, tmp_path: Path
) -> None:
    """luigi.cfg names 16, 32 and 64; only 16 was trained: validate compares that one."""
    trained = trained_copy
    before = set(runs(trained))
    run_cli(trained, "validate", "--quiet")
    (added,) = set(runs(trained)) - before
    assert params(added)["batch_sizes"] == [16]
    data = json.loads(trained.comparison_report.with_suffix(".json").read_text())
    assert [rev["spec"] for rev in data["revisions"]] == ["workspace:batch_16"]
    bare = Workspace(tmp_path / "bare")  # a copy without models: nothing to compare
    shutil.copytree(trained.root, bare.root, ignore=shutil.ignore_patterns("models", "runs"))
    refused = run_cli(bare, "validate", check=False)
    assert refused.returncode == 4 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert "holds no trained models (batch_<size>/fold_<k>/)" in line
    assert line.endswith("or name the models to compare with --revisions")
    assert runs(bare) == []


BAD = [
    (("run", "--batch-sizes", "0"), "--batch-sizes 0: must be an integer from 1 to 4096"),
    (("run", "--epochs", "0"), "--epochs 0: must be an integer from 1 to 10000"),
    (("run", "--folds", "1"), "--folds 1: must be an integer from 2 to 100"),
    (("run", "--learning-rate", "-5"), "--learning-rate -5: must be a number above 0"),
    (("validate", "--revisions", "bogus"), "--revisions bogus: use workspace:batch_32"),
    (("validate", "--revisions", "last:0"), "--revisions last:0: use"),
    (("validate", "--revisions", "git:nope:batch_16"), "git revision 'nope' not found"),
    (("run", "--revisions", "workspace:batch_99"), "no fold models in"),
]


def test_bad_values_exit_4_on_one_line_and_record_nothing(trained: Workspace) -> None:
    before = runs(trained)
    for args, message in BAD:
        result = run_cli(trained, *args, check=False)
        assert result.returncode == 4, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)
    assert runs(trained) == before


def test_errors_say_what_is_wrong(trained: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "not-a-workspace"
    outside.mkdir()
    cases = [
        ((outside, "report"), "is not a kwsops workspace"),
        ((tmp_path / "nowhere", "report"), "no such folder"),
        ((tmp_path / "nowhere", "run"), "no such folder"),
        ((outside, "predict", str(outside)), "is not a kwsops workspace"),
    ]
    for (where, *args), message in cases:
        result = run_cli(where, *args, check=False, cwd=tmp_path)
        assert result.returncode == 4 and message in result.stderr, (args, result.stderr)
        assert "Errno" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run_cli(trained, "predict", str(trained.input_dir), check=False)
    assert "a folder, not a recording" in result.stderr and "Format" not in result.stderr


def test_no_recordings_exit_4_on_one_line_and_record_nothing(tmp_path: Path, new_workspace) -> None:
    empty = new_workspace(tmp_path / "empty")
    (empty.input_dir / "catch").mkdir(parents=True)
    (empty.input_dir / "catch" / "notes.txt").write_text("not a recording\n")
    refused = run_cli(empty, "run", *SMALL, check=False)
    assert refused.returncode == 4 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("kwsops: no recordings in ") and "data/input" in line
    assert line.endswith("or run `kwsops demo-data`")
    assert runs(empty) == []


def test_run_history_says_what_ran_and_why_it_failed(
    trained: Workspace, tmp_path: Path, new_workspace
) -> None:
    unusable = new_workspace(tmp_path / "unusable")
    (unusable.input_dir / "catch").mkdir(parents=True)
    (unusable.input_dir / "catch" / "text__file.wav").write_text("this is not audio\n")
    failed = run_cli(unusable, "run", *SMALL, check=False)
    assert failed.returncode == 1 and failed.stdout == ""
    reason = "none of the 1 files in"  # said once, whole, on the Preprocess line: never wrapped
    assert failed.stderr.count(reason) == 1
    (line,) = [line for line in failed.stderr.splitlines() if reason in line]
    assert re.match(r"^Preprocess +failed +[\d.]+ s +ValueError: none of the 1 files", line)
    assert line.endswith("add recordings to data/input/<label>/")
    # every file rejected: the manifest says why, where the README says; nothing looks done
    manifest = (unusable.output_dir / "manifest.csv").read_text()
    assert "catch/text__file.wav" in manifest and "rejected" in manifest
    assert not (unusable.output_dir / STAMP_NAME).exists()
    listing = run_cli(unusable, "runs").stdout.splitlines()
    assert "Command" in listing[1] and "Reason" in listing[1]
    assert "failed" in listing[2] and "Preprocess: ValueError" in listing[2]
    assert listing[2].endswith("add recordings to data/input/<label>/")
    assert run_cli(unusable, "runs", "--status", "ok").stdout.count("\n") == 2  # title, header

    listing = run_cli(trained, "runs", "--sort", "kind").stdout.splitlines()[2:]
    kinds = [line.split()[3] for line in listing]
    assert kinds == sorted(kinds) and {"rerun", "run", "validate"} <= set(kinds)
    shown = run_cli(trained, "runs", "show", runs(trained)[0].name).stdout
    assert "Train batch 16" in shown and "Train_16" not in shown
    assert "learning_rate=0.005" in shown and "(run)" in shown
    both = run_cli(trained, "runs", "compare", runs(trained)[0].name, runs(trained)[1].name)
    assert "param revisions" in both.stdout and "git:HEAD:batch_16" in both.stdout
    assert "param epochs" not in both.stdout  # the same in both: not listed


def test_piped_report_has_no_trailing_spaces(trained: Workspace) -> None:
    out = run_cli(trained, "report").stdout
    assert "Parameters that differ" in out or "ws b16" in out
    assert all(line == line.rstrip() for line in out.splitlines())
    assert "\x1b" not in out


def test_a_copied_workspace_uses_its_own_remote_and_sessions(
    trained: Workspace, tmp_path: Path
) -> None:
    from kwsops.tracking.index import fetch_artifacts, read_index
    from kwsops.versioning.remote import remotes

    original = tmp_path / "original"
    shutil.copytree(trained.root, original, symlinks=True)  # what `cp -a` does
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    shutil.rmtree(original)  # nothing in the copy may still need it
    (remote,) = [r for r in remotes(copy) if r.default]
    assert Path(remote.url) == copy / ".kwsops" / "dvc-remote"
    records = [r for r in read_index(copy) if r.name == "train model"]
    assert records and all(Path(r.session).is_relative_to(copy) for r in records)
    fetched = fetch_artifacts(copy, records[0].task_id, tmp_path / "fetched")
    assert fetched and all(p.is_file() for p in fetched.values())
    status = run_cli(Workspace(copy), "pull")  # its own remote answers
    assert "files fetched" in status.stdout
