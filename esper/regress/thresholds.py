"""One metric of a regression block, checked against its threshold and its baseline value.

`threshold`, `min_absolute_change` and `min_relative_change` follow MLflow's `MetricThreshold`
(mlflow/models/evaluation/validation.py, `_validate`), with greater_is_better = direction
"higher":

- threshold: the value must be >= threshold (higher) or <= threshold (lower);
- min_absolute_change: the value must IMPROVE on the baseline by at least this much:
  >= baseline + change (higher), <= baseline - change (lower);
- min_relative_change: (value - baseline) / |baseline| >= change (higher), or
  (baseline - value) / |baseline| >= change (lower); a baseline of 0 falls back to
  "strictly better than the baseline" (by 1e-10), as MLflow does.

So a min_*_change can never pass against a baseline the same code just produced: it gates a
required improvement. A regression suite wants the other direction, a bounded loss, which
MLflow does not have; esper adds it:

- absolute_tolerance: the value may be worse than the baseline by at most this much:
  >= baseline - tolerance (higher), <= baseline + tolerance (lower);
- relative_tolerance: the same, with tolerance * |baseline|.

A value that was not measured (None), is NaN or infinite fails, as a metric missing from
MLflow's candidate does; a baseline check without a finite baseline value fails, as MLflow's
"missing from the baseline" does. Arithmetic is
decimal on the values' shortest repr, so a value exactly on a bound passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from esper.leyline.config import BASELINE_CHECKS, MetricThreshold

_EPSILON = Decimal("1e-10")  # MLflow's "strictly better" when the baseline is 0


@dataclass(frozen=True)
class MetricCheck:
    """A metric's value, its baseline value and the checks it failed (none: it passed)."""

    metric: str
    rule: MetricThreshold
    value: float | None  # None: not measured
    baseline: float | None  # None: no baseline value
    value_failures: tuple[str, ...]  # checks of the value alone: measured, threshold
    baseline_failures: tuple[str, ...]  # checks that compare with the baseline value

    @property
    def failures(self) -> tuple[str, ...]:
        """Every check that failed."""
        return (*self.value_failures, *self.baseline_failures)

    @property
    def passed(self) -> bool:
        """No check failed."""
        return not self.failures

    @property
    def delta(self) -> float | None:
        """value - baseline; None when either is missing, NaN or infinite."""
        if not (_finite(self.value) and _finite(self.baseline)):
            return None
        return float(_dec(self.value) - _dec(self.baseline))

    @property
    def delta_fraction(self) -> float | None:
        """(value - baseline) / |baseline|; None when either is missing or the baseline is 0."""
        if self.delta is None or not self.baseline:
            return None
        return self.delta / abs(self.baseline)


def uses_baseline(rule: MetricThreshold) -> bool:
    """The rule compares with a baseline value (any min_*_change or *_tolerance)."""
    return any(getattr(rule, check) is not None for check in BASELINE_CHECKS)


def describe_rule(rule: MetricThreshold) -> str:
    """The rule's checks in a few words, e.g. `>= 40; tolerance 2`."""
    better = ">=" if rule.direction == "higher" else "<="
    parts = []
    if rule.threshold is not None:
        parts.append(f"{better} {_num(rule.threshold)}")
    if rule.min_absolute_change is not None:
        parts.append(f"improve by {_num(rule.min_absolute_change)}")
    if rule.min_relative_change is not None:
        parts.append(f"improve by {_percent(rule.min_relative_change)}")
    if rule.absolute_tolerance is not None:
        parts.append(f"tolerance {_num(rule.absolute_tolerance)}")
    if rule.relative_tolerance is not None:
        parts.append(f"tolerance {_percent(rule.relative_tolerance)}")
    return "; ".join(parts)


def check_metric(metric: str, rule: MetricThreshold, value: float | None,
                 baseline: float | None) -> MetricCheck:
    """Check `value` of `metric` against `rule` and the `baseline` value (semantics above)."""
    if not _finite(value):
        what = ("was not measured (None)" if value is None else "is NaN" if math.isnan(value)
                else f"is {_num(value)}")
        failure = (f"{metric} {what}; the rule needs a number",)
        return MetricCheck(metric, rule, value, baseline, failure, ())
    higher = rule.direction == "higher"
    direction = "higher is better" if higher else "lower is better"
    failures: tuple[str, ...] = ()
    if rule.threshold is not None and not _at_least(value, rule.threshold, higher):
        side = "below" if higher else "above"
        failures = (f"{metric} = {_num(value)} is {side} the threshold "
                    f"{_num(rule.threshold)} ({direction})",)
    if not uses_baseline(rule):
        compared = []
    elif not _finite(baseline):
        missing = ("no baseline value" if baseline is None else "a NaN baseline"
                   if math.isnan(baseline) else f"an infinite baseline ({_num(baseline)})")
        compared = [f"{metric} has {missing} to compare with"]
    else:
        compared = _baseline_failures(metric, rule, value, baseline, higher)
    return MetricCheck(metric, rule, value, baseline, failures, tuple(compared))


def _baseline_failures(metric: str, rule: MetricThreshold, value: float, baseline: float,
                       higher: bool) -> list[str]:
    sign = 1 if higher else -1  # moves a bound in the better direction
    base, magnitude = _dec(baseline), abs(_dec(baseline))
    now = f"{metric} = {_num(value)}, baseline {_num(baseline)}"
    failures = []
    if rule.min_absolute_change is not None:
        bound = base + sign * _dec(rule.min_absolute_change)
        if not _at_least(value, bound, higher):
            failures.append(f"{now}: did not improve by the required "
                            f"{_num(rule.min_absolute_change)} (needs {_needs(bound, higher)})")
    if rule.min_relative_change is not None:
        bound = (base + sign * _EPSILON if magnitude == 0
                 else base + sign * _dec(rule.min_relative_change) * magnitude)
        if not _at_least(value, bound, higher):
            failures.append(f"{now}: did not improve by the required "
                            f"{_percent(rule.min_relative_change)} (needs {_needs(bound, higher)})")
    if rule.absolute_tolerance is not None:
        bound = base - sign * _dec(rule.absolute_tolerance)
        if not _at_least(value, bound, higher):
            failures.append(f"{now}: worse by {_num(abs(_dec(value) - base))}, more than the "
                            f"tolerance {_num(rule.absolute_tolerance)} "
                            f"(needs {_needs(bound, higher)})")
    if rule.relative_tolerance is not None:
        bound = base - sign * _dec(rule.relative_tolerance) * magnitude
        if not _at_least(value, bound, higher):
            failures.append(f"{now}: worse by more than the tolerance "
                            f"{_percent(rule.relative_tolerance)} of the baseline "
                            f"(needs {_needs(bound, higher)})")
    return failures


def _finite(number: float | None) -> bool:
    """A number Decimal arithmetic can bound (inf - inf raises InvalidOperation)."""
    return number is not None and math.isfinite(number)


def _dec(number: float | Decimal) -> Decimal:
    return number if isinstance(number, Decimal) else Decimal(repr(float(number)))


def _at_least(value: float, bound: float | Decimal, higher: bool) -> bool:
    """`value` is on the good side of `bound`, or on it."""
    return _dec(value) >= _dec(bound) if higher else _dec(value) <= _dec(bound)


def _needs(bound: Decimal, higher: bool) -> str:
    return f"{'>=' if higher else '<='} {_num(bound)}"


def _percent(fraction: float) -> str:
    """A fraction as a percentage, at least one decimal and every digit it has (0.0004 is
    0.04%, not the 0.0% of a fixed one-decimal format)."""
    text = _num(_dec(fraction) * 100)
    return f"{text}%" if "." in text else f"{text}.0%"


def _num(number: float | Decimal) -> str:
    """A number as written: no float noise, no trailing zeros."""
    text = format(_dec(number).normalize(), "f")
    return "0" if text in ("-0", "0") else text
