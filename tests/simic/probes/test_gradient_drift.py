"""gradient_drift: EMA drift of the policy gradient norm and health across PPO updates."""

from __future__ import annotations

import math

import pytest
import torch

from esper.leyline.config import GradientDriftOptions
from esper.leyline.emitter import EventList
from esper.leyline.events import Severity
from esper.simic.ppo_policy import PPOPolicy
from esper.simic.probes.gradient_drift import (EPS, EMA, GradientDriftTracker, GradientReading)
from tests.simic.probes.probe_runs import DRIFT_FIELDS, Recorded, T, probe_spec

OPTIONS = GradientDriftOptions(momentum=0.99, threshold=0.5)


def test_the_first_value_initialises_the_ema_and_reports_zero():
    ema = EMA(0.99)
    assert ema.drift(2.0) == 0.0 and ema.value == 2.0


def test_drift_is_measured_against_the_ema_before_the_update():
    ema = EMA(0.9)
    ema.drift(2.0)
    assert ema.drift(3.0) == pytest.approx(abs(3.0 - 2.0) / (2.0 + EPS))
    assert ema.value == pytest.approx(0.9 * 2.0 + 0.1 * 3.0)
    assert ema.drift(1.0) == pytest.approx(abs(1.0 - 2.1) / (2.1 + EPS))


def test_a_zero_ema_gives_a_finite_drift_and_a_non_finite_value_is_not_taken_in():
    ema = EMA(0.99)
    ema.drift(0.0)
    assert ema.drift(1e-9) == pytest.approx(1e-9 / EPS)
    assert math.isnan(ema.drift(math.nan)) and ema.value == pytest.approx(0.99 * 0 + 0.01 * 1e-9)
    fresh = EMA(0.99)
    assert fresh.drift(math.nan) == 0.0 and fresh.value is None  # the first update reports 0


def test_the_tracker_state_round_trips_and_continues_identically():
    tracker = GradientDriftTracker(OPTIONS)
    for norm, health in [(1.0, 1.0), (1.5, 0.9), (0.7, 1.0)]:
        tracker.update(GradientReading(norm, health))
    state = tracker.state_dict()
    restored = GradientDriftTracker(OPTIONS)
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    reading = GradientReading(3.0, 0.2)
    assert restored.update(reading) == tracker.update(reading)


def test_only_a_drift_above_the_threshold_is_a_pathology_and_never_on_the_first_update():
    tracker = GradientDriftTracker(OPTIONS)
    first = tracker.update(GradientReading(100.0, 0.0))
    assert (first.norm_drift, first.health_drift) == (0.0, 0.0)
    emitted = EventList()
    tracker.report(first, emitted)
    assert emitted.drain() == ()
    drift = tracker.update(GradientReading(151.0, 0.2))  # norm: 0.51 > 0.5; health: 0 -> 0.2
    tracker.report(drift, emitted)
    events = emitted.drain()
    assert [e.payload.anomaly_type for e in events] == ["gradient_norm_drift",
                                                      "gradient_health_drift"]
    norm_event = events[0]
    assert norm_event.event_type is T.GRADIENT_PATHOLOGY_DETECTED
    assert norm_event.severity is Severity.WARNING and norm_event.env_id is None
    assert norm_event.payload.value == 151.0 and norm_event.payload.ema == 100.0
    assert norm_event.payload.drift == pytest.approx(0.51) and norm_event.payload.threshold == 0.5
    calm = tracker.update(GradientReading(110.0, 0.002))  # EMAs now 100.51 and 0.002
    assert calm.norm_drift == pytest.approx(9.49 / 100.51) and calm.health_drift < 1e-6
    tracker.report(calm, emitted)
    assert emitted.drain() == ()


def test_an_lstm_run_reports_zero_then_the_drift_of_its_gradient_norm(lstm_all_on):
    first, second = lstm_all_on.updates
    assert (first.gradient_norm_drift, first.gradient_health_drift) == (0.0, 0.0)
    # one update epoch: the reading is the pre-clip norm, and the EMA after one update is it
    expected = abs(second.pre_clip_grad_norm - first.pre_clip_grad_norm) / first.pre_clip_grad_norm
    assert second.gradient_norm_drift == pytest.approx(expected, rel=1e-4)
    assert second.gradient_health_drift >= 0 and math.isfinite(second.gradient_health_drift)
    above = [kind for kind, drift in [("gradient_norm_drift", second.gradient_norm_drift),
                                      ("gradient_health_drift", second.gradient_health_drift)]
             if drift > 0.5]  # the default threshold
    assert [e.data.anomaly_type for e in lstm_all_on.of(T.GRADIENT_PATHOLOGY_DETECTED)] == above


def test_an_mlp_run_reports_the_drift_too(mlp_all_on):
    first, second = mlp_all_on.updates
    assert first.gradient_norm_drift == 0.0 and second.gradient_norm_drift > 0


def test_with_the_probe_off_the_fields_are_none_and_nothing_is_detected(lstm_all_off):
    for update in lstm_all_off.updates:
        assert all(getattr(update, name) is None for name in DRIFT_FIELDS)
    assert lstm_all_off.of(T.GRADIENT_PATHOLOGY_DETECTED) == []
    checkpoint = torch.load(lstm_all_off.artifacts["policy"], weights_only=False)
    assert checkpoint["probes"] == {"gradient_drift": None}


def test_a_tiny_threshold_detects_the_drift_of_the_second_update(tmp_path):
    spec = probe_spec("lstm", ("gradient_drift",), gradient_drift={"threshold": 1e-6})
    recorded = Recorded(spec, tmp_path / "runs.db")
    events = recorded.of(T.GRADIENT_PATHOLOGY_DETECTED)
    assert events and {e.batch for e in events} == {1}  # the first update only initialises
    second = recorded.updates[1]
    by_type = {e.data.anomaly_type: e for e in events}
    norm_event = by_type["gradient_norm_drift"]
    assert norm_event.data.drift == second.gradient_norm_drift > 1e-6
    assert norm_event.data.ema > 0 and norm_event.data.threshold == 1e-6
    assert norm_event.seq == recorded.of(T.PPO_UPDATE_COMPLETED)[1].seq + 1  # right after it

    # the tracker is saved with the policy and a run starting from it continues the EMAs
    checkpoint = recorded.artifacts["policy"]
    saved = torch.load(checkpoint, weights_only=False)["probes"]["gradient_drift"]
    assert saved["norm_ema"] > 0 and 0 <= saved["health_ema"] <= 1
    policy = PPOPolicy(spec)
    policy.load(checkpoint)
    assert policy.probes.gradient_drift.state_dict() == saved


def test_heads_cut_off_by_the_causal_masks_are_not_counted_as_vanishing(lstm_all_on):
    """No op of the run needs alpha_speed / alpha_curve (head_grad_norms: None): their exact-zero
    gradients are left out, so a healthy policy gradient reads health 1, whatever the action mix."""
    first = lstm_all_on.updates[0]
    assert first.head_alpha_speed_grad_norm is None and first.head_alpha_curve_grad_norm is None
    drift = lstm_all_on.result.policy.probes.gradient_drift
    assert drift.health.value == 1.0
    assert all(u.gradient_health_drift == 0.0 for u in lstm_all_on.updates)
