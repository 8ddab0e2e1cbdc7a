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
    PRECISIONS,
    AudioSettings,
    FeatureSettings,
    LayoutSettings,
    SplitSettings,
    TrainSettings,
)
from kwsops.pipeline.preprocess import preprocess_stage
from kwsops.pipeline.result import StageResult
from kwsops.pipeline.spectrograms import spectrogram_stage
from kwsops.pipeline.train import collect_folds_stage, train_fold_stage, train_folds_stage
from kwsops.pipeline.version import (
    default_remote_id,
    pending_commit,
    version_data_stage,
    version_models_stage,
)
from kwsops.stamps import STAMP_NAME, digest, tree_digest
from tasks.base import KwsTask, StampTarget

_AUDIO = AudioSettings()
_SPLIT = SplitSettings()
_TRAIN = TrainSettings()


class StageTask(KwsTask):
    def finish(self, result: StageResult) -> None:
        self.summary(result.detail, **result.summary)


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

    def run(self) -> None:
        self.progress(0, 1, f"dvc add + push {self.target}")
        stamp = self.output().stamp_file
        self.finish(
            version_data_stage(self.ws, self.target, self.version_key, stamp, link=self.linked())
        )


class VersionInput(VersionTask):
    """Version the user's raw recordings, so every model traces back to them."""

    target = "data/input"
    link = luigi.BoolParameter(
        default=True,
        significant=False,  # how the cache stores them, not what they are: no key changes
        description="link the recordings into the DVC cache (read-only); false: a copy",
    )

    def linked(self) -> bool:
        return self.link

    def key_inputs(self) -> dict:
        cache = self.ws.cache_dir / "input-hashes.json"
        return {"input": tree_digest(self.ws.input_dir, cache)}


class Preprocess(StageTask):
    sample_rate = luigi.IntParameter(default=_AUDIO.sample_rate)
    clip_seconds = luigi.FloatParameter(default=_AUDIO.clip_seconds)
    seed = luigi.IntParameter(default=_SPLIT.seed)
    labels = luigi.ListParameter(
        default=[], description="the label folders, in any case (empty: every one found)"
    )
    speaker_pattern = luigi.Parameter(
        default="", description="regex with a group named speaker (empty: built-in namings)"
    )
    unknown_words = luigi.BoolParameter(
        default=False,
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="with labels listed: recordings in the other folders are unknown speech "
        "(_unknown_), Speech Commands' convention",
    )
    # not `workers`: Luigi's command line already has --workers (its worker count)
    processes = luigi.IntParameter(
        default=2, significant=False, description="decoding processes (the output is the same)"
    )

    def layout(self) -> LayoutSettings:
        return LayoutSettings(tuple(self.labels), self.speaker_pattern, self.unknown_words)

    def requires(self) -> VersionInput:
        return VersionInput()

    def output(self) -> StampTarget:
        return StampTarget(self.ws.output_dir / STAMP_NAME, self.stage_key)

    def run(self) -> None:
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


class MakeSpectrograms(StageTask):
    test_size = luigi.FloatParameter(default=_SPLIT.test_size)
    seed = luigi.IntParameter(default=_SPLIT.seed)
    n_mels = luigi.IntParameter(default=FeatureSettings().n_mels)

    def requires(self) -> VersionOutput:
        return VersionOutput()

    def output(self) -> StampTarget:
        return StampTarget(self.ws.spec_dir / STAMP_NAME, self.stage_key)

    def run(self) -> None:
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


class TrainParams:
    """The training parameters Train and TrainFold share, declared once. Train passes them on
    with ``clone`` (Luigi's way to hand a task's parameters to the tasks it requires), so
    [Train] in luigi.cfg or a flag sets them for every fold."""

    batch_size = luigi.IntParameter()
    epochs = luigi.IntParameter(default=_TRAIN.epochs)
    learning_rate = luigi.FloatParameter(default=_TRAIN.learning_rate)
    folds = luigi.IntParameter(default=_TRAIN.folds)
    seed = luigi.IntParameter(default=_TRAIN.seed)
    precision = luigi.ChoiceParameter(
        default=_TRAIN.precision,
        choices=PRECISIONS,
        description="compute precision of the training steps: auto (bfloat16 on a CPU that has "
        "it, else float32), float32 or bfloat16",
    )

    def training_params(self) -> dict:
        """What a model revision is trained with, beyond its batch size."""
        names = ("epochs", "learning_rate", "folds", "seed", "precision")
        return {name: getattr(self, name) for name in names}

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

    def requires(self) -> VersionSpectrograms:
        return VersionSpectrograms()

    def output(self) -> StampTarget:
        folder = self.ws.batch_dir(self.batch_size) / f"fold_{self.fold}"
        return StampTarget(folder / STAMP_NAME, self.stage_key)

    def run(self) -> None:
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
    stacked = luigi.BoolParameter(
        default=True,
        significant=False,  # the same models either way: switching retrains nothing
        parsing=luigi.BoolParameter.EXPLICIT_PARSING,
        description="train the folds together in this task; false: one TrainFold task per "
        "fold, for luigid workers on several machines",
    )

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
        if self.stacked:
            todo = {task.fold: task.stage_key for task in self.fold_tasks() if not task.complete()}
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


class VersionModels(VersionTask):
    target = "data/models"
    batch_sizes = luigi.ListParameter(default=[16, 32, 64])

    def requires(self) -> list[Train]:
        return [Train(batch_size=int(size)) for size in self.batch_sizes]

    def complete(self) -> bool:
        # a stamp whose git commit is missing (an older kwsops stamped before committing)
        # is not done: the next run makes the commit
        return super().complete() and not pending_commit(self.ws)

    def run(self) -> None:
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
