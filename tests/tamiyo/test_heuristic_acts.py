"""The heuristic acts on a host trained from scratch: it germinates by its deadline, and the
seed is blended, held and fossilised before the episode ends (docs/pipeline.md §5)."""

from __future__ import annotations

import pytest

from esper.experiment.runner import run
from esper.leyline.actions import WAIT, Op
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from esper.tamiyo.heuristic import FAST_TEMPO, STANDARD_TEMPO, HeuristicPolicy
from tests.spec_factory import tiny_spec
from tests.tamiyo.observations import EMPTY, observation

IMPROVING = dict(host_stabilised=False, plateau_epochs=0)  # a host trained from scratch


def policy(min_training_epochs: int = 3, heuristic: dict | None = None,
           **gates) -> HeuristicPolicy:
    """The heuristic with `heuristic`'s settings over the defaults; G2 wants
    `min_training_epochs` epochs in TRAINING."""
    spec = tiny_spec(gates={"G2": {"min_training_epochs": min_training_epochs}, **gates},
                     policy={"heuristic": heuristic or {}})
    heuristic = HeuristicPolicy(spec.policy.heuristic, 3, spec.slots.min_prune_age, spec.gates)
    heuristic.start_episode(1)
    return heuristic


def act(heuristic: HeuristicPolicy, epoch: int, episode_length: int = 15, **fields):
    obs = observation(EMPTY, epoch=epoch, episode_length=episode_length, **{**IMPROVING, **fields})
    return heuristic.act([obs])[0]


def test_the_deadline_leaves_time_to_enter_training_pass_g2_blend_and_be_held():
    # 15 epochs, last epoch 14: germinate at 4, TRAINING from 5, G2 after 3 epochs (8),
    # blend 5 epochs (13), HOLDING, contribution measured, FOSSILIZE at 14.
    assert policy().germination_deadline(15) == 4
    assert policy(min_training_epochs=10).germination_deadline(30) == 12
    assert policy(min_training_epochs=10).germination_deadline(15) < 0  # no seed can finish


def test_strict_mode_counts_the_minimum_epochs_in_blending():
    strict = policy(mode="strict", G3={"min_blending_epochs": 7})
    assert strict.germination_deadline(15) == 14 - (1 + 3 + 7 + 1)


@pytest.mark.parametrize("epoch", [0, 3, 4])
def test_before_the_deadline_or_min_epoch_an_improving_host_waits(epoch):
    assert act(policy(), epoch) == WAIT  # min_epoch 5 holds back even the deadline at 4


def test_at_the_deadline_an_improving_host_grows_a_seed_standard_or_fast_as_time_allows():
    standard = act(policy(heuristic={"min_epoch": 1}), 4)
    assert (standard.op, standard.tempo) == (Op.GERMINATE, STANDARD_TEMPO)
    fast = act(policy(), 5)  # min_epoch 5: only a FAST seed is fossilised by epoch 14
    assert (fast.op, fast.tempo) == (Op.GERMINATE, FAST_TEMPO)


def test_too_late_for_any_seed_an_improving_host_waits():
    assert act(policy(), 7) == WAIT  # 7 + 1 + 3 + 3 + 1 > 14


def test_a_plateau_still_germinates_before_the_deadline():
    plateaued = act(policy(min_training_epochs=10), 10, episode_length=30,
                    host_stabilised=True, plateau_epochs=3)
    assert (plateaued.op, plateaued.tempo) == (Op.GERMINATE, STANDARD_TEMPO)


def test_a_plateau_too_late_for_standard_tempo_germinates_fast():
    late = act(policy(min_training_epochs=10), 13, episode_length=30,
               host_stabilised=True, plateau_epochs=3)
    assert (late.op, late.tempo) == (Op.GERMINATE, FAST_TEMPO)


def test_the_default_heuristic_grows_and_fossilises_a_seed_on_a_host_trained_from_scratch(
        tmp_path):
    spec = tiny_spec(
        task={"dataset": "digits", "max_train": 300, "max_val": 200, "batch_size": 32},
        blueprints=["conv_light"], gates={"G2": {"min_training_epochs": 3}},
        training={"envs": 1, "batches": 1, "episode_length": 15},
        telemetry={"probes": []}, tracking={"mlflow": False})
    result = run(spec, registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        run_id = result.record.run_id
        germinated = [e.epoch for e in registry.events(run_id, types=[T.SEED_GERMINATED])]
        fossilized = [e.epoch for e in registry.events(run_id, types=[T.SEED_FOSSILIZED])]
    assert germinated == [5]  # min_epoch 5, the deadline at 4 passed: a FAST seed
    assert fossilized == [13]  # 5 + 1 (TRAINING) + 3 (G2) + 3 (blend) + 1 (HOLDING)
