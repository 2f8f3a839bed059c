"""Which PPO-side probes run is decided once, when the policy is built."""

from __future__ import annotations

import torch

from esper.leyline.emitter import EventList
from esper.simic.ppo_policy import PPOPolicy
from tests.simic.probes.probe_runs import PPO_PROBES, probe_spec, rollout


def test_probes_that_are_off_have_no_object_and_an_update_measures_nothing():
    probes = PPOPolicy(probe_spec("lstm", ())).probes
    assert (probes.rollout_lstm, probes.gradient_drift, probes.anomalies) == (None, None, None)
    assert probes.begin_update() is None
    emitted = EventList()
    probes.after_act(None, emitted)
    assert emitted.events == []


def test_lstm_health_on_the_mlp_measures_nothing():
    probes = PPOPolicy(probe_spec("mlp", ("lstm_health",))).probes
    assert probes.rollout_lstm is None and probes.begin_update() is None


def test_every_probe_on_measures_inside_the_update():
    spec = probe_spec("lstm", PPO_PROBES)
    policy = PPOPolicy(spec)
    update = policy.probes.begin_update()
    assert update.lstm is not None and update.heads is not None and update.gradient is not None
    # 8 action heads + the value head; the policy as everything but the action heads + each
    # action head (measured together after backward)
    assert len(update.heads.groups) == 9 and len(update.gradient.groups) == 1 + 8


def test_a_policy_reports_the_same_update_with_only_its_probe_fields_added():
    reports = []
    for probes in [(), PPO_PROBES]:
        spec = probe_spec("lstm", probes)
        torch.manual_seed(0)  # the same initial network
        policy = PPOPolicy(spec)
        policy.start_episode(2)
        reports.append(rollout(policy, spec, [1.0, 0.0]))
    off, on = (r.metrics for r in reports)
    core = [name for name, value in vars(off).items() if value is not None
            and name != "update_time_ms"]
    # probes observe, they never change the update (same seed, same rollout, same numbers)
    assert all(getattr(on, name) == getattr(off, name) for name in core)
    assert sum(value is not None for value in vars(on).values()) > len(core) + 1
