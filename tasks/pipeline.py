"""The stage DAG (names as in DESIGN.md). Each task: params in, one call into kwsops.

VersionInput ─► Preprocess ─► VersionOutput ─► MakeSpectrograms ─► VersionSpectrograms
  ─► [TrainFold(batch_size, fold) ×K] ─► Train(batch_size) ×N ─► VersionModels ─► Validate

Train trains its K folds itself, together (``[Train] stacked = true``, the default); with
``stacked = false`` (``kwsops run --fold-tasks``) it requires one TrainFold per fold instead,
tasks a central scheduler can spread over workers on several machines.
"""

from __future__ import annotations

import functools

import luigi

from kwsops.config import (
    AudioSettings,
    FeatureSettings,
    LayoutSettings,
    SplitSettings,
    TrainSettings,
)
from kwsops.params import TRAINING, param
from kwsops.pipeline.preprocess import preprocess_stage
from kwsops.pipeline.result import StageResult
from kwsops.pipeline.spectrograms import spectrogram_stage
from kwsops.pipeline.train import collect_folds_stage, train_fold_stage, train_folds_stage
from kwsops.pipeline.version import (
    default_remote_id,
    output_intact,
    pending_commit,
    restore_stage,
    version_data_stage,
    version_models_stage,
    versioned_intact,
)
from kwsops.stamps import STAMP_NAME, digest, tree_digest
from tasks.base import KwsTask, StampTarget
from tasks.params import declare, luigi_parameter


class StageTask(KwsTask):
    versioned_as: tuple[str, str] = ("", "")  # (Version* task family, its folder): see intact

    def finish(self, result: StageResult) -> None:
        self.summary(result.detail, **result.summary)

    def part(self) -> str:
        """Which part of the versioned folder this stage writes ('' for all of it)."""
        return ""

    def intact(self) -> bool:
        family, target = self.versioned_as
        if not family:
            return True
        return output_intact(self.ws, self.ws.stamps_dir / f"{family}.json", target, self.part())

    def restored(self) -> bool:
        """Before computing: the output back from the DVC cache, when it holds it for this
        key (a deleted or damaged output costs a link, not a recomputation)."""
        family, target = self.versioned_as
        result = restore_stage(self.ws, target, self.stage_key, self.part()) if family else None
        if result is not None:
            self.finish(result)
        return result is not None


class VersionTask(StageTask):
    """`dvc add` + `dvc push` of one data folder."""

    target = ""
    preloads = False  # runs dvc only: nothing for the runner to import before forking

    @functools.cached_property
    def version_key(self) -> str:
        """Done for this content and this remote: selecting another remote pushes there once.
        The remote stays out of ``stage_key``, so no downstream stage reruns because of it
        (a fresh clone pushing to another remote reuses every pulled output)."""
        return digest({"stage": self.stage_key, "remote": default_remote_id(self.ws)})

    def output(self) -> StampTarget:
        return StampTarget(self.ws.stamps_dir / f"{self.task_family}.json", self.version_key)

    def linked(self) -> bool:
        return True

    def present(self) -> bool:
        """The folder and its .dvc file (the stamp is this machine's: a clone has none)."""
        return (self.ws.root / self.target).is_dir() and (
            self.ws.root / f"{self.target}.dvc"
        ).is_file()

    def intact(self) -> bool:
        return versioned_intact(self.ws, self.target, self.output().stamp_file)

    def run(self) -> None:
        if self.skip_if_done():
            return
        self.progress(0, 1, f"dvc add + push {self.target}")
        stamp = self.output().stamp_file
        self.finish(
            version_data_stage(self.ws, self.target, self.version_key, stamp, link=self.linked())
        )


@declare("VersionInput")  # link: how the cache stores them, not what they are (not significant)
class VersionInput(VersionTask):
    """Version the user's raw recordings, so every model traces back to them."""

    target = "data/input"

    def linked(self) -> bool:
        return self.link

    def key_inputs(self) -> dict:
        cache = self.ws.cache_dir / "input-hashes.json"
        return {"input": tree_digest(self.ws.input_dir, cache)}


# processes, not `workers`: Luigi's command line already has --workers (its worker count)
@declare("Preprocess")
class Preprocess(StageTask):
    versioned_as = ("VersionOutput", "data/output")

    def layout(self) -> LayoutSettings:
        return LayoutSettings(tuple(self.labels), self.speaker_pattern, self.unknown_words)

    def requires(self) -> VersionInput:
        return VersionInput()

    def output(self) -> StampTarget:
        return StampTarget(self.ws.output_dir / STAMP_NAME, self.stage_key)

    def run(self) -> None:
        if self.skip_if_done() or self.restored():
            return
        audio = AudioSettings(sample_rate=self.sample_rate, clip_seconds=self.clip_seconds)
        self.finish(
            preprocess_stage(
                self.ws,
                self.stage_key,
                audio,
                layout=self.layout(),
                workers=self.processes,
                seed=self.seed,
                progress=self.progress,
            )
        )


class VersionOutput(VersionTask):
    target = "data/output"

    def requires(self) -> Preprocess:
        return Preprocess()


@declare("MakeSpectrograms")
class MakeSpectrograms(StageTask):
    versioned_as = ("VersionSpectrograms", "data/spec_ds")

    def requires(self) -> VersionOutput:
        return VersionOutput()

    def output(self) -> StampTarget:
        return StampTarget(self.ws.spec_dir / STAMP_NAME, self.stage_key)

    def run(self) -> None:
        if self.skip_if_done() or self.restored():
            return
        upstream = Preprocess()
        features = FeatureSettings(sample_rate=upstream.sample_rate, n_mels=self.n_mels)
        split = SplitSettings(test_size=self.test_size, seed=self.seed)
        self.finish(
            spectrogram_stage(
                self.ws,
                self.stage_key,
                features,
                split,
                folds=training_folds(),
                expected_labels=tuple(upstream.labels),
                progress=self.progress,
            )
        )


class VersionSpectrograms(VersionTask):
    target = "data/spec_ds"

    def requires(self) -> MakeSpectrograms:
        return MakeSpectrograms()


@declare("Train", skip=("stacked",))
class TrainParams:
    """The training parameters Train and TrainFold share (kwsops.params, [Train]). Train passes
    them on with ``clone`` (Luigi's way to hand a task's parameters to the tasks it requires),
    so [Train] in luigi.cfg or a flag sets them for every fold."""

    batch_size = luigi.IntParameter()

    def training_params(self) -> dict:
        """What a model revision is trained with, beyond its batch size."""
        return {name: getattr(self, name) for name in TRAINING}

    def settings(self) -> TrainSettings:
        return TrainSettings(batch_size=self.batch_size, **self.training_params())


def training_folds() -> int:
    """The folds Train will use, as Luigi resolves them (flag, luigi.cfg [Train], default):
    MakeSpectrograms checks the clips against them before any fold trains."""
    values = dict(Train.get_param_values(Train.get_params(), [], {"batch_size": 0}))
    return int(values["folds"])


def false_alarm_budget() -> float:
    """``[Validate] false_alarms_per_hour`` as Luigi resolves it (flag, luigi.cfg, default):
    Train chooses the operating point it keeps with the models for it."""
    # by name: tasks.validate imports this module (Validate requires VersionModels)
    validate = luigi.task_register.Register.get_task_cls("Validate")
    values = dict(validate.get_param_values(validate.get_params(), [], {}))
    return float(values["false_alarms_per_hour"])


class TrainFold(TrainParams, StageTask):
    fold = luigi.IntParameter()
    versioned_as = ("VersionModels", "data/models")

    def part(self) -> str:
        return f"batch_{self.batch_size}/fold_{self.fold}/"

    def requires(self) -> VersionSpectrograms:
        return VersionSpectrograms()

    def output(self) -> StampTarget:
        folder = self.ws.batch_dir(self.batch_size) / f"fold_{self.fold}"
        return StampTarget(folder / STAMP_NAME, self.stage_key)

    def run(self) -> None:
        if self.skip_if_done() or self.restored():
            return
        self.finish(
            train_fold_stage(
                self.ws,
                self.stage_key,
                self.settings(),
                self.fold,
                progress=self.progress,
                on_epoch=self.epoch_metrics,
            )
        )


class Train(TrainParams, StageTask):
    # not significant: the same models either way, switching retrains nothing
    stacked = luigi_parameter(param("Train", "stacked"))

    versioned_as = ("VersionModels", "data/models")

    def part(self) -> str:
        return f"batch_{self.batch_size}/"

    def fold_tasks(self) -> list[TrainFold]:
        return [self.clone(TrainFold, fold=k) for k in range(self.folds)]

    def requires(self) -> list[TrainFold] | VersionSpectrograms:
        return VersionSpectrograms() if self.stacked else self.fold_tasks()

    def key_upstream(self) -> list[luigi.Task]:
        return self.fold_tasks()  # in both modes: a fold trained one way is done the other

    def key_inputs(self) -> dict:
        # the operating point is chosen for this budget: a new budget reruns the collection
        # only (the folds' keys do not change)
        return {"false_alarms_per_hour": false_alarm_budget()}

    def output(self) -> StampTarget:
        return StampTarget(self.ws.batch_dir(self.batch_size) / STAMP_NAME, self.stage_key)

    def run(self) -> None:
        if self.skip_if_done() or self.restored():
            return
        if self.stacked:
            todo = {task.fold: task.stage_key for task in self.fold_tasks()
                    if not task.up_to_date()}  # fmt: skip
            if todo:
                train_folds_stage(self.ws, todo, self.settings(), progress=self.progress,
                                  on_epoch=self.fold_epoch)  # fmt: skip
        self.finish(
            collect_folds_stage(
                self.ws,
                self.stage_key,
                self.settings(),
                stamp_file=self.output().stamp_file,
                budget=false_alarm_budget(),
            )
        )

    def fold_epoch(self, fold: int, epoch: int, row: dict) -> None:
        self.epoch_metrics(epoch, row, fold=fold)


@declare("VersionModels")
class VersionModels(VersionTask):
    target = "data/models"

    def requires(self) -> list[Train]:
        return [Train(batch_size=int(size)) for size in self.batch_sizes]

    def up_to_date(self) -> bool:
        # a stamp whose git commit is missing (an older kwsops stamped before committing)
        # is not done: the next run makes the commit
        return super().up_to_date() and not pending_commit(self.ws)

    def run(self) -> None:
        if self.skip_if_done():
            return
        params = self.requires()[0].training_params()
        self.progress(0, 1, "dvc add + push data/models, git commit")
        self.finish(
            version_models_stage(
                self.ws,
                self.version_key,
                self.output().stamp_file,
                [int(b) for b in self.batch_sizes],
                params,
            )
        )
