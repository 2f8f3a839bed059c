"""Measure one suite experiment: run it (with its replicates), read its outcome metrics and
wiring outcomes back from the registry.

The runs are ordinary runs, tagged `esper.suite: <suite name>`. `regression.replicates: N` runs
the experiment N times with seeds seed..seed+N-1 as one replicate group (it takes the place of
`training.replicates`); a metric is the mean over the replicates, None unless every replicate
measured it. A field's wiring outcome is the worst over the replicates (FAIL, XPASS, XFAIL, PASS,
NO_OPPORTUNITY, SKIP in that order: a field observed in one replicate is PASS).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

from esper.compare.outcomes import outcome_metrics
from esper.compare.statistics import group_mean
from esper.experiment.replicates import run_replicates
from esper.leyline.config import ExperimentSpec
from esper.registry import Registry
from esper.registry.records import SUITE_TAG
from esper.registry.wiring import WORST_FIRST, WiringOutcome
from esper.regress.baselines import rounded
from esper.regress.suite import SuiteExperiment



@dataclass(frozen=True)
class FieldOutcome:
    """A catalogue field's wiring outcome over the replicates, and why."""

    outcome: str  # PASS / FAIL / XFAIL / XPASS / NO_OPPORTUNITY / SKIP
    reason: str


@dataclass(frozen=True)
class Measurement:
    """What the runs of one suite experiment measured."""

    run_ids: tuple[str, ...]  # in seed order
    seeds: tuple[int, ...]
    group_id: str | None  # None: a single run
    metrics: dict[str, float | None]  # the regression block's metrics, rounded means
    wiring: dict[str, FieldOutcome]  # every catalogue field, by "TELE-id field"
    wall_time_s: float  # of all the runs, end to end
    started_at: float  # unix time the first run started


def suite_spec(spec: ExperimentSpec, suite: str, replicates: int, mlflow: bool) -> ExperimentSpec:
    """`spec` as the suite runs it: tagged with the suite, `replicates` runs, and MLflow as its
    tracking.mlflow says, or off when `mlflow` is false (--no-mlflow)."""
    tracking = replace(spec.tracking, tags={**spec.tracking.tags, SUITE_TAG: suite},
                       mlflow=spec.tracking.mlflow and mlflow)
    return replace(spec, tracking=tracking,
                   training=replace(spec.training, replicates=replicates))


def measure(experiment: SuiteExperiment, suite: str, *, mlflow: bool = True,
            registry: str | os.PathLike[str] | None = None) -> Measurement:
    """Run `experiment` as a member of suite `suite` and measure it.

    Raises:
        EsperError: as `esper.experiment.runner.run`.
    """
    spec = suite_spec(experiment.spec, suite, experiment.regression.replicates, mlflow)
    started_at, started = time.time(), time.perf_counter()
    group = run_replicates(spec, spec_path=experiment.path, registry=registry)
    wall = time.perf_counter() - started
    run_ids = tuple(result.record.run_id for result in group.results)
    with Registry.open(group.results[0].registry_path, create=False) as runs_db:
        per_run = [outcome_metrics(runs_db, run_id, names=experiment.regression.metrics)
                   for run_id in run_ids]
    metrics = {name: rounded(group_mean([values[name] for values in per_run]))
               for name in experiment.regression.metrics}
    wiring = worst_outcomes([result.wiring for result in group.results])
    return Measurement(run_ids, tuple(group.seeds), group.group_id, metrics, wiring, wall,
                       started_at)


def worst_outcomes(runs: list[list[WiringOutcome]]) -> dict[str, FieldOutcome]:
    """Each field's worst outcome over the `runs` (FAIL, XPASS, XFAIL, PASS, NO_OPPORTUNITY,
    SKIP) with its reason, by field label (TeleField.label), in label order."""
    worst: dict[str, WiringOutcome] = {}
    for outcomes in runs:
        for outcome in outcomes:
            key = outcome.field.label
            rank = WORST_FIRST.index(outcome.outcome)
            if key not in worst or rank < WORST_FIRST.index(worst[key].outcome):
                worst[key] = outcome
    return {key: FieldOutcome(o.outcome.value, o.reason) for key, o in sorted(worst.items())}
