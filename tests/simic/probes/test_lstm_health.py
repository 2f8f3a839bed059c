"""lstm_health (TELE-340): the LSTM state measured in every PPO update and after every act."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from esper.experiment import load
from esper.leyline.emitter import EventList
from esper.leyline.events import Severity
from esper.simic.ppo_policy import PPOPolicy
from esper.simic.probes.lstm_health import RolloutLSTMHealth, UpdateLSTMHealth
from esper.tamiyo.actor_critic import LSTMState
from tests.simic.probes.probe_runs import (DRIFT_FIELDS, HEAD_FIELDS, LSTM_FIELDS, T, Recorded,
                                           observations, probe_spec, rollout)


def test_every_update_of_an_lstm_run_reports_a_measured_healthy_state(lstm_all_on):
    updates = lstm_all_on.updates
    assert len(updates) == 2
    hidden = lstm_all_on.spec.policy.hidden_dim
    for update in updates:
        assert 0 < update.lstm_h_norm <= math.sqrt(hidden)  # |h| = |o * tanh(c)| < 1
        assert 0 < update.lstm_h_max < 1
        assert update.lstm_c_norm > 0 and update.lstm_c_max > 0
        assert update.lstm_has_nan is False and update.lstm_has_inf is False
    assert lstm_all_on.of(T.LSTM_HEALTH_WARNING) == []  # default bounds: a healthy run


def test_the_mlp_reports_none_for_the_six_fields(mlp_all_on):
    assert len(mlp_all_on.updates) == 2
    for update in mlp_all_on.updates:
        assert all(getattr(update, name) is None for name in LSTM_FIELDS)
    assert mlp_all_on.of(T.LSTM_HEALTH_WARNING) == []


def test_the_tele340_experiment_reports_a_healthy_lstm_on_every_update(tmp_path):
    experiment = Path(__file__).parents[3] / "experiments" / "lstm_tele340.yaml"
    spec = load(experiment, ("training.envs=2", "training.batches=2", "training.episode_length=4",
                             "task.max_train=128", "task.max_val=64", "tracking.mlflow=false"))
    assert spec.policy.type == "lstm" and spec.telemetry.enabled("lstm_health")
    updates = Recorded(spec, tmp_path / "runs.db").updates
    assert len(updates) == 2
    assert all(u.lstm_h_norm > 0 and u.lstm_has_nan is False for u in updates)


def test_with_the_probe_off_the_fields_are_none_and_nothing_warns(lstm_all_off):
    for update in lstm_all_off.updates:
        assert all(getattr(update, name) is None for name in LSTM_FIELDS)
    assert lstm_all_off.of(T.LSTM_HEALTH_WARNING) == []


def test_a_norm_above_max_norm_warns_once_per_env_per_episode(tmp_path):
    spec = probe_spec("lstm", ("lstm_health",), lstm_health={"max_norm": 0.01})
    recorded = Recorded(spec, tmp_path / "runs.db")
    warnings = recorded.of(T.LSTM_HEALTH_WARNING)
    assert sorted((e.batch, e.env_id) for e in warnings) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for event in warnings:
        assert event.severity is Severity.WARNING and event.epoch is not None
        assert event.data.reason == "norm_above_max"
        assert max(event.data.h_norm, event.data.c_norm) > 0.01
        assert event.data.has_nan is False and event.data.has_inf is False
    # warnings are emitted during the rollout: before the episode's PPO update
    first_update = recorded.of(T.PPO_UPDATE_COMPLETED)[0].seq
    assert all(e.seq < first_update for e in warnings if e.batch == 0)
    for update in recorded.updates:  # this probe only: the others' fields stay unmeasured
        assert update.lstm_h_norm > 0
        assert all(getattr(update, name) is None for name in HEAD_FIELDS + DRIFT_FIELDS)


def _lstm_network():
    return PPOPolicy(probe_spec("lstm", ("lstm_health",))).network


def _forward(network, state):
    T_, N = 3, state.h.shape[0]
    obs = torch.randn(T_, N, network.config.obs_dim, generator=torch.Generator().manual_seed(0))
    blueprints = torch.zeros(T_, N, network.config.n_slots, dtype=torch.int64)
    return network(obs, blueprints, state)


def test_a_nan_fed_into_the_hidden_state_is_measured_and_warned_once_per_episode():
    network = _lstm_network()
    state = network.initial_state(2)
    state.h[0, 3] = float("nan")  # env 0 only
    with torch.no_grad():
        out = _forward(network, state)

    update = UpdateLSTMHealth()
    update.observe(out.hidden, out.cells)
    health = update.result()
    assert health.has_nan is True and health.has_inf is False
    assert math.isnan(health.h_norm) and math.isnan(health.c_max)  # NaN is never hidden

    rollout_probe = RolloutLSTMHealth(probe_spec().telemetry.lstm_health)
    rollout_probe.start_episode(2)
    emitted = EventList()
    rollout_probe.observe(out.state, emitted)
    (warning,) = emitted.drain()
    assert warning.env_id == 0 and warning.severity is Severity.WARNING
    assert warning.event_type is T.LSTM_HEALTH_WARNING and warning.payload.reason == "nan"
    assert warning.payload.has_nan is True and math.isnan(warning.payload.h_norm)
    rollout_probe.observe(out.state, emitted)
    assert emitted.drain() == ()  # once per env per episode
    rollout_probe.start_episode(2)
    rollout_probe.observe(out.state, emitted)
    assert [w.env_id for w in emitted.drain()] == [0]


def test_a_norm_below_min_norm_warns():
    network = _lstm_network()
    with torch.no_grad():
        out = _forward(network, network.initial_state(2))
    options = probe_spec(lstm_health={"min_norm": 1e3}).telemetry.lstm_health
    probe = RolloutLSTMHealth(options)
    probe.start_episode(2)
    emitted = EventList()
    probe.observe(out.state, emitted)
    warnings = emitted.events
    assert [w.env_id for w in warnings] == [0, 1]
    assert {w.payload.reason for w in warnings} == {"norm_below_min"}


def test_an_infinite_cell_state_warns_in_the_rollout_and_shows_in_the_update():
    spec = probe_spec("lstm", ("lstm_health",))
    policy = PPOPolicy(spec)
    policy.start_episode(2)
    h, c = policy.state
    c = c.clone()
    c[1, 0] = float("inf")  # env 1's cell: h = o * tanh(inf) stays finite, so the policy acts
    policy.state = policy.buffer.initial_state = LSTMState(h, c)
    policy.act(observations(spec, 0))
    (warning,) = policy.drain_probe_events()
    assert warning.event_type is T.LSTM_HEALTH_WARNING and warning.env_id == 1
    assert warning.payload.reason == "inf" and warning.payload.has_inf is True
    assert math.isinf(warning.payload.c_norm) and math.isfinite(warning.payload.h_norm)
    assert policy.drain_probe_events() == ()  # drained
    policy.record_rewards([0.0, 0.0])
    spec_length = spec.training.episode_length
    for epoch in range(1, spec_length):
        policy.act(observations(spec, epoch))
        policy.record_rewards([0.0, 0.0])
    assert policy.drain_probe_events() == ()  # env 1 already warned this episode
    report = policy.end_episode(observations(spec, spec_length), batch=0)
    assert report.metrics.lstm_has_inf is True and report.metrics.lstm_has_nan is False
    assert math.isinf(report.metrics.lstm_c_max) and report.metrics.lstm_h_max < 1


def test_an_update_combines_its_evaluations_mean_of_norms_max_of_maxima_or_of_flags():
    update = UpdateLSTMHealth()
    ones = torch.ones(2, 1, 4)  # (T, N, H): every vector has norm 2, max 1
    update.observe(ones, ones)
    cells = 3 * torch.ones(2, 1, 4)
    cells[1, 0, 0] = float("inf")
    update.observe(3 * ones, cells)
    health = update.result()
    assert health.h_norm == pytest.approx((2 + 6) / 2)
    assert health.h_max == 3 and health.c_max == math.inf and health.c_norm == math.inf
    assert health.has_inf is True and health.has_nan is False


def test_with_the_probe_off_a_policy_measures_nothing_and_raises_no_event():
    spec = probe_spec("lstm", ())
    policy = PPOPolicy(spec)
    policy.start_episode(2)
    assert policy.probes.rollout_lstm is None and policy.probes.begin_update() is None
    report = rollout(policy, spec, [1.0, 0.5])
    assert policy.drain_probe_events() == ()
    assert report.events == ()
    assert all(getattr(report.metrics, name) is None for name in LSTM_FIELDS)
