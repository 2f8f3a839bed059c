"""Reward mode escrow: a seed's credit is paid while it lives, kept when it is fossilised, taken
back when it is pruned or still live at the episode's end."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

import pytest

from esper.experiment.runner import run
from esper.leyline.actions import Op
from esper.leyline.events import TelemetryEventType as T
from esper.leyline.stages import SeedStage
from esper.registry import Registry
from esper.simic.escrow import CreditEscrow
from esper.simic.rewards import SeedCredit, escrow_targets
from tests.growing_spec import growing_spec
from tests.simic.test_rewards import GAMMA, reward


def test_credit_is_paid_as_the_change_of_its_target():
    escrow = CreditEscrow()
    assert escrow.settle({"a": 2.0}, live={"a"}, kept=()) == 2.0
    assert escrow.settle({"a": 5.0}, live={"a"}, kept=()) == 3.0
    assert escrow.settle({"a": 4.0}, live={"a"}, kept=()) == -1.0
    assert escrow.balances == {"a": 4.0}


def test_credit_is_kept_when_the_seed_is_fossilised():
    escrow = CreditEscrow()
    paid = escrow.settle({"a": 3.0}, live={"a"}, kept=())
    paid += escrow.settle({"a": 4.0}, live=(), kept={"a"})  # fossilised by this step's action
    paid += escrow.settle({}, live=(), kept={"a"})  # later steps, the episode's end included
    assert paid == 4.0 and escrow.balances == {}


def test_credit_is_taken_back_when_the_seed_is_pruned():
    escrow = CreditEscrow()
    paid = escrow.settle({"a": 3.0, "b": 1.0}, live={"a", "b"}, kept=())
    assert escrow.settle({"a": 3.5, "b": 1.0}, live={"b"}, kept=()) == pytest.approx(-3.0)
    paid += -3.0
    assert paid == pytest.approx(1.0) and escrow.balances == {"b": 1.0}


def test_live_credit_is_taken_back_at_the_episodes_end():
    escrow = CreditEscrow()
    paid = sum(escrow.settle({"a": target}, live={"a"}, kept=()) for target in (2.0, 6.0, 9.0))
    paid += escrow.settle({"a": 9.0}, live=(), kept=())  # the last epoch: nothing is live after
    assert paid == 0.0 and escrow.balances == {}


def test_harm_taken_back_on_prune_is_a_payment():
    escrow = CreditEscrow()
    assert escrow.settle({"a": -2.0}, live={"a"}, kept=()) == -2.0
    assert escrow.settle({"a": -2.0}, live=(), kept=()) == 2.0  # pruning a harmful seed pays


def credits(*contributions: float) -> tuple[SeedCredit, ...]:
    # progress far above each contribution: the attribution is the contribution itself
    return tuple(SeedCredit(f"s{i}", c, 100.0) for i, c in enumerate(contributions))


def test_positive_credits_together_are_bounded_by_the_real_gain():
    # a contribution of 30 points is dependency: the model is only 4 points above the host alone
    targets = escrow_targets(credits(30.0, 10.0, -1.0), real_gain=4.0)
    assert targets == pytest.approx({"s0": 3.0, "s1": 1.0, "s2": -1.0})
    assert escrow_targets(credits(2.0), real_gain=4.0) == {"s0": 2.0}  # within the gain
    assert escrow_targets(credits(), real_gain=-1.0) == {}


def test_no_positive_credit_while_the_seeds_together_hurt():
    assert escrow_targets(credits(2.0, -1.0), real_gain=-0.5) == {"s0": 0.0, "s1": -1.0}


def test_escrow_mode_pays_the_escrow_and_charges_indecision():
    components = reward("escrow", escrow=2.5, holding_undecided=2)
    assert components.escrow == 2.5 and components.attribution == 0.0
    assert components.holding == pytest.approx(-0.2)  # holding_cost -0.1 per undecided seed


def test_escrow_terminal_is_on_the_committed_models_gain_over_the_reference_host():
    components = reward("escrow", last_epoch=True, val_accuracy=90.0, committed_accuracy=70.0,
                        reference_accuracy=66.0)
    assert components.terminal == pytest.approx(1.0 * (70.0 - 66.0))  # terminal_gain 1.0
    assert reward("escrow", committed_accuracy=70.0, reference_accuracy=66.0).terminal == 0.0


def test_escrow_takes_back_the_live_seeds_shaping_at_the_end():
    # a fossil (potential 6) and a live HOLDING seed (5.5): at the end only the fossil is kept
    step = dict(potential_before=11.5, potential_after=11.5, fossil_potential_after=6.0)
    assert reward("escrow", **step).stage_shaping == pytest.approx(0.3 * (GAMMA * 11.5 - 11.5))
    assert reward("escrow", last_epoch=True, **step).stage_shaping == pytest.approx(
        0.3 * (GAMMA * 6.0 - 11.5))


def test_escrow_has_no_fossilize_bonus_but_a_wrong_stage_penalty():
    assert reward("escrow", op=Op.FOSSILIZE, target_stage=SeedStage.HOLDING,
                  target_contribution=5.0).fossilize == 0.0
    assert reward("escrow", op=Op.FOSSILIZE, target_stage=SeedStage.BLENDING).fossilize == -1.0


def escrow_by_episode(tmp_path, spec) -> tuple[dict[int, float], dict[int, int], int]:
    """env id -> the escrow summed over its episode, env id -> seeds it fossilised, and the
    number of steps that paid or took back escrow."""
    result = run(spec, registry=tmp_path / "runs.db")
    paid: dict[int, float] = defaultdict(float)
    with Registry.open(tmp_path / "runs.db") as registry:
        events = list(registry.events(result.record.run_id,
                                      types=[T.EPOCH_COMPLETED, T.EPISODE_OUTCOME]))
    fossils = {e.env_id: e.data.seeds_fossilized for e in events if e.event_type is T.EPISODE_OUTCOME}
    moving = 0
    for event in events:
        if event.event_type is T.EPOCH_COMPLETED:
            assert event.data.reward_components.attribution == 0.0
            paid[event.env_id] += event.data.reward_components.escrow
            moving += event.data.reward_components.escrow != 0.0
    return dict(paid), fossils, moving


def test_a_run_that_fossilises_nothing_nets_no_escrow(tmp_path):
    # the heuristic never fossilises here (an impossible contribution bar): whatever it was
    # paid while its seeds lived is taken back by the episode's end
    spec = growing_spec()  # mode escrow is the default
    spec = replace(spec, policy=replace(spec.policy, heuristic=replace(
        spec.policy.heuristic, fossilize_min_contribution=1000.0)))
    paid, fossils, moving = escrow_by_episode(tmp_path, spec)
    assert fossils == {0: 0, 1: 0} and moving > 2  # credit was paid, then taken back
    assert paid == pytest.approx({0: 0.0, 1: 0.0}, abs=1e-9)


def test_a_run_that_fossilises_keeps_credit(tmp_path):
    paid, fossils, _ = escrow_by_episode(tmp_path, growing_spec(reward={"mode": "escrow"}))
    assert fossils[0] >= 1 or fossils[1] >= 1
    assert any(paid[env] != pytest.approx(0.0, abs=1e-9) for env in fossils if fossils[env])


def accuracy_series(tmp_path, spec, name: str, field: str) -> dict[tuple[int, int], float]:
    result = run(spec, registry=tmp_path / f"{name}.db")
    with Registry.open(tmp_path / f"{name}.db") as registry:
        return {(e.env_id, e.epoch): getattr(e.data, field)
                for e in registry.events(result.record.run_id, types=[T.EPOCH_COMPLETED])}


def test_the_reference_host_is_the_host_trained_alone(tmp_path):
    """Mode escrow's reference host is the env's host as a run where no seed ever grows trains
    it: the same initial weights and batches, epoch by epoch."""
    grown = growing_spec(reward={"mode": "escrow"})
    alone = replace(grown, policy=replace(grown.policy, heuristic=replace(
        grown.policy.heuristic, min_epoch=1000)))
    reference = accuracy_series(tmp_path, grown, "grown", "reference_accuracy")
    assert reference == accuracy_series(tmp_path, alone, "alone", "val_accuracy")
    seeded = accuracy_series(tmp_path, grown, "grown2", "val_accuracy")
    assert seeded != reference  # not vacuous: the seeds changed the grown model


def test_no_reference_host_is_trained_outside_mode_escrow(tmp_path):
    shaped = growing_spec(reward={"mode": "shaped"})
    reference = accuracy_series(tmp_path, shaped, "shaped", "reference_accuracy")
    assert set(reference.values()) == {None}


def test_escrow_rent_is_paid_on_the_kept_parameters_only():
    assert reward("escrow", params_added=500, fossil_params=0).param_rent == 0.0
    kept = reward("escrow", params_added=500, fossil_params=500).param_rent
    assert kept == pytest.approx(-0.5 * math.log1p(500 / 1000))
    assert reward("shaped", params_added=500, fossil_params=0).param_rent == pytest.approx(kept)
