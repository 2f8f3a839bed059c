"""Wiring status derived from data: observe fields, judge outcomes, store, report."""

from esper.leyline.catalogue import CATALOGUE, TRAINED_SEED_MOVED, TeleField
from esper.leyline.config import WiringConfig
from esper.leyline.events import (SeedStageChangedPayload, Severity, TelemetryEvent,
                                  TelemetryEventType as T)
from esper.registry.wiring import Outcome, judge, observe

HEALTH = TeleField("TELE-900", "health", T.SEED_STAGE_CHANGED, "gradient_health", "slot_health", "x")
RATIO = TeleField("TELE-901", "ratio", T.SEED_STAGE_CHANGED, "seed_gradient_norm_ratio",
                  "slot_health", "x")
FIELDS = (HEALTH, RATIO)


def event(seq: int, **payload) -> TelemetryEvent:
    data = SeedStageChangedPayload("TRAINING", "BLENDING", **payload)
    return TelemetryEvent("r", seq, 0.0, T.SEED_STAGE_CHANGED, Severity.INFO, 0, 0, seq,
                          None, None, "", data)


def test_observed_means_a_non_null_finite_value():
    seen = observe([event(0, gradient_health=None), event(1, gradient_health=float("nan")),
                    event(2, gradient_health=0.0), event(3, gradient_health=0.8)], FIELDS)
    assert (seen["health"].observed, seen["health"].null_count, seen["health"].first_seq) == (2, 1, 2)
    assert seen["ratio"].observed == 0 and seen["ratio"].null_count == 4


def outcomes(wiring, probes=("slot_health",)):
    seen = observe([event(0, gradient_health=0.5)], FIELDS)
    return {o.field.name: o.outcome for o in judge(seen, probes, wiring, FIELDS)}


def test_without_a_wiring_block_every_field_of_an_enabled_probe_is_expected():
    assert outcomes(None) == {"health": Outcome.PASS, "ratio": Outcome.FAIL}
    assert outcomes(None, probes=()) == {"health": Outcome.SKIP, "ratio": Outcome.SKIP}


def test_expect_and_xfail_give_pass_fail_xfail_xpass_and_skip():
    assert outcomes(WiringConfig(expect=("TELE-900",), xfail={})) == {
        "health": Outcome.PASS, "ratio": Outcome.SKIP}
    assert outcomes(WiringConfig(expect=("TELE-901",), xfail={})) == {
        "health": Outcome.SKIP, "ratio": Outcome.FAIL}
    gaps = WiringConfig(expect=(), xfail={"TELE-900": "known", "TELE-901": "known"})
    assert outcomes(gaps) == {"health": Outcome.XPASS, "ratio": Outcome.XFAIL}


TRAINED_HEALTH = TeleField("TELE-902", "trained_health", T.SEED_STAGE_CHANGED, "gradient_health",
                           "slot_health", "x", opportunity=TRAINED_SEED_MOVED)


def judged(events) -> tuple[Outcome, str]:
    seen = observe(events, (TRAINED_HEALTH,))
    (outcome,) = judge(seen, ("slot_health",), None, (TRAINED_HEALTH,))
    return outcome.outcome, outcome.reason


def moved(seq: int, from_stage: str, to_stage: str, **payload) -> TelemetryEvent:
    data = SeedStageChangedPayload(from_stage, to_stage, **payload)
    return TelemetryEvent("r", seq, 0.0, T.SEED_STAGE_CHANGED, Severity.INFO, 0, 0, seq,
                          None, None, "", data)


def test_a_field_whose_opportunity_never_came_is_no_opportunity_not_fail():
    assert judged([])[0] is Outcome.NO_OPPORTUNITY
    # the event, not its condition: a seed starting to train, a trained seed pruned (a prune
    # clears its gradient signals)
    outcome, reason = judged([moved(0, "GERMINATED", "TRAINING"), moved(1, "TRAINING", "PRUNED")])
    assert outcome is Outcome.NO_OPPORTUNITY and "never happened in this run" in reason


def test_a_field_missing_although_its_opportunity_came_is_fail():
    outcome, reason = judged([moved(0, "GERMINATED", "TRAINING"), moved(1, "TRAINING", "BLENDING")])
    assert outcome is Outcome.FAIL
    assert reason == ("never measured: every event had None, although a seed that has trained "
                      "advances (to BLENDING, HOLDING or FOSSILIZED) in 1 SEED_STAGE_CHANGED "
                      "event(s)")
    assert judged([moved(0, "TRAINING", "BLENDING", gradient_health=0.9)])[0] is Outcome.PASS


def test_catalogue_names_are_unique_and_ids_well_formed():
    names = [f.name for f in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(f.tele_id.startswith("TELE-") and len(f.tele_id) == 8 for f in CATALOGUE)
