"""Wiring status: which catalogue fields a run really produced, judged against expectations.

A field is *observed* when at least one event carries a non-null, finite value for it
(booleans and text count). Outcomes (docs/architecture.md §6): PASS (expected, observed), FAIL
(expected, not observed although it had its opportunity), NO_OPPORTUNITY (expected, not observed,
and the event that gives it its chance, TeleField.opportunity, never happened in this run: no seed
germinated, none was fossilised; not a failure, counted and shown), XFAIL (declared gap, not
observed), XPASS (declared gap, observed: strict, it fails until the xfail is removed), SKIP (its
probe is off, or nothing expects it). `wiring.expect` is no stricter about opportunities: an
expected field whose chance never came is NO_OPPORTUNITY, since the run could not show whether it
is wired; a field without an opportunity (a detector's event is itself the measurement) that an
experiment expects is FAIL when it is never observed.
A field a PPO update emits also needs the "ppo" producer: without an update (a fixed policy,
or a frozen evaluation) it is SKIP, never FAIL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from esper.leyline.catalogue import CATALOGUE, CORE, PPO, Opportunity, TeleField
from esper.leyline.config import WiringConfig
from esper.leyline.events import TelemetryEvent, TelemetryEventType
from esper.registry.registry import Registry


class Outcome(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    XFAIL = "XFAIL"
    XPASS = "XPASS"
    NO_OPPORTUNITY = "NO_OPPORTUNITY"
    SKIP = "SKIP"


FAILING = (Outcome.FAIL, Outcome.XPASS)
# Worst first, for a field judged over several runs: a field observed in one run and given no
# opportunity in another is PASS over them.
WORST_FIRST = (Outcome.FAIL, Outcome.XPASS, Outcome.XFAIL, Outcome.PASS, Outcome.NO_OPPORTUNITY,
               Outcome.SKIP)

# The events only a PPO update emits: a probe's fields on them (lstm_health's update part,
# head_grad_norms, gradient_drift, anomalies) are produced only while "ppo" runs too.
_UPDATE_EVENTS = frozenset({
    TelemetryEventType.PPO_UPDATE_COMPLETED, TelemetryEventType.GRADIENT_PATHOLOGY_DETECTED,
    TelemetryEventType.RATIO_EXPLOSION_DETECTED, TelemetryEventType.RATIO_COLLAPSE_DETECTED,
    TelemetryEventType.VALUE_COLLAPSE_DETECTED, TelemetryEventType.NUMERICAL_INSTABILITY_DETECTED})


def producers(f: TeleField) -> frozenset[str]:
    """The producers that must be on for `f` to be measured: its probe ("core" is always on),
    and "ppo" for a field a PPO update emits."""
    return frozenset({f.probe, *((PPO,) if f.event_type in _UPDATE_EVENTS else ())}) - {CORE}


@dataclass
class FieldObservation:
    """What a run's events said about one field."""

    observed: int = 0  # events with a non-null, finite value
    null_count: int = 0  # events of the field's type where it was None
    first_seq: int | None = None  # first event with a value
    opportunities: int = 0  # events that gave it its opportunity (TeleField.opportunity)


@dataclass(frozen=True)
class WiringOutcome:
    """One catalogue field's verdict for one run."""

    field: TeleField
    expectation: str  # expect, xfail, none
    outcome: Outcome
    observation: FieldObservation
    reason: str


def _values(payload: Any, path: list[str]) -> Iterable[Any]:
    """The values at `path` in `payload` (every item at a `*`); None where a step is None."""
    if not path:
        yield payload
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in payload:
            yield from _values(item, rest)
    elif payload is not None:
        yield from _values(getattr(payload, head), rest)
    else:
        yield None


def _is_value(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def _gives(opportunity: Opportunity, payload: Any) -> bool:
    """Whether an event of the opportunity's type with `payload` gives it."""
    if not opportunity.path:
        return True
    return any(_is_value(value) and (not opportunity.values or value in opportunity.values)
               for value in _values(payload, opportunity.path.split(".")))


def observe(events: Iterable[TelemetryEvent],
            fields: Iterable[TeleField] = CATALOGUE) -> dict[str, FieldObservation]:
    """Observation of each field (by name) over a run's events, in one pass."""
    fields = tuple(fields)
    by_type: dict[TelemetryEventType, list[tuple[TeleField, list[str]]]] = {}
    observations: dict[str, FieldObservation] = {}
    for f in fields:
        by_type.setdefault(f.event_type, []).append((f, f.path.split(".")))
        observations[f.name] = FieldObservation()
    chances = dict.fromkeys((f.opportunity for f in fields if f.opportunity is not None), 0)
    for event in events:
        for opportunity in chances:
            if opportunity.event_type is event.event_type and _gives(opportunity, event.data):
                chances[opportunity] += 1
        for f, path in by_type.get(event.event_type, ()):
            seen = observations[f.name]
            for value in _values(event.data, path):
                if _is_value(value):
                    seen.observed += 1
                    if seen.first_seq is None:
                        seen.first_seq = event.seq
                elif value is None:
                    seen.null_count += 1
    for f in fields:
        if f.opportunity is not None:
            observations[f.name].opportunities = chances[f.opportunity]
    return observations


def judge(observations: dict[str, FieldObservation], probes: Iterable[str],
          wiring: WiringConfig | None, fields: Iterable[TeleField] = CATALOGUE) -> list[WiringOutcome]:
    """The outcome of every field, given the enabled producers (probes, and "ppo" for a learned
    policy; "core" is always on) and the `wiring:` block."""
    enabled = set(probes)
    outcomes = []
    for f in fields:
        seen = observations[f.name]
        observed = seen.observed > 0
        off = producers(f) - enabled
        if off:
            outcomes.append(WiringOutcome(f, "none", Outcome.SKIP, seen, _off_reason(f, off)))
            continue
        if wiring is not None and f.tele_id in wiring.xfail:
            reason = wiring.xfail[f.tele_id]
            verdict = Outcome.XPASS if observed else Outcome.XFAIL
            if observed:
                reason = f"declared a gap ({reason}) but observed: remove the xfail"
            outcomes.append(WiringOutcome(f, "xfail", verdict, seen, reason))
            continue
        if wiring is not None:
            expected = f.tele_id in wiring.expect
        else:
            expected = not f.conditional
        if expected:
            outcomes.append(_expected(f, seen))
        else:
            outcomes.append(WiringOutcome(f, "none", Outcome.SKIP, seen,
                                          "observed, not expected" if observed else "not expected"))
    return outcomes


def _expected(f: TeleField, seen: FieldObservation) -> WiringOutcome:
    """The outcome of an expected field: PASS, NO_OPPORTUNITY, or FAIL."""
    if seen.observed:
        return WiringOutcome(f, "expect", Outcome.PASS, seen, "observed")
    if f.opportunity is not None and not seen.opportunities:
        return WiringOutcome(f, "expect", Outcome.NO_OPPORTUNITY, seen,
                             f"no opportunity: measured only when {f.opportunity.meaning} "
                             f"({f.opportunity.event_type.value}), which never happened in this "
                             "run")
    reason = "never measured: every event had None" if seen.null_count else "no event carried it"
    if f.opportunity is not None:
        reason += (f", although {f.opportunity.meaning} in {seen.opportunities} "
                   f"{f.opportunity.event_type.value} event(s)")
    return WiringOutcome(f, "expect", Outcome.FAIL, seen, reason)


def _off_reason(f: TeleField, off: frozenset[str]) -> str:
    if f.probe in off:
        return f"probe {f.probe} is off"
    return "no PPO update ran (producer ppo is off: a fixed policy, or policy.train false)"


def wiring_rows(run_id: str, outcomes: Iterable[WiringOutcome]) -> list[dict[str, Any]]:
    """Rows of the `wiring` table for a run's outcomes."""
    return [{"run_id": run_id, "tele_id": o.field.tele_id, "field": o.field.name,
             "probe": o.field.probe, "expectation": o.expectation, "outcome": o.outcome.value,
             "observed": o.observation.observed, "null_count": o.observation.null_count,
             "first_seq": o.observation.first_seq, "reason": o.reason} for o in outcomes]


def summary_counts(outcomes: Iterable[WiringOutcome]) -> dict[str, int]:
    """Number of fields per outcome (every outcome present, 0 included)."""
    counts = {outcome.value: 0 for outcome in Outcome}
    for o in outcomes:
        counts[o.outcome.value] += 1
    return counts


def evaluate_run(registry: Registry, run_id: str, probes: Iterable[str],
                 wiring: WiringConfig | None) -> list[WiringOutcome]:
    """Judge every catalogue field against run `run_id`'s recorded events and store the outcomes."""
    outcomes = judge(observe(registry.events(run_id)), probes, wiring)
    registry.record_wiring(run_id, wiring_rows(run_id, outcomes))
    return outcomes
