"""benchmarks/learning.py, the head-to-head benchmark: its statistics and verdict on hand-made
numbers, and its options (the benchmark itself is never run here)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).parents[1] / "benchmarks" / "learning.py"
_spec = importlib.util.spec_from_file_location("learning_benchmark", PATH)
learning = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learning)

# Differences 2, 3, 4: mean 3, standard deviation 1, standard error 1/sqrt(3), 2 degrees of
# freedom; t(0.975, 2) = 4.302653; with 2 degrees of freedom the two-sided p of t is
# 1 - t / sqrt(2 + t^2), and t = 3 sqrt(3), so p = 1 - sqrt(27 / 29).
LEARNED, OTHER = [73.0, 75.0, 77.0], [71.0, 72.0, 73.0]
HALF = 4.302653 / math.sqrt(3)


def test_paired_comparison_by_hand():
    c = learning.paired_comparison(LEARNED, OTHER)
    assert c.diff == pytest.approx(3.0)
    assert c.lo == pytest.approx(3.0 - HALF, abs=1e-5)
    assert c.hi == pytest.approx(3.0 + HALF, abs=1e-5)
    assert c.p == pytest.approx(1 - math.sqrt(27 / 29))


def test_one_seed_has_no_interval_and_never_beats():
    c = learning.paired_comparison([75.0], [70.0])
    assert c.diff == 5.0 and math.isnan(c.lo) and math.isnan(c.hi) and math.isnan(c.p)
    assert learning.verdict(c, 2.0, 1.0).startswith("VERDICT: learned policy does NOT beat")


def test_verdict_beats_when_both_conditions_hold():
    c = learning.paired_comparison(LEARNED, OTHER)
    line = learning.verdict(c, 1.0, 1.0)  # equal fossils are enough
    assert line == ("VERDICT: learned policy beats the heuristic: committed accuracy +3.0 points "
                    "[0.5, 5.5] 95% CI, p=0.035 (lower bound above 0: yes); fossils/episode "
                    "1.00 vs 1.00 (at least the heuristic's: yes)")


def test_verdict_not_when_fossils_are_fewer():
    line = learning.verdict(learning.paired_comparison(LEARNED, OTHER), 0.9, 1.0)
    assert "does NOT beat" in line
    assert "(lower bound above 0: yes)" in line and "(at least the heuristic's: no)" in line


@pytest.mark.parametrize("lo", [0.0, -0.4])
def test_verdict_not_when_the_lower_bound_is_not_above_zero(lo):
    line = learning.verdict(learning.Comparison(2.0, lo, 4.0, 0.04), 2.0, 1.0)
    assert "does NOT beat" in line
    assert "(lower bound above 0: no)" in line and "(at least the heuristic's: yes)" in line


def test_result_line():
    c = learning.Comparison(2.1, 0.4, 3.8, 0.03)
    assert learning.result_line(c, 1.1, 0.9) == (
        "RESULT diff=2.100 lo=0.400 hi=3.800 p=0.03 fossils_lstm=1.100 fossils_heuristic=0.900")


def test_mean_outcome_is_field_by_field():
    a = learning.Outcome(70.0, 72.0, 40.0, 1.0, 100.0)
    b = learning.Outcome(74.0, 74.0, 60.0, 0.0, 0.0)
    assert learning.mean_outcome([a, b]) == learning.Outcome(72.0, 73.0, 50.0, 0.5, 50.0)


def test_quick_sets_the_smoke_defaults_and_explicit_options_win(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["learning.py", "--quick", "--held-out", "3"])
    args = learning.parse_args()
    assert (args.train_seeds, args.train_batches, args.held_out, args.eval_batches) == (1, 3, 3, 1)
