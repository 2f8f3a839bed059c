"""Named outcome metrics of one run, from the registry's ``metrics`` table and aggregates.

Nothing here decodes events: every number is one of the registry's aggregates
(``esper.registry.queries``) over the run's metrics (the series of
``esper.nissa.metric_series``) or over its events' columns, so the cost does not grow with the
payloads (a run of 1,000,000 events is summarised in a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import cached_property

from esper.compare.lifecycle import event_counts, field_counts
from esper.leyline.events import TelemetryEventType
from esper.nissa.metric_series import (EPISODE_COMMITTED_ACCURACY, EPISODE_HOST_ACCURACY,
                                       EPISODE_RETURN, EPISODE_VAL_ACCURACY)
from esper.registry import Registry, RunRecord
from esper.registry.metrics import nan_if_null

_T = TelemetryEventType

#: The outcome metric names, in display order, each with a one-line meaning. ``esper regress``
#: (issue 10) refers to these names; renaming one is a breaking change.
OUTCOME_METRICS: dict[str, str] = {
    "final_val_accuracy": "mean val accuracy over the envs at the end of the last batch, %",
    "best_val_accuracy": "highest mean val accuracy over the envs at the end of a batch, %",
    "final_committed_accuracy": "mean accuracy of the kept model (fossilised seeds on, live seeds "
                                "off) over the envs at the end of the last batch, %",
    "final_host_accuracy": "mean accuracy with every seed off over the envs at the end of the "
                           "last batch, %",
    "mean_episode_return": "mean over batches of the batch's mean episode return",
    "final_policy_loss": "PPO policy loss of the last update (None: no PPO update)",
    "final_value_loss": "PPO value loss of the last update (None: no PPO update)",
    "final_entropy": "PPO entropy of the last update (None: no PPO update)",
    "params_added": "trainable parameters of every fossilised seed, summed over the run",
    "wall_time_s": "seconds from start to end of the run (None: still running or crashed)",
    "env_epochs_per_s": "EPOCH_COMPLETED events (env epochs) per second of wall time",
    "seeds_germinated": "SEED_GERMINATED events",
    "seeds_fossilized": "SEED_FOSSILIZED events",
    "seeds_pruned": "SEED_PRUNED events",
    "governor_rollbacks": "GOVERNOR_ROLLBACK events",
}

def outcome_metrics(registry: Registry, run_id: str, events: Mapping[str, int] | None = None,
                    names: Collection[str] | None = None) -> dict[str, float | None]:
    """The outcome metrics of run `run_id`, by name: every key of ``OUTCOME_METRICS``, or only
    those in `names` (each costs its own queries); `events`: the run's `event_counts` when the
    caller has them (else they are counted, once, if a metric needs them).

    - final_val_accuracy: last ``episode/val_accuracy`` (mean over envs, end of the last batch), %
    - best_val_accuracy: max of ``episode/val_accuracy`` over the batches, %
    - final_committed_accuracy, final_host_accuracy: last ``episode/committed_accuracy`` and
      ``episode/host_accuracy`` (the model at the episodes' ends), %
    - mean_episode_return: mean of ``episode/return`` over the batches (NaN if one is NaN)
    - final_policy_loss, final_value_loss, final_entropy: ``ppo/...`` of the last PPO update
    - params_added: sum of ``params`` over the SEED_FOSSILIZED events
    - wall_time_s: ended_at - started_at
    - env_epochs_per_s: EPOCH_COMPLETED events / wall_time_s
    - seeds_germinated, seeds_fossilized, seeds_pruned, governor_rollbacks: event counts

    A value is None when the run did not measure it (PPO losses of a heuristic run, accuracies
    of a run that ended before its first batch, the wall time of a crashed run); counts of
    events are measured, so 0 means none happened. A metric point stored as NULL (SQLite keeps
    NaN as NULL) is a measured NaN and comes back as ``nan``.

    Raises:
        RunNotFound: no run `run_id`.
    """
    run = _Run(registry, registry.run(run_id), events)
    return {name: compute(run) for name, compute in _COMPUTE.items()
            if names is None or name in names}


class _Run:
    """What the outcome metrics of one run read, each read when first needed."""

    def __init__(self, registry: Registry, record: RunRecord,
                 events: Mapping[str, int] | None) -> None:
        self.registry, self.record, self._events = registry, record, events

    @cached_property
    def counts(self) -> Mapping[str, int]:
        """Event type -> how many the run recorded."""
        if self._events is not None:
            return self._events
        return event_counts(self.registry, self.record.run_id)

    def count(self, event_type: TelemetryEventType) -> float:
        return float(self.counts.get(event_type.value, 0))

    def last(self, key: str) -> float | None:
        return self.registry.last_metric(self.record.run_id, key)

    def best_val_accuracy(self) -> float | None:
        count, _, best, _ = self.registry.series_stats(self.record.run_id, EPISODE_VAL_ACCURACY)
        return _measured(count, best)

    def mean_episode_return(self) -> float | None:
        count, numbers, _, mean = self.registry.series_stats(self.record.run_id, EPISODE_RETURN)
        if numbers < count:  # a NaN return (NULL, which avg skips): the mean is NaN
            mean = None
        return _measured(count, mean)

    def params_added(self) -> float:
        return float(sum(params * count for (_, params), count in field_counts(
            self.registry, self.record.run_id, [_T.SEED_FOSSILIZED], "params").items()))

    def env_epochs_per_s(self) -> float | None:
        wall = self.record.duration
        return None if not wall else self.count(_T.EPOCH_COMPLETED) / wall


# How each outcome metric is computed, in OUTCOME_METRICS's order (a test keeps them equal).
_COMPUTE: dict[str, Callable[[_Run], float | None]] = {
    "final_val_accuracy": lambda run: run.last(EPISODE_VAL_ACCURACY),
    "best_val_accuracy": _Run.best_val_accuracy,
    "final_committed_accuracy": lambda run: run.last(EPISODE_COMMITTED_ACCURACY),
    "final_host_accuracy": lambda run: run.last(EPISODE_HOST_ACCURACY),
    "mean_episode_return": _Run.mean_episode_return,
    "final_policy_loss": lambda run: run.last("ppo/policy_loss"),
    "final_value_loss": lambda run: run.last("ppo/value_loss"),
    "final_entropy": lambda run: run.last("ppo/entropy"),
    "params_added": _Run.params_added,
    "wall_time_s": lambda run: run.record.duration,
    "env_epochs_per_s": _Run.env_epochs_per_s,
    "seeds_germinated": lambda run: run.count(_T.SEED_GERMINATED),
    "seeds_fossilized": lambda run: run.count(_T.SEED_FOSSILIZED),
    "seeds_pruned": lambda run: run.count(_T.SEED_PRUNED),
    "governor_rollbacks": lambda run: run.count(_T.GOVERNOR_ROLLBACK),
}


def _measured(count: int, value: float | None) -> float | None:
    """An aggregate over `count` points: None when there was none. A NULL aggregate over
    existing points means they were all NaN (SQLite stores NaN as NULL)."""
    return nan_if_null(value) if count else None
