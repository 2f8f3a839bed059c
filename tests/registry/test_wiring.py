"""Wiring status derived from data: observe fields, judge outcomes, store, report."""

from esper.leyline.catalogue import CATALOGUE, TeleField
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


def test_catalogue_names_are_unique_and_ids_well_formed():
    names = [f.name for f in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(f.tele_id.startswith("TELE-") and len(f.tele_id) == 8 for f in CATALOGUE)
