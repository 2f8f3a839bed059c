"""Events to metric points: keys, steps (global epoch or batch), values, and what is left out."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
import math
import typing

import pytest

from esper.leyline.events import (
    PAYLOAD_TYPES,
    BatchCompletedPayload,
    EpisodeOutcomePayload,
    EpochCompletedPayload,
    SeedStageChangedPayload,
    Severity,
    TelemetryEvent,
    TelemetryEventType,
    TrainingStartedPayload,
)
from esper.leyline.rewards import RewardComponents
from esper.nissa.metric_series import MetricMapper, MetricPoint, numeric_fields

T = TelemetryEventType


def event(seq: int, kind: TelemetryEventType, data, *, batch=None, env_id=None, epoch=None,
          slot_id=None) -> TelemetryEvent:
    return TelemetryEvent("r", seq, 1000.0 + seq, kind, Severity.INFO, batch, env_id, epoch, None,
                          slot_id, "", data)


def started(episode_length: int = 5) -> TelemetryEvent:
    return event(0, T.TRAINING_STARTED,
                 TrainingStartedPayload("x", 1, 2, 3, episode_length, "heuristic", ()))


def epoch_payload(val_accuracy: float, val_loss: float = 1.5) -> EpochCompletedPayload:
    return EpochCompletedPayload(2.0, 40.0, val_loss, val_accuracy, 1, 0, (), "WAIT", None, True,
                                 0.25, RewardComponents(attribution=0.25),
                                 committed_accuracy=55.0, host_accuracy=50.0)


def test_epoch_values_are_per_env_series_stepped_by_global_epoch():
    points = MetricMapper().points([
        started(episode_length=5),
        event(1, T.EPOCH_COMPLETED, epoch_payload(61.0), batch=2, env_id=1, epoch=3),
    ])
    step, ts = 2 * 5 + 3, 1001.0
    assert points == [
        MetricPoint("env1/train_loss", step, 2.0, ts),
        MetricPoint("env1/train_accuracy", step, 40.0, ts),
        MetricPoint("env1/val_loss", step, 1.5, ts),
        MetricPoint("env1/val_accuracy", step, 61.0, ts),
        MetricPoint("env1/committed_accuracy", step, 55.0, ts),
        MetricPoint("env1/host_accuracy", step, 50.0, ts),
        MetricPoint("env1/reward", step, 0.25, ts),
        MetricPoint("env1/seeds_live", step, 1.0, ts),
        MetricPoint("env1/seeds_fossilized", step, 0.0, ts),
    ]


def test_a_nan_loss_is_kept_as_measured():
    points = MetricMapper().points([
        started(), event(1, T.EPOCH_COMPLETED, epoch_payload(10.0, val_loss=math.nan), batch=0,
                         env_id=0, epoch=0)])
    (val_loss,) = [p for p in points if p.key == "env0/val_loss"]
    assert math.isnan(val_loss.value)


def test_episode_and_batch_series_are_stepped_by_batch():
    points = MetricMapper().points([
        event(1, T.EPISODE_OUTCOME, EpisodeOutcomePayload(70.0, 1.2, 2, 1, 1, 3.5, 68.0, 60.0),
              batch=4, env_id=0),
        event(2, T.BATCH_COMPLETED, BatchCompletedPayload(65.0, 3.0, 2, 63.0, 58.0), batch=4),
    ])
    assert [(p.key, p.step, p.value) for p in points] == [
        ("env0/episode_return", 4, 3.5),
        ("env0/episode_final_accuracy", 4, 70.0),
        ("env0/episode_committed_accuracy", 4, 68.0),
        ("env0/episode_param_ratio", 4, 1.2),
        ("episode/return", 4, 3.0),
        ("episode/val_accuracy", 4, 65.0),
        ("episode/committed_accuracy", 4, 63.0),
        ("episode/host_accuracy", 4, 58.0),
    ]


def test_a_run_recorded_before_committed_accuracy_has_no_such_points():
    """Events of an older esper lack the committed and host-only accuracy: None is "not
    measured", so no point (a 0 would plot a measurement that never happened)."""
    old_epoch = replace(epoch_payload(61.0), committed_accuracy=None, host_accuracy=None)
    points = MetricMapper().points([
        started(), event(1, T.EPOCH_COMPLETED, old_epoch, batch=0, env_id=0, epoch=0),
        event(2, T.BATCH_COMPLETED, BatchCompletedPayload(65.0, 3.0, 2), batch=0)])
    keys = {p.key for p in points}
    assert "env0/val_accuracy" in keys and "episode/val_accuracy" in keys
    assert not any("committed" in key or "host" in key for key in keys)


def test_every_numeric_ppo_field_is_a_batch_series_nested_heads_included():
    cls = PAYLOAD_TYPES[T.PPO_UPDATE_COMPLETED]
    payload = _filled(cls)
    points = MetricMapper().points([event(1, T.PPO_UPDATE_COMPLETED, payload, batch=7)])
    keys = {p.key for p in points}
    assert {"ppo/policy_loss", "ppo/value_loss", "ppo/approx_kl", "ppo/clip_fraction"} <= keys
    assert all(p.step == 7 for p in points)
    assert keys == {f"ppo/{name}" for name, _ in numeric_fields(payload)}
    hints = typing.get_type_hints(cls)
    for name in [n for n, hint in hints.items() if dataclasses.is_dataclass(hint)]:
        assert any(key.startswith(f"ppo/{name}/") for key in keys)  # e.g. ppo/entropy_per_head/op


def test_slot_probe_values_are_series_and_unmeasured_ones_give_no_point():
    measured = SeedStageChangedPayload("TRAINING", "BLENDING", gradient_health=0.8,
                                       has_vanishing=False, has_exploding=None,
                                       isolation_violations=0, seed_gradient_norm_ratio=None)
    points = MetricMapper().points([
        started(episode_length=4),
        event(1, T.SEED_STAGE_CHANGED, SeedStageChangedPayload("DORMANT", "GERMINATED"), batch=0,
              env_id=0, epoch=1, slot_id="r0c1"),
        event(2, T.SEED_STAGE_CHANGED, measured, batch=1, env_id=0, epoch=2, slot_id="r0c1"),
    ])
    assert [(p.key, p.step, p.value) for p in points] == [
        ("env0/r0c1/gradient_health", 6, 0.8),
        ("env0/r0c1/has_vanishing", 6, 0.0),
        ("env0/r0c1/isolation_violations", 6, 0.0),
    ]


def test_an_epoch_before_training_started_is_an_error():
    with pytest.raises(ValueError, match="before TRAINING_STARTED"):
        MetricMapper().points([event(0, T.EPOCH_COMPLETED, epoch_payload(1.0), batch=0, env_id=0,
                                     epoch=0)])


def _filled(cls):
    """An instance of a payload class: distinct numbers, nested records filled, no None."""
    values = {}
    for i, (name, hint) in enumerate(typing.get_type_hints(cls).items()):
        kind = next(a for a in (*typing.get_args(hint), hint) if a is not type(None))
        if typing.get_origin(hint) is tuple:
            values[name] = ()
        elif dataclasses.is_dataclass(kind):
            values[name] = _filled(kind)
        else:
            values[name] = {bool: True, int: i, str: "s"}.get(kind, i + 0.5)
    return cls(**values)


def test_an_event_without_the_batch_of_its_step_gives_no_point() -> None:
    """A point needs its step: an EPISODE_OUTCOME emitted outside a batch is not plotted at
    step 0 (the registry's metrics.step is NOT NULL; MLflow would misplace it)."""
    outcome = EpisodeOutcomePayload(90.0, 1.1, 0, 0, 0, 1.5)
    events = [event(0, T.EPISODE_OUTCOME, outcome, env_id=0),
              event(1, T.EPISODE_OUTCOME, outcome, batch=3, env_id=0)]
    assert [(p.key, p.step) for p in MetricMapper().points(events)] == [
        ("env0/episode_return", 3), ("env0/episode_final_accuracy", 3),
        ("env0/episode_param_ratio", 3)]
