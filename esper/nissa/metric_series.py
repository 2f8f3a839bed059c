"""Scalar series derived from telemetry events: the metric keys, their steps, and the mapping.

One mapping for every consumer: the MLflow sink runs it on live events, ``esper sync`` runs the
same ``MetricMapper`` on the events read back from ``runs.db``, so a synced run has the same
series as one recorded live.

Keys are namespaced by what their step counts (STYLE.md rule 12):
- ``env{env_id}/...``: per environment, step = global epoch = batch * episode_length + epoch,
  so the episodes of successive batches follow each other on one axis;
- ``env{env_id}/episode_...``, ``episode/...``, ``ppo/...``, ``anomalies/...``: step = batch;
- ``env{env_id}/{slot_id}/...``: probe values measured on a seed's stage change, step = global
  epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, NamedTuple

from esper.leyline.events import TelemetryEvent, TelemetryEventType

# Per env, step = global epoch (EPOCH_COMPLETED).
ENV_TRAIN_LOSS = "env{env_id}/train_loss"
ENV_TRAIN_ACCURACY = "env{env_id}/train_accuracy"  # percent
ENV_VAL_LOSS = "env{env_id}/val_loss"
ENV_VAL_ACCURACY = "env{env_id}/val_accuracy"  # percent
ENV_COMMITTED_ACCURACY = "env{env_id}/committed_accuracy"  # percent, fossils on, live seeds off
ENV_HOST_ACCURACY = "env{env_id}/host_accuracy"  # percent, every seed off
ENV_REFERENCE_ACCURACY = "env{env_id}/reference_accuracy"  # percent, host trained alone (escrow)
ENV_REWARD = "env{env_id}/reward"  # the step's reward
ENV_SEEDS_LIVE = "env{env_id}/seeds_live"
ENV_SEEDS_FOSSILIZED = "env{env_id}/seeds_fossilized"

# Per env, step = batch (EPISODE_OUTCOME).
ENV_EPISODE_RETURN = "env{env_id}/episode_return"
ENV_EPISODE_FINAL_ACCURACY = "env{env_id}/episode_final_accuracy"  # percent
ENV_EPISODE_COMMITTED_ACCURACY = "env{env_id}/episode_committed_accuracy"  # percent
ENV_EPISODE_REFERENCE_ACCURACY = "env{env_id}/episode_reference_accuracy"  # percent (escrow)
ENV_EPISODE_PARAM_RATIO = "env{env_id}/episode_param_ratio"

# Over the envs, step = batch (BATCH_COMPLETED).
EPISODE_RETURN = "episode/return"  # mean episode return of the batch
EPISODE_VAL_ACCURACY = "episode/val_accuracy"  # mean validation accuracy of the batch, percent
EPISODE_COMMITTED_ACCURACY = "episode/committed_accuracy"  # mean committed accuracy, percent
EPISODE_HOST_ACCURACY = "episode/host_accuracy"  # mean host-only accuracy, percent

# Per slot, step = global epoch (SEED_STAGE_CHANGED, slot_health probe): "{field}" is the
# payload field (gradient_health, has_vanishing, ..., seed_gradient_norm_ratio).
SLOT_PROBE = "env{env_id}/{slot_id}/{field}"

#: Event types whose every numeric payload field is a series with step = batch, under a prefix:
#: "ppo/policy_loss", "ppo/entropy_per_head/op", ... (a field added to a payload gets its series
#: at once).
BATCH_PREFIXES: dict[TelemetryEventType, str] = {
    TelemetryEventType.PPO_UPDATE_COMPLETED: "ppo/",
    TelemetryEventType.RATIO_EXPLOSION_DETECTED: "anomalies/",
    TelemetryEventType.RATIO_COLLAPSE_DETECTED: "anomalies/",
    TelemetryEventType.VALUE_COLLAPSE_DETECTED: "anomalies/",
    TelemetryEventType.NUMERICAL_INSTABILITY_DETECTED: "anomalies/",
}

_T = TelemetryEventType


class MetricPoint(NamedTuple):
    """One value of a scalar series (the shape of the registry's ``metrics`` table)."""

    key: str
    step: int
    value: float  # NaN and infinities are kept: a measured NaN loss is information
    ts: float  # unix seconds, of the event it comes from


class MetricMapper:
    """Turns a run's events, in seq order, into metric points.

    Stateful only in what TRAINING_STARTED declares (the episode length, for global epochs), so
    a replay of the same events gives the same points.
    """

    def __init__(self) -> None:
        self._episode_length: int | None = None

    def points(self, events: Iterable[TelemetryEvent]) -> list[MetricPoint]:
        """The metric points of ``events`` (events without scalar series give none, and so do
        events without the batch / epoch their step is made of: a point needs its step).

        Raises:
            ValueError: an epoch event came before TRAINING_STARTED.
        """
        points: list[MetricPoint] = []
        for event in events:
            kind = event.event_type
            if event.batch is None and kind is not _T.TRAINING_STARTED:
                continue
            if kind is _T.TRAINING_STARTED:
                self._episode_length = event.data.episode_length
            elif kind is _T.EPOCH_COMPLETED and event.epoch is not None:
                points += self._epoch(event)
            elif kind is _T.EPISODE_OUTCOME:
                points += _episode(event)
            elif kind is _T.BATCH_COMPLETED:
                points += _batch(event)
            elif kind is _T.SEED_STAGE_CHANGED and event.epoch is not None:
                points += self._slot_probes(event)
            elif kind in BATCH_PREFIXES:
                prefix = BATCH_PREFIXES[kind]
                points += [MetricPoint(prefix + name, event.batch, value, event.ts)
                           for name, value in numeric_fields(event.data)]
        return points

    def _global_epoch(self, event: TelemetryEvent) -> int:
        if self._episode_length is None:
            raise ValueError(f"{event.event_type.name} (seq {event.seq}) came before "
                             "TRAINING_STARTED: the episode length is unknown")
        return event.batch * self._episode_length + event.epoch

    def _epoch(self, event: TelemetryEvent) -> list[MetricPoint]:
        step, data, ts, env_id = self._global_epoch(event), event.data, event.ts, event.env_id
        return [
            MetricPoint(key.format(env_id=env_id), step, value, ts)
            for key, value in (
                (ENV_TRAIN_LOSS, data.train_loss),
                (ENV_TRAIN_ACCURACY, data.train_accuracy),
                (ENV_VAL_LOSS, data.val_loss),
                (ENV_VAL_ACCURACY, data.val_accuracy),
                (ENV_COMMITTED_ACCURACY, data.committed_accuracy),
                (ENV_HOST_ACCURACY, data.host_accuracy),
                (ENV_REFERENCE_ACCURACY, data.reference_accuracy),
                (ENV_REWARD, data.reward),
                (ENV_SEEDS_LIVE, data.seeds_live),
                (ENV_SEEDS_FOSSILIZED, data.seeds_fossilized),
            )
            if value is not None  # not measured: no reference host, or an older esper
        ]

    def _slot_probes(self, event: TelemetryEvent) -> list[MetricPoint]:
        fields = numeric_fields(event.data)
        if not fields:  # slot_health off, or not measured yet (None): no point, not a zero
            return []
        step = self._global_epoch(event)
        return [
            MetricPoint(SLOT_PROBE.format(env_id=event.env_id, slot_id=event.slot_id, field=name),
                        step, value, event.ts)
            for name, value in fields
        ]


def _episode(event: TelemetryEvent) -> list[MetricPoint]:
    data, env_id = event.data, event.env_id
    return [
        MetricPoint(key.format(env_id=env_id), event.batch, value, event.ts)
        for key, value in (
            (ENV_EPISODE_RETURN, data.episode_reward),
            (ENV_EPISODE_FINAL_ACCURACY, data.final_accuracy),
            (ENV_EPISODE_COMMITTED_ACCURACY, data.committed_accuracy),
            (ENV_EPISODE_REFERENCE_ACCURACY, data.reference_accuracy),
            (ENV_EPISODE_PARAM_RATIO, data.param_ratio),
        )
        if value is not None  # not measured: no reference host, or an older esper
    ]


def _batch(event: TelemetryEvent) -> list[MetricPoint]:
    data = event.data
    return [MetricPoint(key, event.batch, value, event.ts) for key, value in (
        (EPISODE_RETURN, data.mean_episode_return),
        (EPISODE_VAL_ACCURACY, data.mean_val_accuracy),
        (EPISODE_COMMITTED_ACCURACY, data.mean_committed_accuracy),
        (EPISODE_HOST_ACCURACY, data.mean_host_accuracy),
    ) if value is not None]  # a run recorded before the field existed


def numeric_fields(payload: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(name, value) of the numeric fields of a payload that hold a value.

    Booleans count as 1.0 / 0.0 (measured); a nested record (``HeadValues``) gives
    ``name/field`` names; strings, tuples and ``None`` (not measured) are left out.
    """
    found: list[tuple[str, float]] = []
    for field in dataclasses.fields(payload):
        value = getattr(payload, field.name)
        if isinstance(value, (bool, int, float)):
            found.append((prefix + field.name, float(value)))
        elif dataclasses.is_dataclass(value):
            found += numeric_fields(value, f"{prefix}{field.name}/")
    return found
