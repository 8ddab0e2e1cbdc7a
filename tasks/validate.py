"""Validate: the last stage. Compares model revisions into reports/comparison_versions.md.

``luigi --module tasks Validate`` runs everything stale, then the comparison of the new models
with the revisions asked for; with ``standalone=True`` (``kwsops validate``) it needs nothing
upstream, only data/spec_ds, and compares the revisions asked for.
"""

from __future__ import annotations

import luigi

from kwsops.compare.revisions import FORMS_HELP, RevisionError, default_specs, resolve_revisions
from kwsops.keywords import DEFAULT_BUDGET
from kwsops.pipeline.validate import require_test_split, split_digest, validate_stage
from tasks.base import KwsTask, StampTarget
from tasks.pipeline import VersionModels


class Validate(KwsTask):
    batch_sizes = luigi.OptionalListParameter(
        default=None, description="batch sizes to train and compare (default: VersionModels')"
    )
    revisions = luigi.ListParameter(
        default=[], description=f"revisions compared besides the new models: {FORMS_HELP}"
    )
    fail_below = luigi.FloatParameter(
        default=0.0, description="fail (exit code 5) when the best accuracy is under this"
    )
    false_alarms_per_hour = luigi.FloatParameter(
        default=DEFAULT_BUDGET,
        description="the false-alarm budget the operating threshold is chosen for, on the "
        "training folds' out-of-fold scores; the miss rate is reported at it",
    )
    standalone = luigi.BoolParameter(
        default=False, significant=False, description="compare only: require nothing upstream"
    )

    def sizes(self) -> list[int]:
        sizes = self.batch_sizes if self.batch_sizes else VersionModels().batch_sizes
        return [int(size) for size in sizes]

    def requires(self) -> list:
        if self.standalone:
            return []
        return [VersionModels(batch_sizes=self.sizes())]

    def specs(self) -> list[str]:
        """The new models of every batch size, then the revisions asked for; standalone, the
        revisions asked for alone (none: the workspace's models of every batch size)."""
        extra = [str(spec) for spec in self.revisions]
        if self.standalone and extra:
            return extra
        new = default_specs(self.sizes())
        return new + [spec for spec in extra if spec not in new]

    def resolve(self) -> list:
        return resolve_revisions(self.ws, self.specs(), self.sizes())

    def key_inputs(self) -> dict:
        try:
            pinned = [revision.key() for revision in self.resolve()]
        except RevisionError as exc:  # not complete; run() raises it for the user to see
            pinned = [{"unresolved": str(exc)}]
        return {"revisions": pinned, "test": split_digest(self.ws), "standalone": self.standalone}

    def complete(self) -> bool:
        # Luigi reuses task instances within a process: key what is there now, not then
        self.__dict__.pop("stage_key", None)
        return super().complete()

    def output(self) -> StampTarget:
        return StampTarget(self.ws.stamps_dir / "Validate.json", self.stage_key)

    def run(self) -> None:
        # upstream stages ran since complete() was asked: resolve and key again, now
        self.__dict__.pop("stage_key", None)
        require_test_split(self.ws)
        self.progress(0, 0, "resolving revisions")
        revisions = self.resolve()
        result = validate_stage(
            self.ws,
            self.stage_key,
            revisions,
            stamp_file=self.output().stamp_file,
            fail_below=float(self.fail_below),
            budget=float(self.false_alarms_per_hour),
            progress=self.progress,
        )
        self.summary(result.detail, **result.summary)
