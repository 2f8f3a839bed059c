import math
from dataclasses import replace

import pytest

from esper.leyline.actions import Op
from esper.leyline.stages import SeedStage
from esper.simic.rewards import (RewardInputs, SeedCredit, compute_reward, slot_potential)
from tests.spec_factory import tiny_spec

GAMMA = 0.995
BASE = RewardInputs(
    op=Op.WAIT, target_stage=None, target_contribution=None, potential_before=0.0,
    potential_after=0.0, fossil_potential_after=0.0, holding_undecided=0, escrow=0.0,
    credits=(), total_improvement=None, committed_accuracy=70.0, reference_accuracy=68.0,
    params_added=0,
    host_params=1000, val_accuracy=80.0, last_epoch=False, contributing_fossils=0,
    fossil_params=0, rolled_back=False,
)


def reward(mode: str, **changes):
    spec = tiny_spec(reward={"mode": mode}, ppo={"gamma": GAMMA})
    return compute_reward(spec.reward, spec.ppo, replace(BASE, **changes))


def test_waiting_in_an_empty_host_earns_nothing():
    assert reward("shaped").total == 0.0


@pytest.mark.parametrize("mode", ["escrow", "shaped", "simplified", "sparse"])
def test_a_rolled_back_step_gets_the_governor_penalty_on_top_of_the_mode_terms(mode):
    calm, rolled = reward(mode), reward(mode, rolled_back=True)
    assert rolled.governor == tiny_spec().ppo.governor_penalty == -10.0
    assert replace(rolled, governor=0.0) == calm and calm.governor == 0.0


@pytest.mark.parametrize("contribution, progress, expected", [
    (4.0, 2.0, 2 * 2 * 4 / 6),  # contribution covered by progress: harmonic mean
    (1.0, 3.0, 1.0),  # contribution below progress: the contribution
    (-2.0, 1.0, -2.0),  # harm passes through
])
def test_attribution_is_bounded_by_progress(contribution, progress, expected):
    components = reward("shaped", credits=(SeedCredit("s", contribution, progress),))
    assert components.attribution == pytest.approx(expected)


def test_attribution_is_discounted_when_the_seeds_together_hurt():
    credit = (SeedCredit("s", 1.0, 3.0),)
    assert reward("shaped", credits=credit, total_improvement=-0.5).attribution == 0.5


def test_stage_shaping_is_potential_based_and_telescopes():
    potentials = [0.0, slot_potential(SeedStage.GERMINATED, 0), slot_potential(SeedStage.TRAINING, 1),
                  slot_potential(SeedStage.TRAINING, 2), 0.0]
    shaping = [reward("shaped", potential_before=a, potential_after=b).stage_shaping
               for a, b in zip(potentials, potentials[1:])]
    discounted = sum(GAMMA ** t * value for t, value in enumerate(shaping))
    # gamma-consistent shaping telescopes to gamma^T phi(s_T) - phi(s_0) = 0 here
    assert discounted == pytest.approx(0.0, abs=1e-12)
    assert shaping[0] > 0 and shaping[-1] < 0


def test_parameter_rent_is_logarithmic_and_capped():
    assert reward("shaped", params_added=1000).param_rent == pytest.approx(-0.5 * math.log(2))
    assert reward("shaped", params_added=10**9).param_rent == -1.5
    small_host = reward("shaped", params_added=200, host_params=10).param_rent
    assert small_host == pytest.approx(-0.5 * math.log(2))  # host floor of 200


def test_action_costs_and_fossilize_term():
    assert reward("shaped", op=Op.GERMINATE).action_cost == -0.15
    good = reward("shaped", op=Op.FOSSILIZE, target_stage=SeedStage.HOLDING, target_contribution=2.0)
    assert good.fossilize == pytest.approx(0.7) and good.action_cost == -0.01
    assert reward("shaped", op=Op.FOSSILIZE, target_stage=SeedStage.BLENDING).fossilize == -1.0
    weak = reward("shaped", op=Op.FOSSILIZE, target_stage=SeedStage.HOLDING, target_contribution=0.5)
    assert weak.fossilize == 0.0


def test_terminal_bonus_only_at_the_last_epoch():
    assert reward("shaped", last_epoch=True).terminal == pytest.approx(4.0)
    assert reward("shaped").terminal == 0.0


def test_simplified_reward():
    final = reward("simplified", last_epoch=True, contributing_fossils=2, op=Op.PRUNE)
    assert final.terminal == pytest.approx(3 * 0.8 + 2 * 2)
    assert final.action_cost == -0.01


def test_sparse_reward_is_zero_until_the_end_then_clamped():
    assert reward("sparse", op=Op.GERMINATE).total == 0.0
    assert reward("sparse", last_epoch=True, fossil_params=25000).total == pytest.approx(0.8 - 0.05)
    assert reward("sparse", last_epoch=True, fossil_params=10**9).total == -1.0
