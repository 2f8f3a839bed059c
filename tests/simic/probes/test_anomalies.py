"""anomalies: ratio explosion / collapse, value collapse and numerical instability per update."""

from __future__ import annotations

import math

import pytest

from esper.leyline.events import PPOAnomalyPayload, Severity
from esper.registry import RunStatus
from esper.simic.ppo_policy import PPOPolicy
from tests.simic.probes.probe_runs import PROBE_EVENTS, Recorded, T, probe_spec, rollout

ANOMALIES = (T.RATIO_EXPLOSION_DETECTED, T.RATIO_COLLAPSE_DETECTED, T.VALUE_COLLAPSE_DETECTED,
             T.NUMERICAL_INSTABILITY_DETECTED)


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Recorded:
    """Four update epochs at a large learning rate move the ratio; thresholds a hair from 1; an
    explained-variance bound no critic meets, checked after one warm-up update."""
    spec = probe_spec(
        "lstm", ("anomalies",), ppo={"update_epochs": 4, "target_kl": None, "lr": 3e-3},
        anomalies={"ratio_max": 1.0001, "ratio_min": 0.9999, "min_explained_variance": 1.5,
                   "warmup_batches": 1, "max_value_loss": 1e9})
    return Recorded(spec, tmp_path_factory.mktemp("tight") / "runs.db")


def _at(recorded: Recorded, event_type: T) -> dict[int, PPOAnomalyPayload]:
    return {e.batch: e.data for e in recorded.of(event_type)}


def test_a_ratio_past_its_bounds_is_an_explosion_or_a_collapse(tight):
    explosions = _at(tight, T.RATIO_EXPLOSION_DETECTED)
    collapses = _at(tight, T.RATIO_COLLAPSE_DETECTED)
    assert explosions and collapses
    for batch, update in enumerate(tight.updates):
        assert (batch in explosions) == (update.ratio_max > 1.0001)
        assert (batch in collapses) == (update.ratio_min < 0.9999)
    for batch, payload in explosions.items():
        update = tight.updates[batch]
        assert payload.anomaly_type == "ratio_explosion"
        assert (payload.ratio_max, payload.ratio_min, payload.approx_kl, payload.clip_fraction,
                payload.entropy, payload.explained_variance) == (
            update.ratio_max, update.ratio_min, update.approx_kl, update.clip_fraction,
            update.entropy, update.explained_variance)
        assert "ratio_max" in payload.detail
    assert all(p.anomaly_type == "ratio_collapse" for p in collapses.values())


def test_explained_variance_is_judged_only_after_the_warm_up(tight):
    collapses = _at(tight, T.VALUE_COLLAPSE_DETECTED)
    assert list(collapses) == [1]  # batch 0 is the warm-up update
    assert collapses[1].anomaly_type == "value_collapse"
    assert "explained_variance" in collapses[1].detail and "value_loss" not in collapses[1].detail
    assert collapses[1].explained_variance == tight.updates[1].explained_variance < 1.5


def test_anomaly_events_follow_their_update_before_the_batch_ends(tight):
    for batch in range(2):
        seqs = {e.event_type: e.seq for e in tight.events if e.batch == batch
                and e.event_type in (T.PPO_UPDATE_COMPLETED, T.BATCH_COMPLETED)}
        for event in tight.of(*ANOMALIES):
            if event.batch == batch:
                assert seqs[T.PPO_UPDATE_COMPLETED] < event.seq < seqs[T.BATCH_COMPLETED]
                assert event.env_id is None and event.severity is Severity.WARNING


def test_a_value_loss_past_its_bound_is_a_value_collapse_on_the_mlp_path(mlp_all_on):
    collapses = _at(mlp_all_on, T.VALUE_COLLAPSE_DETECTED)
    assert sorted(collapses) == [0, 1]  # no warm-up
    for batch, payload in collapses.items():
        assert "value_loss" in payload.detail
        update = mlp_all_on.updates[batch]
        assert update.value_loss > 1e-6 * (update.return_mean ** 2 + update.return_std ** 2)


def test_with_the_probe_off_nothing_is_detected(lstm_all_off):
    assert lstm_all_off.of(*PROBE_EVENTS) == []


@pytest.mark.parametrize("policy_type", ["lstm", "mlp"])
def test_a_nan_reward_is_a_numerical_instability(policy_type):
    spec = probe_spec(policy_type, ("anomalies",))
    policy = PPOPolicy(spec)
    policy.start_episode(2)
    report = rollout(policy, spec, [math.nan, 0.5])  # a NaN reaches the returns and the losses
    assert math.isnan(report.metrics.value_loss)
    (event,) = [e for e in report.events if e.event_type is T.NUMERICAL_INSTABILITY_DETECTED]
    assert event.severity is Severity.ERROR and event.env_id is None
    assert event.payload.anomaly_type == "numerical_instability"
    assert "value_loss" in event.payload.detail and "policy_loss" in event.payload.detail
    assert "ratio" not in event.payload.detail  # the ratios were computed before the NaN


def test_a_one_sample_batch_is_judged_without_its_unmeasured_ratio_spread(tmp_path):
    """One env x one epoch: a single sample, so ratio_std is None (not measured), not a crash."""
    spec = probe_spec("lstm", ("anomalies",),
                      training={"envs": 1, "episode_length": 1, "batches": 1})
    recorded = Recorded(spec, tmp_path / "runs.db")
    assert recorded.result.record.status is RunStatus.FINISHED
    (update,) = recorded.updates
    assert update.ratio_std is None
    assert recorded.of(T.NUMERICAL_INSTABILITY_DETECTED) == []


def test_the_value_loss_bound_is_scale_free(tmp_path):
    """Raw rewards 20x the default terminal weight: value losses far past 5 from a critic no
    worse than predicting 0; judged against the returns' scale, nothing collapsed."""
    spec = probe_spec("lstm", ("anomalies",), ppo={"normalize_rewards": False},
                      reward={"mode": "shaped", "weights": {"terminal_accuracy": 1.0}},
                      anomalies={"warmup_batches": 0, "min_explained_variance": -1e9})
    recorded = Recorded(spec, tmp_path / "runs.db")
    assert max(u.value_loss for u in recorded.updates) > 5.0  # the default bound, if absolute
    assert recorded.of(T.VALUE_COLLAPSE_DETECTED) == []
