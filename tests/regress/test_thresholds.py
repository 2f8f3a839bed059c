"""One metric's rule on known numbers, and against MLflow's own validation of the same rule."""

from __future__ import annotations

import itertools
import math

import pytest

from esper.leyline.config import MetricThreshold
from esper.regress.thresholds import check_metric, describe_rule


def rule(direction: str = "higher", **bounds: float) -> MetricThreshold:
    fields = ("threshold", "min_absolute_change", "min_relative_change", "absolute_tolerance",
              "relative_tolerance")
    return MetricThreshold(direction,  # type: ignore[arg-type]
                           **{f: bounds.get(f) for f in fields})


def test_threshold_is_an_absolute_bound_met_on_the_bound() -> None:
    assert check_metric("acc", rule(threshold=80.0), 80.0, None).passed
    assert check_metric("loss", rule("lower", threshold=0.3), 0.3, None).passed
    failed = check_metric("acc", rule(threshold=80.0), 79.5, None)
    assert failed.failures == ("acc = 79.5 is below the threshold 80 (higher is better)",)
    assert check_metric("loss", rule("lower", threshold=0.3), 0.31, None).failures == (
        "loss = 0.31 is above the threshold 0.3 (lower is better)",)


def test_min_absolute_change_requires_an_improvement_as_in_mlflow() -> None:
    # MLflow: candidate >= baseline + change (higher), <= baseline - change (lower)
    assert check_metric("acc", rule(min_absolute_change=0.05), 0.85, 0.80).passed
    same = check_metric("acc", rule(min_absolute_change=0.05), 0.80, 0.80)
    assert same.failures == ("acc = 0.8, baseline 0.8: did not improve by the required 0.05 "
                             "(needs >= 0.85)",)
    assert check_metric("loss", rule("lower", min_absolute_change=0.1), 0.2, 0.3).passed
    assert not check_metric("loss", rule("lower", min_absolute_change=0.1), 0.25, 0.3).passed


def test_min_relative_change_is_a_fraction_of_the_baseline_magnitude() -> None:
    # 10% of |-2| = 0.2: a higher-is-better value must reach -1.8
    assert check_metric("r2", rule(min_relative_change=0.1), -1.8, -2.0).passed
    assert not check_metric("r2", rule(min_relative_change=0.1), -1.9, -2.0).passed
    assert check_metric("loss", rule("lower", min_relative_change=0.5), 1.0, 2.0).passed
    assert check_metric("loss", rule("lower", min_relative_change=0.5), 1.1, 2.0).failures == (
        "loss = 1.1, baseline 2: did not improve by the required 50.0% (needs <= 1)",)


def test_min_relative_change_on_a_zero_baseline_needs_strictly_better() -> None:
    assert not check_metric("x", rule(min_relative_change=0.5), 0.0, 0.0).passed
    assert check_metric("x", rule(min_relative_change=0.5), 1e-9, 0.0).passed
    assert check_metric("x", rule("lower", min_relative_change=0.5), -1e-9, 0.0).passed


def test_tolerances_bound_how_much_worse_than_the_baseline() -> None:
    assert check_metric("acc", rule(absolute_tolerance=2.0), 58.0, 60.0).passed  # on the bound
    assert check_metric("acc", rule(absolute_tolerance=2.0), 60.0, 60.0).passed
    worse = check_metric("acc", rule(absolute_tolerance=2.0), 57.5, 60.0)
    assert worse.failures == ("acc = 57.5, baseline 60: worse by 2.5, more than the tolerance 2 "
                              "(needs >= 58)",)
    assert worse.baseline_failures == worse.failures
    assert check_metric("loss", rule("lower", relative_tolerance=0.5), 3.0, 2.0).passed
    assert check_metric("loss", rule("lower", relative_tolerance=0.5), 3.01, 2.0).failures == (
        "loss = 3.01, baseline 2: worse by more than the tolerance 50.0% of the baseline "
        "(needs <= 3)",)
    # decimal arithmetic: 0.3 - 0.1 is 0.2 exactly, so 0.2 is on the bound
    assert check_metric("x", rule(absolute_tolerance=0.1), 0.2, 0.3).passed


def test_missing_values_fail_and_say_which() -> None:
    assert check_metric("acc", rule(threshold=1.0), None, 5.0).failures == (
        "acc was not measured (None); the rule needs a number",)
    assert check_metric("acc", rule(threshold=1.0), math.nan, 5.0).failures == (
        "acc is NaN; the rule needs a number",)
    no_baseline = check_metric("acc", rule(threshold=1.0, absolute_tolerance=1.0), 0.5, None)
    assert no_baseline.failures == ("acc = 0.5 is below the threshold 1 (higher is better)",
                                    "acc has no baseline value to compare with")
    assert no_baseline.value_failures == no_baseline.failures[:1]
    assert no_baseline.baseline_failures == ("acc has no baseline value to compare with",)
    # a threshold alone never needs the baseline
    assert check_metric("acc", rule(threshold=1.0), 2.0, None).passed


def test_delta_and_description() -> None:
    check = check_metric("acc", rule(threshold=50.0, absolute_tolerance=2.0), 61.5, 60.0)
    assert check.delta == 1.5 and check.delta_fraction == pytest.approx(0.025)
    assert check_metric("acc", rule(threshold=1.0), 2.0, 0.0).delta_fraction is None
    assert describe_rule(rule("lower", threshold=0.5, min_relative_change=0.1,
                              absolute_tolerance=0.25)) == (
        "<= 0.5; improve by 10.0%; tolerance 0.25")


def test_agrees_with_mlflow_validation_on_a_grid_of_numbers() -> None:
    """threshold / min_absolute_change / min_relative_change verdicts equal MLflow's own."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import MetricThreshold as MlflowThreshold
    from mlflow.models.evaluation import EvaluationResult
    from mlflow.models.evaluation.validation import validate_evaluation_results

    values = (-2.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0)
    bounds = ({"threshold": 0.5}, {"min_absolute_change": 0.5}, {"min_relative_change": 0.5},
              {"threshold": 0.0, "min_absolute_change": 1.0})
    compared = 0
    for higher, bound, value, baseline in itertools.product((True, False), bounds, values, values):
        theirs = MlflowThreshold(greater_is_better=higher, **bound)
        try:
            validate_evaluation_results({"m": theirs}, EvaluationResult({"m": value}, {}),
                                        EvaluationResult({"m": baseline}, {}))
            mlflow_passed = True
        except MlflowException:
            mlflow_passed = False
        ours = check_metric("m", rule("higher" if higher else "lower", **bound), value, baseline)
        assert ours.passed == mlflow_passed, (higher, bound, value, baseline, ours.failures)
        compared += 1
    assert compared == 2 * len(bounds) * len(values) ** 2


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_infinite_values_and_baselines_fail_and_say_so(direction: str) -> None:
    """A diverged metric (a float32 loss overflowing) is inf: inf - inf made Decimal raise
    InvalidOperation, a traceback after the suite had trained."""
    inf = math.inf
    for bounds in ({"absolute_tolerance": 1.0}, {"relative_tolerance": 0.5},
                   {"min_relative_change": 0.1}):
        assert check_metric("loss", rule(direction, **bounds), inf, inf).failures == (
            "loss is Infinity; the rule needs a number",)
        check = check_metric("loss", rule(direction, **bounds), 1.0, -inf)
        assert check.failures == ("loss has an infinite baseline (-Infinity) to compare with",)
        assert check.delta is None and check.delta_fraction is None
    assert check_metric("loss", rule(direction, threshold=0.0), -inf, 1.0).delta is None


def test_a_small_relative_tolerance_is_not_shown_as_zero() -> None:
    """0.0004 read "tolerance 0.0%": a one-decimal percentage rounded it away."""
    small = rule("lower", relative_tolerance=0.0004, min_relative_change=0.125)
    assert describe_rule(small) == "improve by 12.5%; tolerance 0.04%"
    assert check_metric("loss", rule("lower", relative_tolerance=0.0004), 1.001, 1.0).failures == (
        "loss = 1.001, baseline 1: worse by more than the tolerance 0.04% of the baseline "
        "(needs <= 1.0004)",)
