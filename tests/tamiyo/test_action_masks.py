from hypothesis import given
from hypothesis import strategies as st

from esper.leyline.actions import Op
from esper.leyline.stages import SeedStage
from esper.tamiyo.action_masks import action_mask
from esper.tamiyo.observation import SlotView
from esper.tamiyo.random_policy import RandomPolicy
from tests.tamiyo.observations import EMPTY, observation, seed

MIN_PRUNE_AGE = 5
STAGES = [None, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING, SeedStage.HOLDING,
          SeedStage.FOSSILIZED, SeedStage.PRUNED, SeedStage.EMBARGOED, SeedStage.RESETTING]


@st.composite
def slot_views(draw) -> SlotView:
    stage = draw(st.sampled_from(STAGES))
    if stage is None:
        return EMPTY
    return seed(stage, seed_age=draw(st.integers(0, 20)), alpha_holding=draw(st.booleans()))


@given(st.lists(slot_views(), min_size=1, max_size=4), st.integers(0, 4))
def test_masks_never_allow_an_impossible_action(views, germinated):
    obs = observation(*views, seeds_germinated=germinated, max_seeds=3)
    mask = action_mask(obs, MIN_PRUNE_AGE)
    blocking = any(v.stage in (SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.PRUNED,
                               SeedStage.EMBARGOED, SeedStage.RESETTING) for v in obs.slots)
    for slot, view in enumerate(obs.slots):
        assert mask[Op.WAIT][slot]
        if mask[Op.GERMINATE][slot]:
            assert view.empty and germinated < 3 and not blocking
        if mask[Op.FOSSILIZE][slot]:
            assert view.stage is SeedStage.HOLDING
        if mask[Op.PRUNE][slot]:
            assert view.stage not in (None, SeedStage.FOSSILIZED, *STAGES[6:])
            assert view.seed_age >= MIN_PRUNE_AGE
        if mask[Op.ADVANCE][slot]:
            assert view.stage in (SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING)
        if mask[Op.SET_ALPHA_TARGET][slot]:
            assert view.stage in (SeedStage.BLENDING, SeedStage.HOLDING) and view.alpha_holding


@given(st.lists(slot_views(), min_size=1, max_size=4), st.integers(0, 1000))
def test_random_policy_only_chooses_possible_actions(views, seed_value):
    obs = observation(*views)
    action = RandomPolicy(n_blueprints=3, min_prune_age=MIN_PRUNE_AGE, seed=seed_value).act([obs])[0]
    assert action_mask(obs, MIN_PRUNE_AGE)[action.op][action.slot]
    assert 0 <= action.blueprint < 3
