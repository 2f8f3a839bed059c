"""`seed_telemetry` probe: per-seed snapshots recorded on EPOCH_COMPLETED and fed to the
observation of the learned policies."""

import time
from dataclasses import asdict, replace

import pytest
import torch

from esper.experiment.compile import compile_spec
from esper.leyline.events import TelemetryEventType as T
from esper.leyline.seed_telemetry import SeedTelemetry
from esper.leyline.stages import SeedStage
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext
from esper.simic.ppo_policy import PPOPolicy
from esper.simic.probes.seed_telemetry import SeedTelemetryProbe, sync_telemetry
from esper.tamiyo.features import (SEED_TELEMETRY_FEATURES, encode, observation_size,
                                   telemetry_features)
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.host_step import run_epoch
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import record_run

LSTM = {"type": "lstm", "feature_dim": 16, "hidden_dim": 16}


@pytest.fixture(scope="module")
def heuristic(tmp_path_factory):
    """The growing experiment: seeds germinate, train, blend and fossilise."""
    return record_run(tmp_path_factory.mktemp("run"), ["seed_telemetry"],
                      training={"envs": 1, "batches": 1, "episode_length": 14})


def _slots(recorded):
    return [(e, slot) for e in recorded.of(T.EPOCH_COMPLETED) for slot in e.data.slots]


def test_every_seed_has_a_snapshot_of_its_epoch_and_an_empty_slot_none(heuristic):
    slots = _slots(heuristic)
    assert any(slot.telemetry is None for _, slot in slots)  # empty before germination
    seeded = [(e, slot) for e, slot in slots if slot.blueprint is not None]
    assert seeded
    for event, slot in slots:
        assert (slot.telemetry is None) == (slot.blueprint is None)
    for event, slot in seeded:
        snapshot = slot.telemetry
        assert snapshot.stage == slot.stage and snapshot.blueprint == slot.blueprint
        assert snapshot.alpha == slot.alpha
        assert snapshot.epoch == event.epoch and snapshot.max_epochs == 14
        assert snapshot.seed_id.startswith("seed")
        assert 0 < time.time() - snapshot.captured_at < 3600
        if slot.stage not in ("PRUNED", "EMBARGOED", "RESETTING"):
            assert snapshot.accuracy == event.data.val_accuracy  # recorded this epoch


def test_gradient_signals_are_none_until_the_seed_trained_then_measured(heuristic):
    snapshots = [slot.telemetry for _, slot in _slots(heuristic) if slot.telemetry is not None]
    germinated = [s for s in snapshots if s.stage == "GERMINATED"]
    assert germinated and all(s.gradient_norm is None and s.gradient_health is None
                              and s.has_vanishing is None and s.has_exploding is None
                              for s in germinated)
    later = [s for s in snapshots if s.stage in ("BLENDING", "HOLDING", "FOSSILIZED")]
    assert later and all(s.gradient_norm is not None and s.gradient_norm > 0 for s in later)
    assert all(0.0 <= s.gradient_health <= 1.0 and s.has_exploding is False for s in later)


def test_the_ten_features_of_every_recorded_snapshot_lie_in_minus_one_to_one(heuristic):
    snapshots = [slot.telemetry for _, slot in _slots(heuristic)]
    for snapshot in snapshots:
        features = telemetry_features(snapshot)
        assert len(features) == SEED_TELEMETRY_FEATURES == 10
        assert all(-1.0 <= f <= 1.0 for f in features), (snapshot, features)
    assert telemetry_features(None) == [-1.0] * 10


def test_features_follow_the_spec_formulas_and_saturate():
    snapshot = SeedTelemetry(
        seed_id="seed0", blueprint="norm", stage="BLENDING", epochs_in_stage=80, alpha=0.4,
        accuracy=63.0, accuracy_delta=-25.0, epoch=7, max_epochs=14, gradient_norm=float("inf"),
        gradient_health=0.2, has_vanishing=False, has_exploding=True, captured_at=0.0)
    assert telemetry_features(snapshot) == pytest.approx(
        [1.0, 0.2, 0.0, 1.0, 1.0, 0.63, -1.0, SeedStage.BLENDING.value / 10, 0.4, 0.5])


def test_the_snapshot_matches_the_seed_state_and_grows_the_observation_by_ten_per_slot():
    spec = growing_spec(slots={"enabled": ["r0c0", "r0c1"], "max_seeds": 2},
                        telemetry={"probes": ["seed_telemetry"]})
    pipeline = compile_spec(spec)
    env = EnvState.fresh(0, spec, pipeline.data, pipeline.device)
    probe = SeedTelemetryProbe(episode_length=14)
    probe.episode_started([env])
    env.model.germinate("r0c1", "conv_light", accuracy=10.0)
    env.model.slot("r0c1").advance()  # TRAINING: in the forward pass, measured
    schedule = BatchSchedule(pipeline.data.n_train, pipeline.data.n_val, 50, 1, "full", 1)
    env.last_result = run_epoch(env.model, env.host_optimizer, pipeline.data, schedule, 0, 0, 1.0)
    env.model.slot("r0c1").record_accuracy(env.last_result.val_accuracy)
    probe.epoch_validated(env, StepContext(0, 0, 3, 3), stabilised=False)

    state = env.model.slot("r0c1").state
    snapshot = env.seed_telemetry["r0c1"]
    again = sync_telemetry(env.model.slot("r0c1"), 3, 14)
    assert replace(again, captured_at=snapshot.captured_at) == snapshot
    assert (snapshot.seed_id, snapshot.stage, snapshot.epochs_in_stage) == (
        state.seed_id, "TRAINING", state.epochs_in_stage)
    assert (snapshot.gradient_norm, snapshot.gradient_health, snapshot.has_vanishing,
            snapshot.has_exploding) == (state.gradient_norm, state.gradient_health,
                                        state.has_vanishing, state.has_exploding)
    assert snapshot.gradient_norm is not None
    assert (snapshot.accuracy, snapshot.accuracy_delta) == (
        state.current_accuracy, state.improvement_since_stage_start)
    assert (snapshot.alpha, snapshot.epoch, snapshot.max_epochs) == (0.0, 3, 14)
    assert "r0c0" not in env.seed_telemetry  # empty slot: no snapshot

    obs = env.observe(3, 14)
    assert obs.seed_telemetry and obs.slots[1].telemetry == snapshot
    assert obs.slots[0].telemetry is None
    assert observation_size(2, True) - observation_size(2, False) == 2 * 10
    assert len(encode(obs)) == observation_size(2, True)
    env.seed_telemetry = None  # the probe off
    assert len(encode(env.observe(3, 14))) == observation_size(2, False)


def test_the_lstm_policy_learns_from_the_larger_observation(tmp_path):
    spec = growing_spec(policy=LSTM, telemetry={"probes": ["seed_telemetry"]})
    assert PPOPolicy(spec).config.obs_dim == observation_size(1, True)
    assert PPOPolicy(growing_spec(policy=LSTM)).config.obs_dim == observation_size(1, False)
    recorded = record_run(tmp_path, ["seed_telemetry"], policy=LSTM,
                          training={"envs": 2, "batches": 1, "episode_length": 6})
    [update] = recorded.of(T.PPO_UPDATE_COMPLETED)
    assert torch.isfinite(torch.tensor(update.data.policy_loss))
    assert len(recorded.of(T.EPOCH_COMPLETED)) == 2 * 6


@pytest.fixture(scope="module")
def pruning(tmp_path_factory):
    """The growing experiment with a fossilisation bar no seed meets: HOLDING seeds are pruned,
    then cool down (EMBARGOED, RESETTING) within the episode."""
    heuristic_options = {**asdict(growing_spec().policy.heuristic),
                         "fossilize_min_contribution": 100.0}
    return record_run(tmp_path_factory.mktemp("pruning"), ["seed_telemetry"],
                      policy={"heuristic": heuristic_options},
                      training={"envs": 1, "batches": 1, "episode_length": 16})


def test_a_pruned_seed_has_no_gradient_signals_while_it_cools_down(pruning):
    """The module is gone from PRUNED on: nothing is measured, so the snapshot, the policy's
    observation and the stage-change events read None, not the last values before the prune."""
    cooling = [slot.telemetry for _, slot in _slots(pruning)
               if slot.stage in ("PRUNED", "EMBARGOED", "RESETTING")]
    assert cooling
    assert all((s.gradient_norm, s.gradient_health, s.has_vanishing, s.has_exploding)
               == (None,) * 4 for s in cooling)
    changes = [e.data for e in pruning.of(T.SEED_STAGE_CHANGED)
               if e.data.to_stage in ("PRUNED", "EMBARGOED", "RESETTING")]
    assert changes and all(c.gradient_health is None and c.seed_gradient_norm_ratio is None
                           for c in changes)
    measured = [e.data for e in pruning.of(T.SEED_STAGE_CHANGED) if e.data.to_stage == "HOLDING"]
    assert measured and measured[0].gradient_health is not None  # measured while it lived
