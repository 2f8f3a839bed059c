"""A non-finite reward in a real run: recorded by the PPO update, never stepped into the policy's
weights, and the run goes on (issue 19, item 8)."""

from __future__ import annotations

import math

import pytest
import torch

from esper.registry import RunStatus
from tests.simic.probes.probe_runs import PPO_PROBES, Recorded, T, probe_spec

HUGE = 1e308  # a terminal reward weight whose reward overflows to infinity


def _infinite_reward_run(path, normalize: bool) -> Recorded:
    spec = probe_spec("lstm", PPO_PROBES, ppo={"normalize_rewards": normalize},
                      reward={"mode": "shaped", "weights": {"terminal_accuracy": HUGE}})
    return Recorded(spec, path)


@pytest.fixture(scope="module")
def raw_rewards(tmp_path_factory) -> Recorded:
    """Rewards not normalised: the infinite reward reaches the returns and the losses."""
    return _infinite_reward_run(tmp_path_factory.mktemp("raw") / "runs.db", normalize=False)


def _finite_weights(recorded: Recorded) -> bool:
    return all(torch.isfinite(p).all() for p in recorded.result.policy.network.parameters())


def test_a_non_finite_loss_is_recorded_and_not_stepped_into_the_policy(raw_rewards):
    assert raw_rewards.result.record.status is RunStatus.FINISHED
    assert len(raw_rewards.updates) == 2  # the second batch acted on finite weights
    for update in raw_rewards.updates:
        assert not math.isfinite(update.value_loss) and update.epochs_completed == 0
    assert [e.batch for e in raw_rewards.of(T.NUMERICAL_INSTABILITY_DETECTED)] == [0, 1]
    assert _finite_weights(raw_rewards)


def test_a_non_finite_first_gradient_reading_reports_drift_0_and_is_a_pathology(raw_rewards):
    first = raw_rewards.updates[0]
    assert first.gradient_norm_drift == 0.0 and first.gradient_health_drift == 0.0
    (event, *_) = [e for e in raw_rewards.of(T.GRADIENT_PATHOLOGY_DETECTED) if e.batch == 0]
    assert event.data.anomaly_type == "gradient_norm_drift" and event.data.ema is None
    assert not math.isfinite(event.data.value)


def test_an_infinite_reward_does_not_poison_the_reward_scale(tmp_path):
    recorded = _infinite_reward_run(tmp_path / "runs.db", normalize=True)
    stats = recorded.result.policy.reward_stats
    assert math.isfinite(stats.var.item()) and math.isfinite(stats.mean.item())
    assert all(u.epochs_completed == 1 and math.isfinite(u.value_loss) for u in recorded.updates)
    assert _finite_weights(recorded)
