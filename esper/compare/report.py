"""The comparison of several sides (runs or replicate groups): what `esper compare` shows.

The first side is the baseline: deltas and statistics are each other side against it. A side
that is a group shows the mean over its runs (metrics: over the runs that measured it; counts:
per run). Each section keeps only the rows that have something to say unless `show_all`:
config and wiring rows that differ, metrics that some side measured, lifecycle and anomaly rows
that are not all zero, event counts that differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from esper.compare.divergence import (Divergence, FieldDifference, first_divergence,
                                      same_stream_config)
from esper.compare.lifecycle import anomaly_counts, event_counts, lifecycle_counts, wiring_outcomes
from esper.compare.outcomes import OUTCOME_METRICS, outcome_metrics
from esper.compare.refs import CompareError, Side, resolve_sides
from esper.compare.statistics import GroupStatistics, group_mean, group_statistics
from esper.experiment.config_diff import flatten
from esper.registry import Registry


@dataclass(frozen=True)
class SideSummary:
    label: str  # the reference as given
    group_id: str | None  # None: a single run
    run_ids: list[str]
    names: list[str]
    seeds: list[int]


@dataclass(frozen=True)
class Row:
    key: str
    values: list[Any]  # one per side


@dataclass(frozen=True)
class MetricRow:
    name: str  # an OUTCOME_METRICS name
    values: list[float | None]  # one per side; None: not measured
    deltas: list[float | None]  # value - baseline value; None for the baseline or unmeasured
    delta_pcts: list[float | None]  # 100 * delta / |baseline value|; None when that is 0


@dataclass(frozen=True)
class StatisticsRow:
    metric: str
    side: int  # the side compared with the baseline (side 0)
    stats: GroupStatistics


@dataclass(frozen=True)
class Comparison:
    sides: list[SideSummary]
    config: list[Row]  # dotted config keys
    metrics: list[MetricRow]
    statistics: list[StatisticsRow]  # when a side or the baseline is a replicate group
    lifecycle: list[Row]
    events: list[Row]
    anomalies: list[Row]
    wiring: list[Row]
    divergence: list[Divergence]  # single runs of the baseline's config (neutral keys aside)
    show_all: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; `Comparison.from_dict` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        return cls(
            sides=[SideSummary(**side) for side in data["sides"]],
            config=_rows(data["config"]),
            metrics=[MetricRow(**row) for row in data["metrics"]],
            statistics=[StatisticsRow(row["metric"], row["side"], GroupStatistics(**row["stats"]))
                        for row in data["statistics"]],
            lifecycle=_rows(data["lifecycle"]),
            events=_rows(data["events"]),
            anomalies=_rows(data["anomalies"]),
            wiring=_rows(data["wiring"]),
            divergence=[Divergence(**{**d, "fields": [FieldDifference(**f) for f in d["fields"]]})
                        for d in data["divergence"]],
            show_all=data["show_all"],
        )


def compare(registry: Registry, refs: Sequence[str], *, show_all: bool = False,
            labels: Sequence[str] | None = None) -> Comparison:
    """Compare the runs or groups `refs` name (the first is the baseline); `labels` name the
    sides (default: the references).

    Raises:
        CompareError: fewer than two references, a bad ``group:`` reference, or two that
            name the same runs.
        RunNotFound, AmbiguousRun: a reference names no run, or several.
    """
    sides = resolve_sides(registry, refs)
    seen: dict[tuple[str, ...], str] = {}
    for ref, side in zip(refs, sides):
        key = tuple(side.run_ids)
        if key in seen:
            raise CompareError(f"{seen[key]} and {ref} are the same run"
                               f"{'s' if len(key) > 1 else ''} ({', '.join(key)}): "
                               "nothing to compare")
        seen[key] = ref
    pairs = [(sides[0].run_ids[0], side.run_ids[0]) for side in sides[1:]
             if _same_config_pair(sides[0], side)]
    with ThreadPoolExecutor(1, thread_name_prefix="esper-compare") as pool:
        # the divergence scans, the longest part, run while the per-run counts are taken
        divergence = [pool.submit(first_divergence, registry, *pair) for pair in pairs]
        return _comparison(registry, sides, list(refs) if labels is None else list(labels),
                           show_all, divergence)


def _comparison(registry: Registry, sides: list[Side], names: list[str], show_all: bool,
                divergence: list[Future[Divergence]]) -> Comparison:
    """`compare` of `sides` whose divergence checks are under way."""
    counts = {run.run_id: event_counts(registry, run.run_id) for side in sides for run in side.runs}
    events = [[counts[run.run_id] for run in side.runs] for side in sides]
    metrics = [[outcome_metrics(registry, run.run_id, counts[run.run_id]) for run in side.runs]
               for side in sides]
    return Comparison(
        sides=[SideSummary(label, s.group_id, s.run_ids, [r.name for r in s.runs],
                           [r.seed for r in s.runs]) for label, s in zip(names, sides)],
        config=_keep(_config_rows(sides), show_all, _differs),
        metrics=_keep(_metric_rows(metrics), show_all,
                      lambda row: any(v is not None for v in row.values)),
        statistics=_statistics(sides, metrics),
        lifecycle=_keep(_count_rows([[lifecycle_counts(registry, run.run_id) for run in side.runs]
                                     for side in sides]), show_all, _nonzero),
        events=_keep(_count_rows(events), show_all, _differs),
        anomalies=_keep(_count_rows([[anomaly_counts(run) for run in side] for side in events]),
                        show_all, _nonzero),
        wiring=_keep(_wiring_rows(registry, sides), show_all, _differs),
        divergence=[future.result() for future in divergence],
        show_all=show_all,
    )


def _rows(data: list[dict[str, Any]]) -> list[Row]:
    return [Row(**row) for row in data]


def _keep(rows: list[Any], show_all: bool, says_something: Callable[[Any], bool]) -> list[Any]:
    return rows if show_all else [row for row in rows if says_something(row)]


def _differs(row: Row) -> bool:
    return any(value != row.values[0] for value in row.values[1:])


def _nonzero(row: Row) -> bool:
    return any(row.values)


def _common(values: list[Any]) -> Any:
    """The value every run of a group has, else the sorted distinct values (e.g. the seeds)."""
    distinct = list({repr(v): v for v in values}.values())
    if len(distinct) == 1:
        return distinct[0]
    try:
        return sorted(distinct)
    except TypeError:  # values of mixed types
        return distinct


def _config_rows(sides: list[Side]) -> list[Row]:
    flat = [[flatten(dict(run.config)) for run in side.runs] for side in sides]
    keys = list(dict.fromkeys(key for side in flat for config in side for key in config))
    return [Row(key, [_common([config.get(key) for config in side]) for side in flat])
            for key in keys]


def _metric_rows(metrics: list[list[dict[str, float | None]]]) -> list[MetricRow]:
    rows = []
    for name in OUTCOME_METRICS:
        values = [group_mean([run[name] for run in side]) for side in metrics]
        base = values[0]
        deltas = [None if i == 0 or v is None or base is None else v - base
                  for i, v in enumerate(values)]
        pcts = [None if d is None or not base else 100 * d / abs(base) for d in deltas]
        rows.append(MetricRow(name, values, deltas, pcts))
    return rows


def _statistics(sides: list[Side], metrics: list[list[dict[str, float | None]]]
                ) -> list[StatisticsRow]:
    rows = []
    for i in range(1, len(sides)):
        if sides[0].group_id is None and sides[i].group_id is None:
            continue
        for name in OUTCOME_METRICS:
            a = [run[name] for run in metrics[0] if run[name] is not None]
            b = [run[name] for run in metrics[i] if run[name] is not None]
            if a or b:
                rows.append(StatisticsRow(name, i, group_statistics(a, b)))
    return rows


def _count_rows(per_side: list[list[dict[str, int]]]) -> list[Row]:
    """One row per key of any run's counts; a side's value is its count per run."""
    keys = sorted({key for side in per_side for counts in side for key in counts})
    return [Row(key, [_per_run(sum(c.get(key, 0) for c in side), len(side)) for side in per_side])
            for key in keys]


def _per_run(total: int, runs: int) -> float | int:
    return total if runs == 1 else total / runs


def _wiring_rows(registry: Registry, sides: list[Side]) -> list[Row]:
    per_side = [[wiring_outcomes(registry, run.run_id) for run in side.runs] for side in sides]
    keys = sorted({key for side in per_side for outcomes in side for key in outcomes})
    return [Row(key, [_outcome([o.get(key) for o in side]) for side in per_side])
            for key in keys]


def _outcome(outcomes: list[str | None]) -> str | None:
    """A group's outcome: the one all runs share, else "PASS 2, FAIL 1"."""
    if len(set(outcomes)) == 1:
        return outcomes[0]
    shown = {str(o): outcomes.count(o) for o in outcomes}
    return ", ".join(f"{outcome} {count}" for outcome, count in sorted(shown.items()))


def _same_config_pair(base: Side, other: Side) -> bool:
    """Two single runs whose streams must be identical (their configs differ at most in keys
    that cannot change the stream, `STREAM_NEUTRAL_KEYS`)."""
    return (base.group_id is None and other.group_id is None
            and same_stream_config(base.runs[0].config, other.runs[0].config))
