"""Wiring findings: failing fields, fields lost since the baseline, other changes."""

from __future__ import annotations

from esper.regress.measure import FieldOutcome
from esper.regress.wiring_diff import recorded_wiring, wiring_findings

H_NORM, SEED, GERM = "TELE-340 lstm_h_norm", "TELE-100 start_seed", "TELE-140 blueprint"


def now(**outcomes: str) -> dict[str, FieldOutcome]:
    keys = {"h_norm": H_NORM, "seed": SEED, "germ": GERM}
    return {keys[k]: FieldOutcome(v, f"why {v}") for k, v in outcomes.items()}


def test_unchanged_passing_fields_are_no_finding() -> None:
    wiring = now(h_norm="PASS", seed="PASS", germ="SKIP")
    assert recorded_wiring(wiring) == {H_NORM: "PASS", SEED: "PASS"}
    assert wiring_findings(wiring, recorded_wiring(wiring)) == []
    assert wiring_findings(wiring, None) == []


def test_fail_and_xpass_are_regressions_without_a_baseline() -> None:
    findings = wiring_findings(now(h_norm="FAIL", seed="XPASS", germ="XFAIL"), None)
    assert [(f.key, f.outcome, f.regression, f.against_baseline) for f in findings] == [
        (H_NORM, "FAIL", True, False), (SEED, "XPASS", True, False)]
    assert findings[0].describe() == "TELE-340 lstm_h_norm: FAIL (why FAIL)"


def test_a_field_passing_in_the_baseline_and_skipped_now_is_named() -> None:
    findings = wiring_findings(now(h_norm="SKIP", seed="PASS", germ="SKIP"),
                               {H_NORM: "PASS", SEED: "PASS"})
    assert len(findings) == 1 and findings[0].regression and findings[0].against_baseline
    assert findings[0].describe() == (
        "TELE-340 lstm_h_norm: PASS -> SKIP (no longer passes: why SKIP)")


def test_a_field_passing_in_the_baseline_without_opportunity_now_is_lost_coverage() -> None:
    findings = wiring_findings(now(h_norm="PASS", seed="PASS", germ="NO_OPPORTUNITY"),
                               {H_NORM: "PASS", SEED: "PASS", GERM: "PASS"})
    assert [(f.key, f.regression, f.against_baseline) for f in findings] == [(GERM, True, True)]
    assert findings[0].describe() == (
        "TELE-140 blueprint: PASS -> NO_OPPORTUNITY (no longer verified, not shown broken: "
        "why NO_OPPORTUNITY)")


def test_new_fields_and_fields_gone_are_reported_not_failed() -> None:
    findings = wiring_findings(now(seed="PASS", germ="PASS"), {SEED: "PASS", H_NORM: "XFAIL"})
    assert [(f.key, f.baseline, f.outcome, f.regression) for f in findings] == [
        (GERM, None, "PASS", False), (H_NORM, "XFAIL", None, False)]
    assert findings[1].describe() == (
        "TELE-340 lstm_h_norm: XFAIL -> gone (field no longer in the catalogue)")


def test_a_field_still_observed_but_no_longer_expected_is_not_said_unobserved() -> None:
    """The reason read "no longer observed: observed, not expected" for a field that is still
    observed and was only dropped from the expectations."""
    wiring = {H_NORM: FieldOutcome("SKIP", "observed, not expected")}
    (finding,) = wiring_findings(wiring, {H_NORM: "PASS"})
    assert finding.regression
    assert finding.describe() == (
        "TELE-340 lstm_h_norm: PASS -> SKIP (no longer passes: observed, not expected)")
