"""Run an experiment: compile it, record it in the registry, train, and summarise."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from esper.experiment.compile import compile_spec
from esper.experiment.spec_builder import spec_to_dict
from esper.leyline.config import ExperimentSpec
from esper.nissa.hub import Sink
from esper.nissa.recording import recording
from esper.registry import NewRun, Registry, RunRecord
from esper.simic.env_loop import EnvLoop, TrainingSummary


@dataclass(frozen=True)
class RunResult:
    """A finished run: its registry row and what training did."""

    record: RunRecord
    summary: TrainingSummary
    registry_path: Path


def run(
    spec: ExperimentSpec,
    *,
    spec_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    registry: str | os.PathLike[str] | None = None,
    sinks: Sequence[Sink] = (),
) -> RunResult:
    """Train `spec` and record every event of it in the registry.

    Everything that can fail on bad input (device, data, policy) is built before the run row
    is written. An exception during training ends the run FAILED, Ctrl-C / SIGTERM KILLED.

    Raises:
        EsperError: bad input (see `compile_spec`), or an unusable registry file.
    """
    pipeline = compile_spec(spec)
    with Registry.open(registry) as runs_db:
        new = NewRun(experiment=spec.name, config=spec_to_dict(spec), seed=spec.seed, name=name,
                     spec_path=None if spec_path is None else str(spec_path),
                     device=str(pipeline.device), tags=spec.tracking.tags, notes=spec.description)
        with recording(runs_db, new, sinks=sinks) as rec:
            loop = EnvLoop(spec, pipeline.data, pipeline.policy, rec.hub, pipeline.device)
            summary = loop.run()
        return RunResult(runs_db.run(rec.run_id), summary, runs_db.path)
