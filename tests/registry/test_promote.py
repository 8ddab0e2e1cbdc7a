"""`kwsops promote` / `kwsops registry`: GTO tags that gto's own API reads back, and the
production stage as the default revision of predict."""

from __future__ import annotations

import subprocess

from gto import api as gto_api

from kwsops import exitcodes
from kwsops.cli.main import main
from kwsops.compare.predict import default_revision
from kwsops.versioning.runner import run_git, tool
from tests.helpers.trained import Trained


def tags(ws) -> set[str]:
    return set(run_git(ws.root, ["tag", "-l"]).stdout.split())


def test_promoted_versions_and_stages_are_gto_tags_gto_reads(trained_copy: Trained, capsys):
    ws = trained_copy.ws
    weak = f"git:{trained_copy.weak_sha}:batch_4"
    assert main(["promote", weak, "--stage", "staging", "--version", "1.0.0", "--no-export"]) == 0
    assert main(["promote", "workspace:batch_4", "--no-export"]) == 0  # HEAD: strong, committed
    assert {"kws@v1.0.0", "kws@v1.1.0", "kws#staging#1", "kws#production#2"} <= tags(ws)

    shown = {v["version"]: v for v in gto_api.show(str(ws.root), "kws")}
    assert shown["v1.0.0"]["commit_hexsha"] == trained_copy.weak_sha
    assert shown["v1.1.0"]["commit_hexsha"] == trained_copy.strong_sha
    assert [s["stage"] for s in shown["v1.0.0"]["stages"]] == ["staging"]
    (production,) = gto_api.find_versions_in_stage(str(ws.root), "kws", "production")
    assert production.version == "v1.1.0"
    table = subprocess.run([tool("gto"), "show"], cwd=ws.root, capture_output=True, text=True)
    assert table.returncode == 0 and "v1.1.0" in table.stdout, table.stderr

    # a second revision on one commit (a ClearML revision is tagged on HEAD, which holds
    # v1.1.0) gets a commit of its own with the same tree: GTO's one version per commit
    assert main(["promote", f"clearml:{trained_copy.strong_task}", "--no-export"]) == 0
    (third,) = [v for v in gto_api.show(str(ws.root), "kws") if v["version"] == "v1.2.0"]
    own = third["commit_hexsha"]
    assert own != trained_copy.strong_sha
    tree = run_git(ws.root, ["rev-parse", f"{own}^{{tree}}", f"{trained_copy.strong_sha}^{{tree}}"])
    assert len(set(tree.stdout.split())) == 1  # the same models, on a commit of its own
    capsys.readouterr()
    assert main(["registry"]) == 0
    out = capsys.readouterr().out
    assert "kws@v1.1.0" in out and "production" in out and "staging" in out


def test_promoting_twice_reuses_the_version_and_moves_the_stage(trained_copy: Trained, capsys):
    ws = trained_copy.ws
    weak = f"git:{trained_copy.weak_sha}:batch_4"
    strong = f"git:{trained_copy.strong_sha}:batch_4"
    assert main(["promote", weak, "--no-export"]) == 0
    assert main(["promote", strong, "--no-export"]) == 0
    assert main(["promote", weak, "--no-export"]) == 0  # back: v1.0.0 again, no new version
    versions = gto_api.show(str(ws.root), "kws")
    assert sorted(v["version"] for v in versions) == ["v1.0.0", "v1.1.0"]
    # the latest assignment holds the stage, as `gto show` reads it
    assert gto_api.show(str(ws.root))["kws"]["stage"]["production"] == "v1.0.0"


def test_predict_uses_the_production_version_when_there_is_one(trained_copy: Trained, capsys):
    ws = trained_copy.ws
    clip = str(next((ws.output_dir).glob("catch/*.wav")))
    before = default_revision(ws)
    assert "@" not in before  # no registry yet: the best of the report, or the workspace
    assert main(["promote", f"git:{trained_copy.weak_sha}:batch_4", "--no-export"]) == 0
    assert default_revision(ws) == "kws@v1.0.0"
    capsys.readouterr()
    assert main(["predict", clip]) == 0
    assert "revision kws@v1.0.0 (production)" in capsys.readouterr().err

    assert main(["promote", f"git:{trained_copy.strong_sha}:batch_4", "--no-export"]) == 0
    assert default_revision(ws) == "kws@v1.1.0"
    capsys.readouterr()
    assert main(["predict", clip]) == 0
    assert "revision kws@v1.1.0 (production)" in capsys.readouterr().err
    # a version, or a stage, is a revision everywhere the comparison takes one
    assert main(["predict", "--revision", "kws#production", clip]) == 0
    assert main(["predict", "--revision", "kws@v1.0.0", clip]) == 0


def test_bad_stage_version_or_revision_is_one_line_and_exit_4(trained_copy: Trained, capsys):
    ws = trained_copy.ws
    assert main(["promote", "workspace:batch_4", "--stage", "Prod uction", "--no-export"]) == 4
    assert main(["promote", "workspace:batch_4", "--version", "1.x", "--no-export"]) == 4
    assert main(["promote", "workspace:batch_999", "--no-export"]) == exitcodes.BAD_CONFIG
    assert main(["predict", "--revision", "kws@v9.9.9", "x.wav"]) == exitcodes.BAD_CONFIG
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 4, err
    assert "stage 'Prod uction'" in lines[0] and "version '1.x'" in lines[1]
    assert "batch_999" in lines[2] and "kws@v9.9.9" in lines[3]
    assert tags(ws) == set()


def test_a_runs_comparison_includes_and_marks_the_production_version(trained_copy: Trained):
    from kwsops.compare.markdown import open_lines
    from kwsops.compare.model import Origin, from_json
    from tasks.validate import Validate

    assert Validate(batch_sizes=[4]).specs() == ["workspace:batch_4"]
    assert main(["promote", f"git:{trained_copy.weak_sha}:batch_4", "--no-export"]) == 0
    validate = Validate(batch_sizes=[4])
    assert validate.specs() == ["workspace:batch_4", "kws#production"]
    new, production = validate.resolve()
    assert production.spec == f"git:{trained_copy.weak_sha}:batch_4"
    assert production.origin["registry"] == "kws@v1.0.0 (production)"
    assert "- registry version **kws@v1.0.0 (production)**" in open_lines(
        from_json(Origin, production.origin)
    )
    # promoting another version changes what Validate compares, so its key: it runs again
    before = validate.key_inputs()
    assert main(["promote", f"git:{trained_copy.strong_sha}:batch_4", "--no-export"]) == 0
    assert Validate(batch_sizes=[4]).key_inputs() != before


def test_promote_waits_for_no_run_and_registry_shows_the_comparisons_scores(
    trained_copy: Trained, capsys
):
    import json

    from kwsops.runs.lock import WorkspaceLock
    from tests.helpers.comparison import make_comparison

    ws = trained_copy.ws
    weak = f"git:{trained_copy.weak_sha}:batch_4"
    with WorkspaceLock(ws.lock_file).held("20261207-000000-abcd"):
        assert main(["promote", weak, "--no-export"]) == exitcodes.ALREADY_RUNNING
    assert tags(ws) == set()
    assert "another kwsops run is active" in capsys.readouterr().err

    # the miss rate is shown when the comparison has it, "—" when not
    ws.reports_dir.mkdir(parents=True, exist_ok=True)
    comparison = make_comparison()  # as Validate writes it; the weak one has spotting figures
    strong, weak_rev = comparison["revisions"]
    strong["spec"] = f"git:{trained_copy.strong_sha}:batch_4"
    strong["ensemble_accuracy"]["mean"] = 0.95
    weak_rev["spec"] = weak_rev["requested"] = weak
    weak_rev["ensemble_accuracy"]["mean"] = 0.875
    figures = {
        "threshold": 0.5,
        "miss_rate": 0.125,
        "words": 8,
        "false_alarms": 0,
        "negative_minutes": 1.0,
        "false_alarms_per_hour": 0.0,
        "interval": [0.0, 1.0],
    }
    weak_rev["spotting"] = {
        "budget": 1.0,
        "threshold": 0.5,
        "threshold_from": "default",
        "clip_seconds": 2.6,
        "at_budget": figures,
        "at_default": figures,
    }
    ws.comparison_report.with_suffix(".json").write_text(json.dumps(comparison))
    assert main(["promote", weak, "--no-export"]) == 0
    assert main(["promote", f"git:{trained_copy.strong_sha}:batch_4", "--stage", "staging",
                 "--no-export"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["registry"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "87.5 %" in rows["kws@v1.0.0"] and "12.5 %" in rows["kws@v1.0.0"]
    assert "95.0 %" in rows["kws@v1.1.0"] and "—" in rows["kws@v1.1.0"]
