"""group_statistics on known numbers, against scipy and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from esper.compare.statistics import group_mean, group_statistics

A = [71.2, 69.8, 73.5, 70.1, 72.4]
B = [74.9, 76.3, 73.8, 77.0]
B5 = [*B, 75.5]


def test_means_stds_and_welch_p_value_match_scipy():
    result = group_statistics(A, B)
    welch = stats.ttest_ind(B, A, equal_var=False)
    assert (result.n_a, result.n_b) == (5, 4)
    assert result.mean_a == pytest.approx(np.mean(A)) and result.mean_b == pytest.approx(np.mean(B))
    assert result.std_a == pytest.approx(np.std(A, ddof=1))
    assert result.std_b == pytest.approx(np.std(B, ddof=1))
    assert result.difference == pytest.approx(np.mean(B) - np.mean(A))
    assert result.p_value == pytest.approx(welch.pvalue, rel=1e-12)
    # Welch by hand: t over the unpooled standard error, Welch-Satterthwaite degrees of freedom
    va, vb = np.var(A, ddof=1) / len(A), np.var(B, ddof=1) / len(B)
    t = (np.mean(B) - np.mean(A)) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(A) - 1) + vb**2 / (len(B) - 1))
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert result.p_value < 0.01  # clearly different groups
    assert result.note is None


def test_bootstrap_interval_agrees_with_scipy_bootstrap_and_is_seeded():
    result = group_statistics(A, B5)
    assert result.interval == "bootstrap"  # five runs a side
    reference = stats.bootstrap((B5, A), lambda b, a, axis: b.mean(axis) - a.mean(axis),
                                method="percentile", n_resamples=10_000, vectorized=True,
                                random_state=np.random.default_rng(1)).confidence_interval
    assert result.ci_low == pytest.approx(reference.low, abs=0.15)
    assert result.ci_high == pytest.approx(reference.high, abs=0.15)
    assert result.ci_low < result.difference < result.ci_high
    assert group_statistics(A, B5) == result  # same seed, same interval
    assert group_statistics(A, B5, seed=7).ci_low != result.ci_low


def test_below_five_runs_a_side_the_interval_is_welchs_and_agrees_with_its_p_value():
    """Two runs a side, far apart but noisy: a percentile bootstrap resamples only 3 distinct
    means per side and its interval excluded 0 beside a Welch p of 0.17 (issue 21). Welch's t
    interval excludes 0 exactly when p < 0.05."""
    a, b = [60.0, 75.0], [79.0, 98.0]
    result = group_statistics(a, b)
    assert result.interval == "welch-t"
    va, vb = np.var(a, ddof=1) / 2, np.var(b, ddof=1) / 2
    df = (va + vb) ** 2 / (va**2 + vb**2)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert (result.ci_low, result.ci_high) == pytest.approx((21.0 - half, 21.0 + half))
    assert result.p_value > 0.05 and result.ci_low < 0 < result.ci_high
    rng = np.random.default_rng(3)
    for _ in range(200):  # the duality, on random small groups
        a, b = rng.normal(0, 1, rng.integers(2, 5)), rng.normal(1.5, 1, rng.integers(2, 5))
        r = group_statistics(a, b)
        assert (r.p_value < 0.05) == (r.ci_low > 0 or r.ci_high < 0)
    constant = group_statistics([1.0, 1.0], [3.0, 3.0])  # no variance: the interval is a point
    assert (constant.ci_low, constant.ci_high, constant.p_value) == (2.0, 2.0, None)


def test_overlapping_groups_are_not_significant():
    result = group_statistics([1.0, 2.0, 3.0], [1.5, 2.5, 2.0])
    assert result.p_value == pytest.approx(stats.ttest_ind([1.5, 2.5, 2.0], [1.0, 2.0, 3.0],
                                                           equal_var=False).pvalue)
    assert result.p_value > 0.5 and result.ci_low < 0 < result.ci_high


def test_fewer_than_two_runs_per_side_is_said_plainly():
    result = group_statistics([70.0], B)
    assert result.p_value is None and result.ci_low is None and result.std_a is None
    assert result.mean_a == 70.0 and result.std_b == pytest.approx(np.std(B, ddof=1))
    assert result.note == ("too few runs for statistics: 1 and 4 run(s) measured it, at least 2 "
                           "per side are needed (training.replicates)")


def test_a_group_mean_needs_every_run_measured():
    """A run that did not measure a metric (None) makes the group's mean unknown, not the mean
    of the others: compare and regress would otherwise show a part as the whole."""
    assert group_mean([1.0, 2.0, 4.0]) == pytest.approx(7 / 3)
    assert group_mean([1.0, None, 4.0]) is None
    assert group_mean([]) is None
    assert math.isnan(group_mean([1.0, math.nan]))  # measured NaN stays NaN


@pytest.mark.parametrize("b", [[3.0, 3.0, 3.0], [3.0, 4.0, 3.0]])
def test_a_nan_value_is_named_not_taken_for_no_variance(b):
    """A side with a NaN has a NaN std, and nan > 0 is False: the note said "no variance on
    either side" of sides whose values differ, or scipy returned a NaN p-value unexplained."""
    result = group_statistics([1.0, math.nan, 2.0], b)
    assert math.isnan(result.mean_a) and math.isnan(result.difference)
    assert result.p_value is None
    assert result.note == "a run measured NaN: the t-test is undefined"


def test_a_constant_side_gives_the_exact_welch_p_value_without_a_warning(recwarn):
    """scipy warned "Precision loss ... Results may be unreliable" on stderr of every compare
    whose replicates agree on one side (e.g. seeds_germinated 2, 2, 2); the p-value is exact:
    t = -5 on 2 degrees of freedom."""
    result = group_statistics([2.0, 2.0, 2.0], [0.0, 0.0, 1.0])
    assert result.p_value == pytest.approx(2 * stats.t.sf(5.0, 2), rel=1e-12)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
