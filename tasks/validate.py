"""Validate: the last stage. Compares model revisions into reports/comparison_versions.md.

``luigi --module tasks Validate`` runs everything stale, then the comparison; with
``standalone=True`` (``kwsops validate``) it needs nothing upstream, only data/spec_ds.
"""

from __future__ import annotations

import luigi

from kwsops.compare.revisions import FORMS_HELP, RevisionError, resolve_revisions
from kwsops.pipeline.validate import require_test_split, split_digest, validate_stage
from tasks.base import KwsTask, StampTarget
from tasks.pipeline import VersionModels


class Validate(KwsTask):
    batch_sizes = luigi.OptionalListParameter(
        default=None, description="batch sizes to train and compare (default: VersionModels')"
    )
    revisions = luigi.ListParameter(default=[], description=f"revisions to compare: {FORMS_HELP}")
    fail_below = luigi.FloatParameter(
        default=0.0, description="fail (exit code 5) when the best accuracy is under this"
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

    def resolve(self) -> list:
        return resolve_revisions(self.ws, list(self.revisions), self.sizes())

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
        self.progress(0, 1, "resolving revisions")
        revisions = self.resolve()
        result = validate_stage(
            self.ws,
            self.stage_key,
            revisions,
            stamp_file=self.output().stamp_file,
            fail_below=float(self.fail_below),
            progress=self.progress,
        )
        self.summary(result.detail, **result.summary)
