"""Replicates: `training.replicates: N` runs an experiment N times, with seeds seed..seed+N-1,
as the members of one replicate group (the runs share a `group_id`; compare them with
`esper compare group:<id>`). The group is a shared id, with no parent run (a sweep's trials,
replicates included, are child runs of the sweep's run: `esper.sweep.driver`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from esper.experiment.runner import RunResult, run, wiring_warning
from esper.leyline.config import ExperimentSpec
from esper.nissa.hub import Sink
from esper.registry.refs import check_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicateGroup:
    """The runs of one experiment; `group_id` is None for a single run (replicates: 1)."""

    group_id: str | None
    results: tuple[RunResult, ...]  # in seed order

    @property
    def seeds(self) -> list[int]:
        return [result.record.seed for result in self.results]


def new_group_id() -> str:
    """12 hex characters, like a run id."""
    return secrets.token_hex(6)


def run_replicates(
    spec: ExperimentSpec,
    *,
    spec_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    registry: str | os.PathLike[str] | None = None,
    sinks: Callable[[], Sequence[Sink]] = tuple,
) -> ReplicateGroup:
    """Run `spec` `spec.training.replicates` times, with seeds `spec.seed` + 0, 1, ..., one
    after the other; with more than one replicate the runs share a new group id.

    :param name: the run name; replicate i (0-based) is named ``{name}-r{i}``
    :param sinks: builds the extra sinks of each run (a sink is closed with its run)
    Raises:
        EsperError: as `esper.experiment.runner.run`; the runs before it stay recorded.
    """
    check_name(name)  # the name as given, before its replicates' suffixes
    warning = wiring_warning(spec)
    if warning is not None:  # once for the group, before its first run
        log.warning(warning)
    count = spec.training.replicates
    group_id = None if count == 1 else new_group_id()
    results = tuple(
        run(dataclasses.replace(spec, seed=spec.seed + i), spec_path=spec_path,
            name=name if name is None or group_id is None else f"{name}-r{i}",
            registry=registry, sinks=sinks(), group_id=group_id)
        for i in range(count)
    )
    return ReplicateGroup(group_id, results)


def group_summary(group: ReplicateGroup, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON shape of `esper run --json` for a replicate group: its id, seeds, the summary
    of each run, and the command that compares it."""
    return {"group_id": group.group_id, "seeds": group.seeds, "runs": runs,
            "compare": f"esper compare group:{group.group_id}"}


def render_group_note(group: ReplicateGroup) -> str:
    """Two lines after the runs' summaries: the group and how to compare it."""
    seeds = group.seeds
    return (f"replicate group {group.group_id}: {len(seeds)} runs, seeds {seeds[0]}..{seeds[-1]}\n"
            f"compare it       esper compare group:{group.group_id} group:<another group id>")
