"""A sweep's trials ranked by its metric, with the config keys that vary between them."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from esper.compare.outcomes import outcome_metrics
from esper.experiment.config_diff import flatten
from esper.leyline.config import SweepConfig
from esper.registry import Registry, RunRecord, RunStatus
from esper.registry.records import RunKind
from esper.sweep.errors import SweepError

TAG_SWEEP = "esper.sweep"  # on a trial: the sweep's run id
TAG_TRIAL = "esper.trial"  # on a trial: its index in the plan
TAG_REPLICATE = "esper.replicate"
PARAM_TAG = "sweep."  # + dotted key: the trial's value, JSON


@dataclass(frozen=True)
class RankedTrial:
    """One point of the search space and the latest run of each of its replicates."""

    index: int
    params: dict[str, Any]
    runs: tuple[RunRecord, ...]
    value: float | None  # the metric over the FINISHED replicates (``trial_value``)

    @property
    def ranked(self) -> bool:
        """The trial has a value to rank by: measured, and not NaN."""
        return self.value is not None and not math.isnan(self.value)

    @property
    def status(self) -> RunStatus:
        """FINISHED when every replicate finished, else the status of the first that did not."""
        return next((r.status for r in self.runs if r.status is not RunStatus.FINISHED),
                    RunStatus.FINISHED)


@dataclass(frozen=True)
class Ranking:
    sweep: RunRecord
    metric: str
    goal: str  # maximize / minimize
    trials: tuple[RankedTrial, ...]  # best first; trials without a value (or NaN) last, by index
    varying: tuple[str, ...]  # dotted config keys whose value differs between the trial runs


def is_sweep(record: RunRecord) -> bool:
    return record.kind is RunKind.SWEEP


def sweep_config(record: RunRecord) -> SweepConfig:
    """The sweep block of a sweep's run, as it ran (with --grid applied).

    Raises:
        SweepError: the run is not a sweep.
    """
    from esper.experiment import stored_spec

    if not is_sweep(record):
        raise SweepError(f"run {record.name} ({record.run_id}) is not a sweep (expected the "
                         "run that `esper sweep` printed, tagged esper.kind=sweep)")
    sweep = stored_spec(record.config).sweep
    assert sweep is not None, "a sweep's run keeps its sweep block"
    return sweep


def trial_runs(registry: Registry, sweep_id: str) -> list[RunRecord]:
    """Every child run of the sweep, newest first (resumed trials have several)."""
    return registry.runs(tag=f"{TAG_SWEEP}={sweep_id}")


def latest_per_trial(runs: Iterable[RunRecord]) -> dict[tuple[int, int], RunRecord]:
    """(trial index, replicate) -> its newest run, from runs listed newest first."""
    latest: dict[tuple[int, int], RunRecord] = {}
    for run in runs:
        latest.setdefault((int(run.tags[TAG_TRIAL]), int(run.tags[TAG_REPLICATE])), run)
    return latest


def rank_sweep(registry: Registry, ref: str) -> Ranking:
    """The trials of sweep `ref` (id, prefix or name of its run) ranked by its metric.

    Raises:
        RunNotFound, AmbiguousRun, SweepError: `ref` does not name a sweep.
    """
    sweep_run = registry.resolve(ref)
    sweep = sweep_config(sweep_run)
    latest = latest_per_trial(trial_runs(registry, sweep_run.run_id))
    by_trial: dict[int, list[RunRecord]] = {}
    for (index, _), run in sorted(latest.items()):
        by_trial.setdefault(index, []).append(run)
    trials = [_ranked(registry, index, runs, sweep.metric) for index, runs in by_trial.items()]
    sign = -1.0 if sweep.goal == "maximize" else 1.0
    trials.sort(key=lambda t: (not t.ranked, sign * t.value if t.ranked else 0.0,
                               t.index))
    return Ranking(sweep_run, sweep.metric, sweep.goal, tuple(trials),
                   varying_keys(list(latest.values())))


def varying_keys(runs: list[RunRecord]) -> tuple[str, ...]:
    """The dotted config keys whose value is not the same in every run."""
    configs = [flatten(dict(run.config)) for run in runs]
    keys = sorted({key for config in configs for key in config})
    return tuple(k for k in keys
                 if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1)


def _ranked(registry: Registry, index: int, runs: list[RunRecord], metric: str) -> RankedTrial:
    values = [outcome_metrics(registry, r.run_id, names=[metric])[metric] for r in runs
              if r.status is RunStatus.FINISHED]
    params = {k.removeprefix(PARAM_TAG): json.loads(v) for k, v in runs[0].tags.items()
              if k.startswith(PARAM_TAG)}
    return RankedTrial(index, params, tuple(runs), trial_value(values))


def trial_value(values: list[float | None]) -> float | None:
    """The mean of the replicates' values; NaN when one of them is NaN (a replicate that
    diverged is not averaged away); None when no replicate measured the metric."""
    if any(v is not None and math.isnan(v) for v in values):
        return math.nan
    measured = [v for v in values if v is not None]
    return statistics.fmean(measured) if measured else None
