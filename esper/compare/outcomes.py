"""Named outcome metrics of one run, from the registry's ``metrics`` table and aggregates.

Nothing here decodes events: every number is one of the registry's aggregates
(``esper.registry.queries``) over the run's metrics (the series of
``esper.nissa.metric_series``) or over its events' columns, so the cost does not grow with the
payloads (a run of 1,000,000 events is summarised in a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Mapping

from esper.compare.lifecycle import event_counts, field_counts
from esper.leyline.events import TelemetryEventType
from esper.nissa.metric_series import (EPISODE_COMMITTED_ACCURACY, EPISODE_HOST_ACCURACY,
                                       EPISODE_RETURN, EPISODE_VAL_ACCURACY)
from esper.registry import Registry
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

def outcome_metrics(registry: Registry, run_id: str, events: Mapping[str, int] | None = None
                    ) -> dict[str, float | None]:
    """The outcome metrics of run `run_id`, by name (every key of ``OUTCOME_METRICS``);
    `events`: the run's `event_counts` when the caller has them (else they are counted).

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
    run = registry.run(run_id)
    counts = events if events is not None else event_counts(registry, run_id)
    best_count, _, best, _ = registry.series_stats(run_id, EPISODE_VAL_ACCURACY)
    returns_count, returns_numbers, _, mean_return = registry.series_stats(run_id, EPISODE_RETURN)
    if returns_numbers < returns_count:  # a NaN return (NULL, which avg skips): the mean is NaN
        mean_return = None
    params_added = sum(params * count for (_, params), count in
                       field_counts(registry, run_id, [_T.SEED_FOSSILIZED], "params").items())
    wall = run.duration
    epochs = counts.get(_T.EPOCH_COMPLETED.value, 0)
    return {
        "final_val_accuracy": registry.last_metric(run_id, EPISODE_VAL_ACCURACY),
        "best_val_accuracy": _measured(best_count, best),
        "final_committed_accuracy": registry.last_metric(run_id, EPISODE_COMMITTED_ACCURACY),
        "final_host_accuracy": registry.last_metric(run_id, EPISODE_HOST_ACCURACY),
        "mean_episode_return": _measured(returns_count, mean_return),
        "final_policy_loss": registry.last_metric(run_id, "ppo/policy_loss"),
        "final_value_loss": registry.last_metric(run_id, "ppo/value_loss"),
        "final_entropy": registry.last_metric(run_id, "ppo/entropy"),
        "params_added": float(params_added),
        "wall_time_s": wall,
        "env_epochs_per_s": None if not wall else epochs / wall,
        "seeds_germinated": float(counts.get(_T.SEED_GERMINATED.value, 0)),
        "seeds_fossilized": float(counts.get(_T.SEED_FOSSILIZED.value, 0)),
        "seeds_pruned": float(counts.get(_T.SEED_PRUNED.value, 0)),
        "governor_rollbacks": float(counts.get(_T.GOVERNOR_ROLLBACK.value, 0)),
    }


def _measured(count: int, value: float | None) -> float | None:
    """An aggregate over `count` points: None when there was none. A NULL aggregate over
    existing points means they were all NaN (SQLite stores NaN as NULL)."""
    return nan_if_null(value) if count else None
