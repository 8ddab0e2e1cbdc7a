"""Validate: the last stage. Compares model revisions into reports/comparison_versions.md.

``luigi --module tasks Validate`` runs everything stale, then the comparison of the new models
with the revisions asked for; with ``standalone=True`` (``kwsops validate``) it needs nothing
upstream, only data/spec_ds, and compares the revisions asked for.
"""

from __future__ import annotations

import luigi

from kwsops.compare.revisions import (
    RevisionError,
    default_specs,
    resolve_revisions,
    trained_batch_sizes,
)
from kwsops.pipeline.validate import (
    require_test_split,
    require_trained_models,
    split_digest,
    validate_stage,
)
from kwsops.workspace import Workspace
from tasks.base import KwsTask, StampTarget
from tasks.params import declare
from tasks.pipeline import VersionModels


def production_spec(ws) -> list[str]:
    """``[kws#production]`` when a version holds the stage (a bad model name: none)."""
    from kwsops.versioning.tags import PRODUCTION, RegistryError, has_stage, model_name

    try:
        name = model_name(ws.root)
        return [f"{name}#{PRODUCTION}"] if has_stage(ws.root, PRODUCTION, name) else []
    except RegistryError:
        return []


def require_models_to_compare(ws: Workspace, revisions: list, batch_sizes: list) -> None:
    """Comparing alone with no revision or batch size named (flags or luigi.cfg [Validate]):
    ValidationInputError (one line, exit 4) when data/models holds no trained models."""
    named = Validate(standalone=True)
    if not (revisions or batch_sizes or named.revisions or named.batch_sizes):
        require_trained_models(ws)


@declare("Validate")  # revisions, fail_below
class Validate(KwsTask):
    batch_sizes = luigi.OptionalListParameter(
        default=None, description="batch sizes to train and compare (default: VersionModels')"
    )
    standalone = luigi.BoolParameter(
        default=False, significant=False, description="compare only: require nothing upstream"
    )

    def sizes(self) -> list[int]:
        """The batch sizes asked for; else, comparing alone without revisions, the ones
        data/models holds (not luigi.cfg's, which may not all be trained); else VersionModels'."""
        if self.batch_sizes:
            return [int(size) for size in self.batch_sizes]
        if self.standalone and not self.revisions:
            return trained_batch_sizes(self.ws)
        return [int(size) for size in VersionModels().batch_sizes]

    def requires(self) -> list:
        if self.standalone:
            return []
        return [VersionModels(batch_sizes=self.sizes())]

    def specs(self) -> list[str]:
        """The new models of every batch size, then the revisions asked for and the production
        version (``kws#production``: is the new model better than the one in use?);
        standalone, the revisions asked for alone (none: the workspace's models of every batch
        size)."""
        extra = [str(spec) for spec in self.revisions]
        if self.standalone and extra:
            return extra
        new = default_specs(self.sizes())
        return new + [spec for spec in [*extra, *production_spec(self.ws)] if spec not in new]

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
        if not self.specs():
            require_trained_models(self.ws)  # raises: nothing to compare
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
