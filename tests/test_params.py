"""kwsops.params: one declaration per run parameter, and what derives from it: the Luigi tasks'
parameters, the flags, the request check, the luigi.cfg check and the template."""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from pathlib import Path

import luigi.configuration
import pytest

from kwsops.params import PARAMS, REQUEST, param
from kwsops.runs.request import RequestError, RunRequest
from kwsops.versioning.init import luigi_cfg_template
from kwsops.workspace import Workspace
from tests.helpers.cli import REPO, run_cli


@pytest.fixture
def luigi_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Write luigi.cfg in a fresh folder and have Luigi read only it; restored afterwards."""
    monkeypatch.chdir(tmp_path)
    config = luigi.configuration.get_config()

    def write(text: str) -> None:
        (tmp_path / "luigi.cfg").write_text(text)
        config.clear()
        config.reload()

    yield write
    (tmp_path / "luigi.cfg").unlink(missing_ok=True)
    config.clear()
    config.reload()


def test_the_template_writes_every_declared_default_and_the_repo_uses_it() -> None:
    """kwsops/templates/luigi.cfg and the declaration agree; the repo's luigi.cfg is that file."""
    text = luigi_cfg_template()
    assert (REPO / "luigi.cfg").read_text() == text
    config = configparser.ConfigParser()
    config.read_string(text)
    declared = {(p.section, p.name) for p in PARAMS}
    for p in PARAMS:
        if p.section == "core" and p.name != "workers":
            continue  # the scheduler's port: Luigi's own default, shown as a comment
        value = p.parse(config.get(p.section, p.name))
        assert value == p.default, p.option
    stages = [s for s in config.sections() if s not in ("core", "retcode")]
    for section in stages:
        for option in config.options(section):
            assert (section, option) in declared, f"[{section}] {option} is not declared"


def test_the_template_passes_the_check(luigi_cfg) -> None:
    from tasks.luigi_config import check_config

    luigi_cfg(luigi_cfg_template())
    check_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Preprocess]\nlabels = [catch, gun]\n",
         'luigi.cfg [Preprocess] labels = [catch, gun]: expected a JSON list such as ["catch", "gun"]'),
        ("[Preprocess]\nspeaker_pattern = ^(?P<speaker>[^-]+)%-\n",
         "luigi.cfg [Preprocess] speaker_pattern = ^(?P<speaker>[^-]+)%-: a bare % (write % as %%)"),
        ("[Train]\nepoch = 5\n", "luigi.cfg [Train] epoch: Train has no such option; did you mean epochs?"),
        ("[Preprocess]\nworkers = 2\n", "luigi.cfg [Preprocess] workers: Preprocess has no such option; it is processes now"),
        ("[Trian]\nepochs = 5\n", "luigi.cfg [Trian]: no such section; did you mean [Train]?"),
        ("[MakeSpectrograms]\ntest_size = 0\n",
         "luigi.cfg [MakeSpectrograms] test_size = 0: must be a number above 0 and at most 0.5"),
        ("[MakeSpectrograms]\ntest_size = -0.5\n", "test_size = -0.5: must be a number above 0"),
        ("[MakeSpectrograms]\ntest_size = 1.0\n", "test_size = 1.0: must be a number above 0"),
        ("[MakeSpectrograms]\ntest_size = 10\n", "test_size = 10: must be"),
        ("[MakeSpectrograms]\ntest_size = 500\n", "test_size = 500: must be"),
        ("[MakeSpectrograms]\nn_mels = 0\n", "n_mels = 0: must be an integer from 8 to 256"),
        ("[Preprocess]\nprocesses = 0\n", "processes = 0: must be an integer from 1 to 256"),
        ("[Preprocess]\nclip_seconds = 0\n", "clip_seconds = 0: must be a number above 0"),
        ("[Train]\nlearning-rate = 0\n", "[Train] learning_rate = 0: must be a number above 0"),
        ("[Train]\nepochs = 1.5\n", "[Train] epochs = 1.5: expected an integer from 1 to 10000"),
        ("[Train]\nseed = -1\n", "[Train] seed = -1: must be an integer from 0 to 4294967295"),
        ("[Train]\nstacked = maybe\n", "[Train] stacked = maybe: expected true or false"),
        ("[Validate]\nfail_below = 2\n", "fail_below = 2: must be a number from 0 to 1"),
        ("[VersionModels]\nbatch_sizes = [16, 16]\n", "batch_sizes = [16, 16]: 16 named twice"),
        ("[core]\nworkers = 0\n", "luigi.cfg [core] workers = 0: must be an integer from 1 to 256"),
    ],
)  # fmt: skip
def test_a_luigi_cfg_mistake_is_named_on_one_line(luigi_cfg, text: str, message: str) -> None:
    from tasks.luigi_config import check_config

    luigi_cfg(text)
    with pytest.raises(RequestError) as caught:
        check_config()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 4


def test_luigis_own_sections_and_good_values_pass(luigi_cfg) -> None:
    from tasks.luigi_config import check_config, resolve

    luigi_cfg(
        "[core]\nworkers = 1\ndefault_scheduler_port = 8083\n[worker]\nkeep_alive = true\n"
        "[scheduler]\nretry_delay = 5\n[retcode]\ntask_failed = 1\n[logging]\nversion = 1\n"
        "[resources]\ngpu = 1\n[email]\nformat = plain\n[MakeSpectrograms]\ntest_size = 0.2\n"
        '[Preprocess]\nspeaker_pattern = ^(?P<speaker>[^-]+)%%-\nlabels = ["catch"]\n'
        "[Train]\nepochs = 4\nlearning-rate = 0.01\n"
    )
    check_config()
    resolved = resolve(RunRequest(batch_sizes=[16]))
    assert (resolved.epochs, resolved.learning_rate) == (4, 0.01)


def test_a_flag_overrides_a_luigi_cfg_value(luigi_cfg) -> None:
    from tasks.luigi_config import resolve

    luigi_cfg("[Train]\nepochs = 4\nlearning_rate = 0.01\n")
    resolved = resolve(RunRequest(batch_sizes=[16], epochs=2))
    assert (resolved.epochs, resolved.learning_rate) == (2, 0.01)


def test_every_numeric_option_has_a_range_and_luigi_checks_it_too(luigi_cfg) -> None:
    """`luigi --module tasks` reads the same declaration: its parameters refuse what
    `kwsops run` refuses."""
    import tasks

    for p in PARAMS:
        if p.number_kind is not None:
            assert p.low is not None and p.high is not None, p.option
    luigi_cfg("[MakeSpectrograms]\ntest_size = 0\n")
    with pytest.raises(ValueError, match="test_size") as caught:
        tasks.MakeSpectrograms()
    assert "not in the set of float in (0.0, 0.5]" in str(caught.value.__cause__)


def test_the_seed_range_is_printed_as_integers() -> None:
    assert REQUEST["seed"].describe() == "an integer from 0 to 4294967295"
    assert param("MakeSpectrograms", "test_size").describe() == "a number above 0 and at most 0.5"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, new_workspace) -> Workspace:
    return new_workspace(tmp_path_factory.mktemp("params") / "ws")


def recorded_runs(ws: Workspace) -> list[Path]:
    return sorted(ws.runs_dir.iterdir()) if ws.runs_dir.is_dir() else []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--epochs", "1.5"), "kwsops: --epochs 1.5: must be an integer from 1 to 10000"),
        (("run", "--learning-rate", "abc"), "kwsops: --learning-rate abc: must be a number"),
        (("run", "--batch-sizes", "16", "16"), "kwsops: --batch-sizes 16 16: 16 named twice"),
        (("run", "--precision", "half"), "kwsops: --precision half: use one of auto, float32"),
        (("runs", "--status", "bogus"), "kwsops: argument --status: invalid choice: 'bogus'"),
        (("run", "--revisions", "git:nope:batch_16"),
         "kwsops: revision git:nope:batch_16: git revision 'nope' not found"),
    ],
)  # fmt: skip
def test_a_bad_flag_is_one_line(workspace: Workspace, args: tuple, message: str) -> None:
    result = run_cli(workspace, *args, check=False)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert "usage:" not in result.stderr and result.returncode in (2, 4)
    assert recorded_runs(workspace) == []


def test_a_luigi_cfg_mistake_stops_kwsops_run_before_anything_is_recorded(
    workspace: Workspace,
) -> None:
    template = workspace.luigi_cfg.read_text()
    try:
        for mistake, message in (
            ("labels = []", "luigi.cfg [Preprocess] labels = [catch, gun]: expected a JSON list"),
            ("epochs = 30", "luigi.cfg [Train] epoch: Train has no such option; did you mean"),
            ("test_size = 0.1", "luigi.cfg [MakeSpectrograms] test_size = 0: must be a number"),
        ):
            wrong = {"labels = []": "labels = [catch, gun]", "epochs = 30": "epoch = 5",
                     "test_size = 0.1": "test_size = 0"}[mistake]  # fmt: skip
            assert mistake in template
            workspace.luigi_cfg.write_text(template.replace(mistake, wrong))
            result = run_cli(workspace, "run", check=False)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 4 and len(lines) == 1, result.stderr
            assert message in lines[0] and "Warning" not in result.stderr
            assert recorded_runs(workspace) == []
    finally:
        workspace.luigi_cfg.write_text(template)


def test_a_revision_the_runs_own_commit_makes_waits_for_it(workspace: Workspace) -> None:
    """HEAD~1 may only exist after VersionModels commits: resolved when Validate runs. A ref
    that names nothing now is refused before anything trains."""
    from tasks.luigi_config import check_revisions

    for later in ("git:HEAD~1:batch_16", "git:HEAD:batch_32", "last:2"):
        check_revisions(workspace, RunRequest(batch_sizes=[16], revisions=[later]))
    with pytest.raises(RequestError, match="git revision 'nope' not found"):
        check_revisions(workspace, RunRequest(batch_sizes=[16], revisions=["git:nope:batch_16"]))


def test_the_seed_help_prints_the_range_as_integers(workspace: Workspace) -> None:
    result = run_cli(workspace, "run", "--help", env={"COLUMNS": "200"})
    assert "0 to 4294967295" in result.stdout and "e+09" not in result.stdout
    assert "HEAD~1" in result.stdout  # which revisions wait for the run's own commit
