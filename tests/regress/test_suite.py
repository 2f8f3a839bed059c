"""Suite discovery: experiments of a directory, the manifest's subsets, and bad suites."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest

from esper.compare.outcomes import OUTCOME_METRICS
from esper.leyline.config import ProbeName
from esper.leyline.errors import SpecError
from esper.regress.errors import SuiteError
from esper.regress.suite import load_suite

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = """name: {name}
regression:
  metrics:
    final_val_accuracy: {{direction: higher, {check}}}
"""


def write(directory: Path, name: str, check: str = "threshold: 10") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(EXPERIMENT.format(name=name, check=check))
    return path


def test_every_yaml_but_the_manifest_in_file_order(tmp_path: Path) -> None:
    write(tmp_path, "b_second")
    write(tmp_path, "a_first", "absolute_tolerance: 2")
    (tmp_path / "suite.yaml").write_text("name: nightly\nsubsets:\n  quick: [b_second]\n")
    suite = load_suite(tmp_path)
    assert suite.name == "nightly" and suite.subset is None
    assert [e.name for e in suite.experiments] == ["a_first", "b_second"]
    assert suite.experiments[0].regression.metrics["final_val_accuracy"].absolute_tolerance == 2
    quick = load_suite(tmp_path, "quick")
    assert [e.name for e in quick.experiments] == ["b_second"] and quick.subset == "quick"


def test_a_yml_experiment_is_in_the_suite_too(tmp_path: Path) -> None:
    # left out, it would never run and its regressions would go unnoticed
    write(tmp_path, "a_first").rename(tmp_path / "a_first.yml")
    write(tmp_path, "b_second")
    (tmp_path / "notes.txt").write_text("not an experiment")
    assert [e.name for e in load_suite(tmp_path).experiments] == ["a_first", "b_second"]


def test_without_a_manifest_the_suite_is_named_after_its_directory(tmp_path: Path) -> None:
    suite_dir = tmp_path / "smoke"
    suite_dir.mkdir()
    write(suite_dir, "one")
    assert load_suite(suite_dir).name == "smoke"


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, r"suite .*: no experiment files \(\*\.yaml, \*\.yml\) in it"),
    (lambda d: (d / "x.yaml").write_text("name: x\n"),
     r"x\.yaml: experiment 'x' has no regression: block"),
    (lambda d: (write(d, "x"), (d / "y.yaml").write_text(EXPERIMENT.format(
        name="x", check="threshold: 1"))),
     r"y\.yaml: experiment name 'x' is also used by .*x\.yaml; names must be unique"),
    (lambda d: (write(d, "x"), (d / "suite.yaml").write_text("nme: x\n")),
     r"suite\.yaml: unexpected content \['nme'\]; expected a mapping with name"),
    (lambda d: (write(d, "x"), (d / "suite.yaml").write_text("name: [a, b]\n")),
     r"suite\.yaml: name must be a non-empty text .*, got \['a', 'b'\]"),
    (lambda d: (write(d, "x"), (d / "suite.yaml").write_text("subsets: {fast: x}\n")),
     r"suite\.yaml: subsets must map each subset name to a list of experiment names"),
])
def test_bad_suites_are_clear_errors(tmp_path: Path, setup: Callable[[Path], object],
                                     message: str) -> None:
    setup(tmp_path)
    with pytest.raises(SuiteError, match=message):
        load_suite(tmp_path)


def test_every_file_s_regression_block_problems_are_reported_at_once(tmp_path: Path) -> None:
    """They were SuiteErrors without a position, the first one only (issue 21)."""
    idle = write(tmp_path, "a_idle", "min_relative_change: null")
    misspelt = tmp_path / "b_misspelt.yaml"
    misspelt.write_text("name: b\nregression:\n  metrics:\n"
                        "    final_val_acuracy: {direction: higher, threshold: 1}\n")
    with pytest.raises(SpecError) as raised:
        load_suite(tmp_path)
    assert [str(problem) for problem in raised.value.problems] == [
        f"{idle}:4:5: regression.metrics.final_val_accuracy: the rule checks nothing (expected "
        "a threshold, a min_absolute_change / min_relative_change or an absolute_tolerance / "
        "relative_tolerance)",
        f"{misspelt}:4:5: regression.metrics.final_val_acuracy: key 'final_val_acuracy' is not "
        "allowed (did you mean 'final_val_accuracy'?); expected one of: " + ", ".join(
            repr(name) for name in OUTCOME_METRICS)]


def test_the_manifest_is_read_as_yaml_1_2(tmp_path: Path) -> None:
    write(tmp_path, "x")
    (tmp_path / "suite.yaml").write_text("name: off\n")  # YAML 1.1: false, "not a text"
    assert load_suite(tmp_path).name == "off"


def test_unknown_subsets_and_members_are_named(tmp_path: Path) -> None:
    write(tmp_path, "x")
    (tmp_path / "suite.yaml").write_text("subsets: {fast: [x], wrong: [y]}\n")
    with pytest.raises(SuiteError,
                       match=r"no subset 'slow' in suite\.yaml \(subsets: fast, wrong\)"):
        load_suite(tmp_path, "slow")
    with pytest.raises(SuiteError, match=r"subset 'wrong' names 'y', which is no experiment of "
                                         r"the suite \(experiments: x\)"):
        load_suite(tmp_path, "wrong")


def test_not_a_directory_and_an_invalid_experiment(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"nowhere: not a directory"):
        load_suite(tmp_path / "nowhere")
    write(tmp_path, "x", "threshold: high")
    with pytest.raises(SpecError, match=r"x\.yaml:4:.*threshold"):
        load_suite(tmp_path)


def test_the_repository_suite_loads_with_its_fast_subset() -> None:
    suite = load_suite(REPO / "experiments" / "regression")
    names = [e.name for e in suite.experiments]
    assert {"heuristic_digits", "lstm_tele340", "telemetry_wiring"} <= set(names)
    assert {e.spec.policy.type for e in suite.experiments} >= {"heuristic", "lstm"}
    fast = load_suite(REPO / "experiments" / "regression", "fast")
    assert 0 < len(fast.experiments) < len(suite.experiments)
    for experiment in suite.experiments:
        assert (REPO / "experiments" / "regression" / "baselines" /
                f"{experiment.name}.json").exists(), experiment.name


def test_the_wiring_experiment_switches_on_every_probe_but_the_profiler() -> None:
    """A probe added to esper must join telemetry_wiring, or its fields are never audited."""
    suite = load_suite(REPO / "experiments" / "regression")
    (wiring,) = [e for e in suite.experiments if e.name == "telemetry_wiring"]
    assert set(wiring.spec.telemetry.probes) == set(get_args(ProbeName)) - {"profiler"}
