import pytest

from esper.leyline.actions import WAIT, Op
from esper.leyline.stages import SeedStage
from esper.tamiyo.heuristic import HeuristicPolicy
from tests.spec_factory import tiny_spec
from tests.tamiyo.observations import EMPTY, observation, seed


def policy(n_blueprints: int = 3) -> HeuristicPolicy:
    spec = tiny_spec()
    heuristic = HeuristicPolicy(spec.policy.heuristic, n_blueprints, spec.slots.min_prune_age,
                                spec.gates)
    heuristic.start_episode(1)
    return heuristic


def act(heuristic: HeuristicPolicy, obs):
    return heuristic.act([obs])[0]


def test_germinates_on_a_plateau_of_a_stable_host_round_robin():
    heuristic = policy()
    first = act(heuristic, observation(EMPTY, EMPTY))
    assert (first.op, first.slot, first.blueprint) == (Op.GERMINATE, 0, 0)
    second = act(heuristic, observation(EMPTY, EMPTY))
    assert second.blueprint == 1


@pytest.mark.parametrize("change", [
    dict(host_stabilised=False), dict(epoch=4), dict(plateau_epochs=2),
    dict(seeds_germinated=3),
])
def test_waits_until_every_germination_condition_holds(change):
    assert act(policy(), observation(EMPTY, **change)) == WAIT


def test_advances_germinated_and_training_seeds_and_lets_the_gate_decide():
    assert act(policy(), observation(seed(SeedStage.GERMINATED))).op is Op.ADVANCE
    assert act(policy(), observation(seed(SeedStage.TRAINING, epochs_in_stage=2))).op is Op.ADVANCE


def test_prunes_a_failing_seed_then_waits_out_the_cooldown():
    heuristic = policy()
    failing = seed(SeedStage.TRAINING, epochs_in_stage=5, improvement_since_stage_start=-3.0)
    assert act(heuristic, observation(failing)).op is Op.PRUNE
    assert act(heuristic, observation(EMPTY, epoch=12)) == WAIT  # pruned 2 epochs ago
    assert act(heuristic, observation(EMPTY, epoch=15)).op is Op.GERMINATE


def test_a_pruned_blueprint_is_skipped_while_its_decaying_penalty_is_at_the_limit():
    spec = tiny_spec(policy={"heuristic": {"blueprint_penalty_limit": 1.0,
                                           "prune_cooldown_epochs": 0}})
    heuristic = HeuristicPolicy(spec.policy.heuristic, 2, spec.slots.min_prune_age, spec.gates)
    heuristic.start_episode(1)
    failing = seed(SeedStage.TRAINING, blueprint_index=0, epochs_in_stage=5,
                   improvement_since_stage_start=-3.0)
    assert act(heuristic, observation(failing)).op is Op.PRUNE  # penalty 2
    assert act(heuristic, observation(EMPTY)).blueprint == 1  # halved to 1: still at the limit
    heuristic.start_episode(1)
    assert act(heuristic, observation(EMPTY)).blueprint == 0  # a new episode forgets


def test_holding_seed_is_fossilised_when_it_contributes_pruned_when_not_waited_when_unmeasured():
    assert act(policy(), observation(seed(SeedStage.HOLDING, contribution=2.0))).op is Op.FOSSILIZE
    assert act(policy(), observation(seed(SeedStage.HOLDING, contribution=0.2))).op is Op.PRUNE
    unmeasured = act(policy(), observation(seed(SeedStage.HOLDING, contribution=None)))
    assert unmeasured == WAIT


def test_round_robin_does_not_move_on_while_no_slot_can_germinate():
    # After a prune the slot cools down (EMBARGOED, then RESETTING) for two epochs past the
    # prune cooldown; the heuristic waits, then germinates the *next* blueprint, not a later one.
    heuristic = policy(n_blueprints=4)
    assert act(heuristic, observation(EMPTY, EMPTY)).blueprint == 0
    for epoch, stage in ((11, SeedStage.EMBARGOED), (12, SeedStage.RESETTING)):
        cooling = observation(seed(stage), EMPTY, epoch=epoch, seeds_germinated=1)
        assert act(heuristic, cooling) == WAIT
    nxt = act(heuristic, observation(EMPTY, EMPTY, epoch=13, seeds_germinated=1))
    assert (nxt.op, nxt.blueprint) == (Op.GERMINATE, 1)
