"""Validate on real parts: git + DVC revisions, ClearML offline sessions, Luigi via the runner.

Most tests use the small trained workspace of tests/helpers/trained.py (built once a session).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from dataclasses import replace

import pytest

from kwsops import exitcodes
from kwsops.config import SplitSettings
from kwsops.versioning.runner import tool
from kwsops.workspace import WORKSPACE_ENV, Workspace
from tests.helpers.cli import run_cli
from tests.helpers.trained import EVIL, STRONG, WEAK, Trained
from tests.helpers.workspaces import clone_workspace

RUNS: list[str] = []
# one validate run per revision list, in its own copy of the workspace, reused by the tests
_COMPARED: dict[tuple, tuple[Workspace, dict]] = {}


def run_validate(ws: Workspace, revisions: list[str], fail_below: float | None = None) -> int:
    """`kwsops validate` in this process (cwd and env restored by the ``trained`` fixture)."""
    from kwsops.cli.main import main

    RUNS.append(f"test-validate-{len(RUNS):03d}")
    args = ["-C", str(ws.root), "validate", "--quiet", "--run-id", RUNS[-1]]
    args += ["--revisions", *revisions]
    if fail_below is not None:
        args += ["--fail-below", str(fail_below)]
    return main(args)


@pytest.fixture
def trained(trained_workspace: Trained, monkeypatch) -> Trained:
    built = trained_workspace
    monkeypatch.chdir(built.ws.root)
    monkeypatch.setenv(
        "KWSOPS_TORCH_THREADS", "1"
    )  # no idle OpenMP spinning on a shared machine  # the runner chdirs and sets these: undo after each test
    monkeypatch.setenv(WORKSPACE_ENV, str(built.ws.root))
    monkeypatch.setenv("KWSOPS_RUN_DIR", "")  # recorded, so the value the runner sets is undone
    return built


def last_error(ws: Workspace) -> str:
    run = ws.runs_dir / RUNS[-1]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return " ".join(e.get("error", "") for e in events if e["event"] == "task_failed")


def report_state(ws: Workspace) -> tuple[bytes | None, bytes | None, list[str]]:
    md, js = ws.comparison_report, ws.comparison_report.with_suffix(".json")
    plots = sorted(p.name for p in ws.plots_dir.glob("*")) if ws.plots_dir.is_dir() else []
    return (md.read_bytes() if md.exists() else None,
            js.read_bytes() if js.exists() else None, plots)  # fmt: skip


def test_unknown_or_missing_revisions_fail_cleanly(trained, capsys):
    ws = trained.ws
    before = report_state(ws)
    refused = {  # found missing before the run starts: exit 4, one line, no run recorded
        "git:no-such-rev:batch_4": "git revision 'no-such-rev' not found",
        "clearml:no-such-task": "ClearML task no-such-task is not in",
        "workspace:batch_99": "no fold models",
        "latest:2": "use workspace:batch_32",
    }

    def runs() -> list:
        return sorted(ws.runs_dir.iterdir()) if ws.runs_dir.is_dir() else []

    recorded = runs()
    for spec, expected in refused.items():
        capsys.readouterr()
        assert run_validate(ws, ["workspace:batch_4", spec]) == exitcodes.BAD_CONFIG
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0] and spec in err[0], err
        assert runs() == recorded and report_state(ws) == before
    # only fetching it shows that this commit holds no batch_99: a failed run, said why
    assert run_validate(ws, [f"git:{trained.weak_sha[:10]}:batch_99"]) == exitcodes.TASK_FAILED
    error = last_error(ws)
    assert "cannot get data/models/batch_99" in error and "git" in error, error
    assert report_state(ws) == before  # no partial report, the previous one kept
    # models gone from the cache and the remote: says what was tried
    cache, remote = ws.root / ".dvc" / "cache", ws.local_remote_dir
    shutil.move(cache, ws.root / "cache-away")
    shutil.move(remote, ws.root / "remote-away")
    try:
        assert run_validate(ws, [f"git:{trained.weak_sha}:batch_4"]) == exitcodes.TASK_FAILED
    finally:
        shutil.move(ws.root / "cache-away", cache)
        shutil.move(ws.root / "remote-away", remote)
    error = last_error(ws)
    assert trained.weak_sha[:10] in error and "tried" in error and "cache" in error, error
    assert report_state(ws) == before


@pytest.fixture
def compared(trained, tmp_path_factory, monkeypatch) -> tuple[Trained, dict]:
    """One Validate over every kind of revision (git twice, workspace, ClearML, last:1), in a
    copy of the trained workspace that no other test runs in (its report and plots stay)."""
    revisions = [
        f"git:{trained.weak_sha[:8]}:batch_4",
        f"git:{trained.strong_sha}:batch_4",
        "workspace:batch_4",
        f"clearml:{trained.weak_task}",
        "last:1",
    ]
    key = tuple(revisions)
    if key not in _COMPARED:
        ws = clone_workspace(trained.ws.root, tmp_path_factory.mktemp("compared") / "ws")
        monkeypatch.chdir(ws.root)
        monkeypatch.setenv(WORKSPACE_ENV, str(ws.root))
        assert run_validate(ws, revisions) == exitcodes.OK, last_error(ws)
        _COMPARED[key] = (ws, json.loads(ws.comparison_report.with_suffix(".json").read_text()))
    ws, data = _COMPARED[key]
    return replace(trained, ws=ws), data


def by_spec(data: dict) -> dict[str, dict]:
    return {rev["spec"]: rev for rev in data["revisions"]}


def same_scores(a: dict, b: dict) -> bool:
    keys = ("accuracy", "macro_f1", "ensemble_accuracy", "per_class", "confusion")
    return all(a[k] == b[k] for k in keys)


def test_git_revisions_of_two_runs_are_compared(compared):
    trained, data = compared
    revs = by_spec(data)
    weak, strong = (revs[f"git:{sha}:batch_4"] for sha in (trained.weak_sha, trained.strong_sha))
    assert weak["params"]["learning_rate"] == WEAK.learning_rate
    assert strong["params"]["learning_rate"] == STRONG.learning_rate
    assert {"learning_rate", "epochs"} <= set(data["differing_params"])
    assert "batch_size" not in data["differing_params"]  # the same for all: not listed
    md = trained.ws.comparison_report.read_text()
    summary = md.split("## Summary")[1].split("## ")[0]  # the table, then its legend
    diff = md.split("## Parameters that differ")[1].split("\n\n")[1]
    assert "| learning\\_rate |" in diff and "| epochs |" in diff
    for sha in (trained.weak_sha, trained.strong_sha):
        assert f"| {sha[:7]} b4 |" in summary  # the short name that tells them apart
        assert f"= git:{sha[:10]}:batch\\_4" in summary  # and the legend's full name
        assert f"git commit `{sha[:12]}`" in md
    for rev in data["revisions"]:  # git and workspace revisions keep their fold histories
        if rev["kind"] in ("git", "workspace"):
            assert len(rev["history"]) == rev["folds"] and rev["curves_plot"]
    assert [rev["rank"] for rev in data["revisions"]] == [1, 2, 3, 4, 5]
    assert data["best"] == data["revisions"][0]["spec"]
    assert data["revisions"][0]["paired"] is None
    for rev in data["revisions"][1:]:
        assert 0.0 <= rev["paired"]["p_value"] <= 1.0 and rev["paired"]["method"]
    for rev in data["revisions"]:
        assert (trained.ws.reports_dir / rev["plot"]).is_file()
        assert rev["accuracy"]["low"] <= rev["accuracy"]["mean"] <= rev["accuracy"]["high"]
        assert rev["latency_ms"] > 0 and rev["parameters"] > 1000 and rev["file_bytes"] > 1000
    assert (trained.ws.plots_dir / "accuracy.png").is_file()
    # every revision held out this test split: no note casts doubt on its accuracy; the one
    # note says, once, that these models (no unknown speech) call any speech a word
    assert {rev["unseen"]["status"] for rev in data["revisions"]} == {"unseen"}
    assert md.count("Note:") == 1 and md.count("will call any speech one of the words") == 1


def test_a_revision_trained_on_test_speakers_is_flagged(trained, tmp_path, monkeypatch):
    """The split changed after training: the report names the test speakers the models heard."""
    from kwsops.ml.features import load_meta, make_spectrogram_dataset

    ws = Workspace(tmp_path / "copy")
    shutil.copytree(trained.ws.root, ws.root, symlinks=True)
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv(WORKSPACE_ENV, str(ws.root))
    before = set(load_meta(ws.spec_dir)["test"]["speakers"])
    for seed in range(1, 20):  # a split whose test speakers differ from the one trained with
        split = SplitSettings(test_size=0.25, seed=seed)
        summary = make_spectrogram_dataset(ws.output_dir, ws.spec_dir, split=split)
        if set(summary.test_speakers) != before:
            break
    heard = sorted(set(summary.test_speakers) - before)
    assert heard
    assert run_validate(ws, ["workspace:batch_4"]) == exitcodes.OK, last_error(ws)
    data = comparison(ws)
    assert data["revisions"][0]["unseen"] == {"status": "overlap", "speakers": heard}
    md = ws.comparison_report.read_text()
    note = f"trained on {len(heard)} of the {len(summary.test_speakers)} test speakers"
    assert note in md and ", ".join(heard) in md and "not on unseen voices" in md


def test_clearml_and_git_revisions_score_like_their_workspace_twin(compared):
    trained, data = compared
    revs = by_spec(data)
    workspace = revs["workspace:batch_4"]
    assert same_scores(revs[f"git:{trained.strong_sha}:batch_4"], workspace)
    weak_task, weak_git = (
        revs[f"clearml:{trained.weak_task}"],
        revs[f"git:{trained.weak_sha}:batch_4"],
    )
    assert same_scores(weak_task, weak_git)
    assert weak_task["origin"]["session"] and weak_task["origin"]["mode"] == "offline"
    # last:1 is the newest `train model` task: the strong run, deduplicated by its task id
    assert f"clearml:{trained.strong_task}" in revs
    assert revs[f"clearml:{trained.strong_task}"]["requested"] == "last:1"
    assert same_scores(revs[f"clearml:{trained.strong_task}"], workspace)
    assert len(data["revisions"]) == 5


def test_validate_logs_a_clearml_validation_task(compared):
    from kwsops.tracking.index import list_tasks

    trained, data = compared
    task = data["validation_task"]
    records = {r.task_id: r for r in list_tasks(trained.ws.root, "validation")}
    record = records[task["task_id"]]
    assert record.type == "testing" and record.status == "completed"
    assert {"report", "comparison"} <= set(record.artifacts)
    assert any(name.endswith("accuracy") for name in record.values)


def test_unchanged_validate_does_no_work_and_gate_fails_with_exit_5(trained):
    ws, revisions = trained.ws, ["workspace:batch_4"]
    assert run_validate(ws, revisions) == exitcodes.OK
    stamp = (ws.stamps_dir / "Validate.json").read_text()
    report = ws.comparison_report.read_bytes()
    assert run_validate(ws, revisions) == exitcodes.OK  # up to date: nothing rewritten
    assert ws.comparison_report.read_bytes() == report
    # the one-epoch model is never perfect: a gate at 1.0 (the highest allowed) fails it
    weak = [f"git:{trained.weak_sha}:batch_4"]
    assert run_validate(ws, weak, fail_below=1.0) == exitcodes.QUALITY_GATE
    assert "QualityGateError" in last_error(ws)
    data = json.loads(ws.comparison_report.with_suffix(".json").read_text())
    assert data["gate"] == {"fail_below": 1.0, "status": "failed"}
    assert "**FAILED**" in ws.comparison_report.read_text()
    assert (ws.stamps_dir / "Validate.json").read_text() == stamp  # failed: not stamped
    assert run_validate(ws, revisions, fail_below=0.01) == exitcodes.OK


def test_validate_without_spectrograms_says_what_to_run(
    tmp_path, monkeypatch, capsys, new_workspace
):
    ws = new_workspace(tmp_path / "empty")
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv(WORKSPACE_ENV, str(ws.root))
    monkeypatch.setenv("KWSOPS_RUN_DIR", "")  # recorded, so the value the runner sets is undone
    assert run_validate(ws, ["workspace:batch_4"]) == exitcodes.BAD_CONFIG  # before any run
    err = capsys.readouterr().err
    assert "data/spec_ds" in err and "kwsops run" in err and not ws.runs_dir.exists()
    assert not ws.comparison_report.exists()


def test_real_report_is_safe_and_kwsops_report_shows_its_numbers(compared, capsys):
    from kwsops.cli.main import main
    from kwsops.text import clean_text, escape_md

    trained, data = compared
    md = trained.ws.comparison_report.read_text()
    assert "\x1b" not in md and escape_md(EVIL, 60) in md
    assert clean_text(EVIL) in data["test"]["labels"][2:] or EVIL in data["test"]["labels"]
    assert main(["-C", str(trained.ws.root), "report"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[2J" not in out
    flat = " ".join(out.split())
    for block in md.split("### Per class")[1:]:
        for row in block.split("\n\n")[1].splitlines()[2:]:
            numbers = [cell.strip() for cell in row.strip("|").split("|")[-4:]]
            assert " ".join(numbers) in flat, row


def comparison(ws: Workspace) -> dict:
    return json.loads(ws.comparison_report.with_suffix(".json").read_text())


@pytest.mark.slow
def test_kwsops_run_ends_with_validate_and_compares_two_runs_as_git_revisions(demo_ran, tmp_path):
    # the first run is the session's (tests/conftest.py), at the workspace's default rate
    ws = clone_workspace(demo_ran.root, tmp_path / "ws")
    defaults = configparser.ConfigParser(interpolation=None)
    defaults.read(ws.luigi_cfg)
    first_rate = float(defaults["Train"]["learning_rate"])
    assert first_rate != 0.003
    base = ("run", "--quiet", "--batch-sizes", "16", "--epochs", "1", "--folds", "2")
    assert [r["spec"] for r in comparison(ws)["revisions"]] == ["workspace:batch_16"]
    revisions = ("--revisions", "git:HEAD~1:batch_16", "git:HEAD:batch_16")
    run_cli(ws, *base, "--learning-rate", "0.003", *revisions)  # HEAD: this run's commit
    data = comparison(ws)
    heads = [
        subprocess.run(["git", "rev-parse", rev], cwd=ws.root, capture_output=True, text=True,
                       check=True).stdout.strip()
        for rev in ("HEAD~1", "HEAD")
    ]  # fmt: skip
    revs = {r["spec"]: r for r in data["revisions"]}
    # the new models are always compared; the revisions asked for are added to them
    assert set(revs) == {"workspace:batch_16", *(f"git:{sha}:batch_16" for sha in heads)}
    assert revs[f"git:{heads[0]}:batch_16"]["params"]["learning_rate"] == first_rate
    assert revs[f"git:{heads[1]}:batch_16"]["params"]["learning_rate"] == 0.003
    assert data["differing_params"] == ["learning_rate"]
    md = ws.comparison_report.read_text()
    assert len(re.findall(r"^## \d\. git:", md, flags=re.M)) == 2 and "learning\\_rate" in md
    words = [label for label in data["test"]["labels"] if not label.startswith("_")]
    assert len(words) == 6 and "_silence_" in data["test"]["labels"] and data["test"]["clips"] > 0

    # headless, defaults from luigi.cfg: only Validate is stale; its quality gate fails the run
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ws.luigi_cfg)
    cfg["VersionModels"]["batch_sizes"] = "[16]"
    cfg["Train"].update(epochs="1", folds="2", learning_rate="0.003")
    cfg["Validate"].update(
        fail_below="1.0", revisions='["git:HEAD~1:batch_16", "workspace:batch_16"]'
    )
    with ws.luigi_cfg.open("w") as handle:
        cfg.write(handle)
    luigi = subprocess.run([tool("luigi"), "--module", "tasks", "Validate"], cwd=ws.root,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert luigi.returncode != 0, luigi.stderr[-2000:]
    data = comparison(ws)
    assert data["gate"]["status"] == "failed"
    assert sorted(r["spec"] for r in data["revisions"]) == [
        f"git:{heads[0]}:batch_16",
        "workspace:batch_16",
    ]
    events = (sorted(ws.runs_dir.iterdir())[-1] / "events.jsonl").read_text()
    assert '"origin": "luigi"' in events and "QualityGateError" in events
