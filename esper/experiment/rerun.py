"""A recorded run trained again: the experiment of its resolved config (`esper rerun`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from esper.experiment.loading import stored_spec
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import EsperError
from esper.registry import RunRecord
from esper.registry.records import RERUN_TAG, RunKind


class NotRerunnable(EsperError):
    """The run cannot be trained again as it is: a sweep's run (its config is the sweep)."""

    exit_code = 2


def rerun_spec(record: RunRecord, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """The experiment of ``record``'s resolved config and ``overrides``, tagged as its rerun.

    One run (``training.replicates=1`` unless an override says otherwise), tagged
    ``esper.rerun_of=<record's id>``; esper's own tags of ``record`` are not carried over.

    Raises:
        NotRerunnable: ``record`` is a sweep's run.
        SpecError: the config with the overrides is invalid (located at ``--set`` or the run).
    """
    if record.kind is RunKind.SWEEP:
        raise NotRerunnable(f"run {record.run_id} ({record.name}) is a sweep's run: rerun "
                            "one of its trials, or the sweep with esper sweep")
    spec = stored_spec(record.config, ("training.replicates=1", *overrides),
                          source=f"run {record.run_id}")
    tags = {k: v for k, v in spec.tracking.tags.items() if not k.startswith("esper.")}
    return dataclasses.replace(spec, tracking=dataclasses.replace(
        spec.tracking, tags={**tags, RERUN_TAG: record.run_id}))
