"""Statistics of one metric over two replicate groups: mean and std of each, a confidence
interval of the difference of means, and Welch's t-test.

The interval is Welch's t interval while either side has fewer than ``BOOTSTRAP_MIN_RUNS`` runs:
a percentile bootstrap of two or three runs resamples so few distinct means that its interval is
far too narrow (two runs a side gave [6.64, 26.95] beside a Welch p of 0.166). Welch's interval
excludes 0 exactly when its p-value is below 1 - confidence, so the two never disagree. From
``BOOTSTRAP_MIN_RUNS`` runs a side on, it is the bootstrap's, which assumes no normality."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_RUNS = 2  # per side, for a standard deviation and a t-test
BOOTSTRAP_MIN_RUNS = 5  # per side, for a bootstrap interval; below it, Welch's t interval


@dataclass(frozen=True)
class GroupStatistics:
    """B against the baseline A; the difference is mean B - mean A. Values that need at least
    ``MIN_RUNS`` runs per side are None when a side has fewer, and `note` says so."""

    n_a: int  # runs that measured the metric
    n_b: int
    mean_a: float | None
    mean_b: float | None
    std_a: float | None  # ddof=1
    std_b: float | None
    difference: float | None
    ci_low: float | None  # interval of the difference (`interval` says which)
    ci_high: float | None
    p_value: float | None  # Welch's t-test, two-sided
    note: str | None = None
    interval: str | None = None  # "welch-t" or "bootstrap"; None: no interval


def group_mean(values: Sequence[float | None]) -> float | None:
    """The mean of a group's values of one metric; None unless every run measured it (a mean
    over the runs that did would pass for the whole group's)."""
    if not values or any(v is None for v in values):
        return None
    return math.fsum(values) / len(values)


def group_statistics(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> GroupStatistics:
    """Mean, std (ddof=1), a `confidence` interval of mean(b) - mean(a) (Welch's t interval
    below ``BOOTSTRAP_MIN_RUNS`` runs a side, else a percentile bootstrap of `resamples`
    resamples of each side, numpy generator seeded with `seed`), and the p-value of
    ``scipy.stats.ttest_ind(b, a, equal_var=False)``."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mean_a, mean_b = _mean(xa), _mean(xb)
    difference = None if mean_a is None or mean_b is None else mean_b - mean_a
    if len(xa) < MIN_RUNS or len(xb) < MIN_RUNS:
        note = (f"too few runs for statistics: {len(xa)} and {len(xb)} run(s) measured it, "
                f"at least {MIN_RUNS} per side are needed (training.replicates)")
        return GroupStatistics(len(xa), len(xb), mean_a, mean_b, _std(xa), _std(xb), difference,
                               None, None, None, note)
    from scipy import stats  # ~0.5 s to import: only when statistics are computed

    p_value, note = None, "no variance on either side: the t-test is undefined"
    if np.isnan(xa).any() or np.isnan(xb).any():  # nan > 0 is False: not "no variance"
        note = "a run measured NaN: the t-test is undefined"
    elif xa.std() > 0 or xb.std() > 0:
        with warnings.catch_warnings():
            if xa.std() == 0 or xb.std() == 0:  # scipy takes a constant side for "nearly
                # identical data" and warns "Results may be unreliable"; they are exact
                warnings.simplefilter("ignore", RuntimeWarning)
            p_value, note = float(stats.ttest_ind(xb, xa, equal_var=False).pvalue), None
    if min(len(xa), len(xb)) < BOOTSTRAP_MIN_RUNS:
        (low, high), interval = _welch_interval(xa, xb, confidence), "welch-t"
    else:
        (low, high) = _bootstrap_interval(xa, xb, confidence, resamples, seed)
        interval = "bootstrap"
    return GroupStatistics(len(xa), len(xb), mean_a, mean_b, _std(xa), _std(xb), difference,
                           low, high, p_value, note, interval)


def _welch_interval(xa: np.ndarray, xb: np.ndarray, confidence: float) -> tuple[float, float]:
    """Welch's t interval of mean(b) - mean(a): the unpooled standard error and the
    Welch-Satterthwaite degrees of freedom (a point when neither side varies)."""
    from scipy import stats

    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    difference, se = float(xb.mean() - xa.mean()), math.sqrt(va + vb)
    if se == 0:
        return difference, difference
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, df)) * se
    return difference - half, difference + half


def _bootstrap_interval(xa: np.ndarray, xb: np.ndarray, confidence: float, resamples: int,
                        seed: int) -> tuple[float, float]:
    """Percentile bootstrap of mean(b) - mean(a): `resamples` resamples of each side, numpy's
    generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    boot_a = xa[rng.integers(0, len(xa), (resamples, len(xa)))].mean(axis=1)
    boot_b = xb[rng.integers(0, len(xb), (resamples, len(xb)))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot_b - boot_a, [tail, 100 - tail])
    return float(low), float(high)


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def _std(x: np.ndarray) -> float | None:
    return float(x.std(ddof=1)) if len(x) >= MIN_RUNS else None
