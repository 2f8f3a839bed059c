"""Wiring of a suite experiment against its expectations and its baseline.

A field is a regression when it is FAIL (expected, never observed) or XPASS (a declared gap that
was observed), whatever the baseline says; or when it was PASS in the baseline and is not any
more (its probe was switched off: SKIP, or it stopped being expected), or when the suite
experiment no longer gives it an opportunity (NO_OPPORTUNITY: no seed germinates any more, say):
the telemetry is not shown broken, but the suite no longer verifies that it is wired, so the
baseline's coverage is lost. Other differences from the baseline (a field newly observed, a field
gone from the catalogue) are reported, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from esper.registry.wiring import FAILING, Outcome
from esper.regress.measure import FieldOutcome

_FAILING = {o.value for o in FAILING}
_SKIP = Outcome.SKIP.value


@dataclass(frozen=True)
class WiringFinding:
    """A field whose outcome fails, or differs from the baseline."""

    key: str  # "TELE-340 lstm_h_norm"
    baseline: str | None  # its outcome in the baseline; None: no baseline, or not recorded there
    outcome: str | None  # its outcome now; None: no longer in the catalogue
    reason: str
    regression: bool
    against_baseline: bool  # the finding needs the baseline (it is about a change)

    def describe(self) -> str:
        """One line: `TELE-340 lstm_h_norm: PASS -> SKIP (probe lstm_health is off)`."""
        before = "" if self.baseline is None else f"{self.baseline} -> "
        return f"{self.key}: {before}{self.outcome or 'gone'} ({self.reason})"


def _lost_reason(field: FieldOutcome) -> str:
    """Why a field that passed in the baseline is a regression now."""
    if field.outcome == Outcome.NO_OPPORTUNITY.value:
        return f"no longer verified, not shown broken: {field.reason}"
    return f"no longer passes: {field.reason}"


def recorded_wiring(wiring: dict[str, FieldOutcome]) -> dict[str, str]:
    """The outcomes a baseline records: every field that is not SKIP."""
    return {key: field.outcome for key, field in wiring.items() if field.outcome != _SKIP}


def wiring_findings(wiring: dict[str, FieldOutcome],
                    baseline: dict[str, str] | None) -> list[WiringFinding]:
    """Findings for the current `wiring` against the `baseline` outcomes (None: no baseline)."""
    recorded, now = baseline or {}, recorded_wiring(wiring)
    findings = []
    for key, field in wiring.items():
        before = recorded.get(key)  # absent: SKIP when the baseline was recorded
        if field.outcome in _FAILING:
            findings.append(WiringFinding(key, before, field.outcome, field.reason, True,
                                          against_baseline=False))
        elif baseline is not None and before != now.get(key):
            lost = before == Outcome.PASS.value
            reason = _lost_reason(field) if lost else field.reason
            findings.append(WiringFinding(key, before, field.outcome, reason, lost,
                                          against_baseline=True))
    findings += [WiringFinding(key, before, None, "field no longer in the catalogue", False, True)
                 for key, before in sorted(recorded.items()) if key not in wiring]
    return findings
