"""`reward_hacking` probe: REWARD_HACKING_SUSPECTED when a seed claims more than the model
gained, in real runs whose options make the measured contributions suspicious."""

import pytest

from esper.leyline.config import RewardHackingOptions
from esper.leyline.events import Severity, TelemetryEventType as T
from esper.simic.probes.reward_hacking import suspicion
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import record_run

ONE_ENV = {"envs": 1, "batches": 1, "episode_length": 14}
DEFAULTS = RewardHackingOptions(contribution_ratio=5.0, min_contribution=0.1,
                                max_total_improvement=-0.2)


def _check_against_the_epochs(recorded, reason):
    """Every event names a seed whose contribution the same epoch recorded, and its reason."""
    slots = {(e.batch, e.env_id, e.epoch, slot.slot_id): slot
             for e in recorded.of(T.EPOCH_COMPLETED) for slot in e.data.slots}
    events = recorded.of(T.REWARD_HACKING_SUSPECTED)
    assert events
    for event in events:
        data = event.data
        slot = slots[(event.batch, event.env_id, event.epoch, data.slot_id)]
        assert data.contribution == slot.contribution  # measured on this epoch
        assert (event.slot_id, event.seed_id) == (data.slot_id, data.seed_id)
        assert data.reason == reason and event.severity is Severity.WARNING
    return [e.data for e in events]


def test_a_contribution_several_times_the_improvement_is_suspected(tmp_path):
    recorded = record_run(tmp_path, ["reward_hacking"],
                          {"reward_hacking": {"contribution_ratio": 0.01}}, training=ONE_ENV)
    for data in _check_against_the_epochs(recorded, "contribution_ratio"):
        assert data.total_improvement > 0
        assert data.contribution >= 0.01 * data.total_improvement


def test_a_contribution_while_the_model_degrades_is_suspected(tmp_path):
    # every measured contribution above -100 while the improvement is below 100: all of them
    recorded = record_run(tmp_path, ["reward_hacking"],
                          {"reward_hacking": {"contribution_ratio": 1e9, "min_contribution": -100,
                                              "max_total_improvement": 100}},
                          training=ONE_ENV)
    contributions = [slot.contribution for e in recorded.of(T.EPOCH_COMPLETED)
                     for slot in e.data.slots if slot.stage in ("BLENDING", "HOLDING")]
    suspected = _check_against_the_epochs(recorded, "degradation")
    assert len(suspected) == len(contributions)


@pytest.mark.parametrize(("contribution", "total", "reason"), [
    (5.0, 1.0, "contribution_ratio"), (4.9, 1.0, None),
    (0.2, -0.5, "degradation"), (0.1, -0.5, None), (0.2, -0.1, None),
    (1.0, 0.0, None),  # no improvement: the ratio test does not apply, nor the degradation one
])
def test_the_two_rules_at_the_default_thresholds(contribution, total, reason):
    assert suspicion(DEFAULTS, contribution, total) == reason


def test_a_healthy_growing_run_at_the_default_thresholds_suspects_nothing(tmp_path):
    """The growing experiment's seed blends and fossilises, its contribution measured on every
    epoch from BLENDING on: nothing is suspected."""
    recorded = record_run(tmp_path, ["reward_hacking"], training=ONE_ENV)
    assert growing_spec(telemetry={"probes": ["reward_hacking"]}).telemetry.reward_hacking == \
        DEFAULTS  # no options given: the defaults
    contributions = [slot.contribution for e in recorded.of(T.EPOCH_COMPLETED)
                     for slot in e.data.slots if slot.contribution is not None]
    assert len(contributions) >= 3 and recorded.result.summary.seeds_fossilized >= 1
    assert recorded.of(T.REWARD_HACKING_SUSPECTED) == []
