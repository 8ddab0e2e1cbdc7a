"""kwsops.runs.request: the one check of a run's parameters, its command line and params.json;
and the task states a cancel leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from kwsops.runs.request import RequestError, RunRequest, kind_of, params_line
from kwsops.runs.state import RunState


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_sizes": [16, 0]}, "--batch-sizes 16 0: must be an integer from 1 to 4096"),
        ({"batch_sizes": []}, "--batch-sizes: choose at least one batch size"),
        ({"epochs": 0}, "--epochs 0: must be an integer from 1 to 10000"),
        ({"folds": 1}, "--folds 1: must be an integer from 2 to 100"),
        ({"learning_rate": -5.0}, "--learning-rate -5: must be a number above 0 and at most 1"),
        ({"learning_rate": 0.0}, "--learning-rate 0: must be a number above 0"),
        ({"fail_below": 1.5}, "--fail-below 1.5: must be a number from 0 to 1"),
        ({"revisions": ["bogus"]}, "--revisions bogus: use workspace:batch_32"),
        ({"revisions": ["last:0"]}, "--revisions last:0: use"),
        ({"precision": "half"}, "--precision half: use one of auto, float32, bfloat16"),
    ],
)
def test_each_bad_value_is_named_with_its_range(changes: dict, message: str) -> None:
    with pytest.raises(RequestError, match="^" + message.replace("(", r"\(")) as caught:
        RunRequest(**changes).check()
    assert caught.value.exit_code == 4 and "\n" not in str(caught.value)


def test_a_value_from_luigi_cfg_is_named_by_its_option() -> None:
    asked = RunRequest(batch_sizes=[16])  # the user set only the batch sizes
    resolved = RunRequest(batch_sizes=[16], epochs=0, asked=asked.asked)
    with pytest.raises(RequestError, match=r"^luigi\.cfg \[Train\] epochs = 0: must be"):
        resolved.check()
    assert RunRequest(epochs=3, folds=2).check().epochs == 3


def test_run_and_validate_command_lines_round_trip_through_params_json() -> None:
    run = RunRequest(batch_sizes=[16, 64], epochs=2, folds=3, learning_rate=0.0005, seed=7,
                     revisions=["workspace:batch_32"], fail_below=0.0, workers=2, run_id="RID",
                     origin="tui")  # fmt: skip
    assert run.arguments() == [
        "run", "--batch-sizes", "16", "64", "--epochs", "2", "--folds", "3",
        "--learning-rate", "0.0005", "--seed", "7", "--revisions", "workspace:batch_32",
        "--fail-below", "0", "--workers", "2", "--run-id", "RID", "--origin", "tui",
    ]  # fmt: skip
    params = {"run_id": "RID", "origin": "tui", **run.params()}
    assert params["kind"] == "run" and params["standalone"] is False
    again = RunRequest.from_params(params, rerun_of="RID")
    assert again.arguments()[:-4] == run.arguments()[:-4]  # the same, under a new run id
    assert again.kind == "rerun" and again.params()["rerun_of"] == "RID"

    validate = RunRequest(command="validate", revisions=["git:HEAD:batch_16"], epochs=9)
    assert validate.arguments() == ["validate", "--revisions", "git:HEAD:batch_16",
                                    "--origin", "cli"]  # fmt: skip
    assert "epochs" not in validate.params()  # a comparison trains nothing
    rerun = RunRequest.from_params(validate.params(), rerun_of="X")
    assert rerun.command == "validate" and rerun.standalone

    spread = RunRequest(batch_sizes=[16], fold_tasks=True)  # one TrainFold task per fold
    assert spread.arguments()[:4] == ["run", "--batch-sizes", "16", "--fold-tasks"]
    assert RunRequest.from_params(spread.params()).fold_tasks is True
    assert "fold_tasks" not in RunRequest(command="validate", fold_tasks=True).params()


def test_older_and_foreign_params_json() -> None:
    old = {"target": "Validate", "standalone": True, "revisions": ["last:2"], "run_id": "A"}
    assert RunRequest.from_params(old).command == "validate"
    assert kind_of(old) == "validate" and kind_of({"argv": ["--module", "tasks"]}) == "luigi"
    with pytest.raises(RequestError, match="started as `luigi --module tasks Validate`"):
        RunRequest.from_params({"argv": ["--module", "tasks", "Validate"], "run_id": "B"})


def test_params_line_never_cuts_a_value() -> None:
    params = {"batch_sizes": [16, 32], "epochs": 40, "folds": 5, "learning_rate": 0.005,
              "revisions": ["git:abc:batch_16"]}  # fmt: skip
    assert params_line(params) == "bs 16,32 · ep 40 · folds 5 · lr 0.005 · +1 rev"
    assert params_line({"kind": "validate", "revisions": ["last:2"]}) == "compare last:2"


def test_a_cancelled_task_reads_cancelled_not_failed() -> None:
    events = [
        {"event": "task_started", "ts": 1.0, "task": "T", "family": "TrainFold",
         "params": {"batch_size": "16", "fold": "0"}},
        {"event": "task_progress", "ts": 1.5, "task": "T", "family": "TrainFold",
         "metrics": {"epoch": 1, "val_acc": 0.5, "val_loss": 1.2}},
        {"event": "task_failed", "ts": 2.0, "task": "T", "family": "TrainFold",
         "duration": 1.0, "error": "cancelled by SIGTERM", "cancelled": True},
    ]  # fmt: skip
    state = RunState().apply_all(events)
    task = state.tasks["T"]
    assert task.status == "cancelled" and state.failed() == []
    assert task.label == "TrainFold batch 16 fold 0"
    assert task.curve == [{"epoch": 1, "val_acc": 0.5, "val_loss": 1.2}]


def test_a_target_before_validate_keeps_the_batch_sizes_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kwsops run --target VersionModels --batch-sizes 16 32` trains 16 and 32, not luigi.cfg's."""
    import luigi.configuration

    from tasks.luigi_config import resolve

    monkeypatch.chdir(tmp_path)  # no luigi.cfg: the tasks' defaults (16, 32, 64)
    config = luigi.configuration.get_config()
    config.clear()  # nothing another test read into this process stays (read() only adds)
    config.reload()
    asked = RunRequest(target="VersionModels", batch_sizes=[16, 32])
    assert resolve(asked).batch_sizes == [16, 32]
    assert resolve(RunRequest(target="VersionModels")).batch_sizes == [16, 32, 64]
    assert resolve(RunRequest(batch_sizes=[64])).batch_sizes == [64]


def test_the_training_precision_is_resolved_recorded_and_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--precision goes to [Train] precision like every training flag: params.json records the
    value Luigi resolved (luigi.cfg's or the default), a rerun asks for it again, and a value
    luigi.cfg cannot mean stops the run before anything is recorded."""
    from tasks.luigi_config import resolve

    monkeypatch.chdir(tmp_path)
    assert resolve(RunRequest(batch_sizes=[16])).precision == "auto"
    chosen = resolve(RunRequest(batch_sizes=[16], precision="float32"))
    assert chosen.params()["precision"] == "float32"
    assert chosen.arguments()[chosen.arguments().index("--precision") + 1] == "float32"
    assert RunRequest.from_params(chosen.params()).precision == "float32"
    assert "precision" not in RunRequest(command="validate", precision="bfloat16").params()

    assert resolve(RunRequest(batch_sizes=[16])).fold_tasks is None  # stacked, the default
    import luigi.configuration

    config = tmp_path / "luigi.cfg"
    try:
        config.write_text("[Train]\nstacked = false\nprecision = float32\n")
        luigi.configuration.get_config().reload()
        spread = resolve(RunRequest(batch_sizes=[16]))
        assert (spread.fold_tasks, spread.precision) == (True, "float32")  # as a rerun asks
        assert "--fold-tasks" in spread.arguments()

        config.write_text("[Train]\nprecision = half\n")
        luigi.configuration.get_config().reload()
        with pytest.raises(
            RequestError, match=r"^luigi\.cfg \[Train\] precision = half: use one of"
        ):
            resolve(RunRequest(batch_sizes=[16]))
    finally:
        config.unlink()
        luigi.configuration.get_config().clear()  # reload() alone keeps precision = half
        luigi.configuration.get_config().reload()
