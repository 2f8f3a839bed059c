"""Measuring a suite experiment with replicates: one replicate group of real runs, metrics
averaged over them, the worst wiring outcome, and the check of an experiment without baseline."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from esper.compare.outcomes import outcome_metrics
from esper.leyline.catalogue import CATALOGUE
from esper.registry import Registry
from esper.registry.wiring import FieldObservation, Outcome, WiringOutcome
from esper.regress.baselines import baseline_path, read_baseline, rounded, write_baseline
from esper.regress.measure import Measurement, measure, worst_outcomes
from esper.regress.report import result_to_dict
from esper.regress.runner import SuiteResult, check_experiment
from esper.regress.suite import SuiteExperiment, load_suite
from tests.regress.suite_files import suite_document, write_experiment

TWICE = suite_document(
    "twice", 8, {"final_val_accuracy": {"direction": "higher", "threshold": 1,
                                        "absolute_tolerance": 2},
                 "final_policy_loss": {"direction": "lower", "absolute_tolerance": 0.1}},
    replicates=2)


def test_a_measured_experiment_and_its_first_baseline(tmp_path: Path) -> None:
    """One test (two runs): under xdist a shared fixture would run on every worker."""
    write_experiment(tmp_path, TWICE)
    (experiment,) = load_suite(tmp_path).experiments
    db = tmp_path / "runs.db"
    measurement = measure(experiment, "nightly", mlflow=False, registry=db)
    _replicates_are_one_group_and_metrics_their_mean(measurement, db)
    _without_a_baseline_it_regresses_until_one_is_recorded(experiment, measurement,
                                                           tmp_path / "suite")
    _a_baseline_of_another_seed_or_replicates_is_not_compared_with(experiment, measurement,
                                                                   tmp_path / "suite")


def _replicates_are_one_group_and_metrics_their_mean(measurement: Measurement, db: Path) -> None:
    assert measurement.seeds == (8, 9) and measurement.group_id is not None
    with Registry.open(db, create=False) as registry:
        records = [registry.run(run_id) for run_id in measurement.run_ids]
        accuracies = [outcome_metrics(registry, r)["final_val_accuracy"]
                      for r in measurement.run_ids]
    assert {r.group_id for r in records} == {measurement.group_id}
    assert all(r.tags["esper.suite"] == "nightly" and r.mlflow_run_id is None for r in records)
    assert None not in accuracies
    assert measurement.metrics["final_val_accuracy"] == rounded(math.fsum(accuracies) / 2)
    assert measurement.metrics["final_policy_loss"] is None  # a heuristic run has no PPO loss
    assert measurement.wiring["TELE-100 start_seed"].outcome == "PASS"
    assert measurement.wall_time_s > 0


def _without_a_baseline_it_regresses_until_one_is_recorded(
        experiment: SuiteExperiment, measurement: Measurement, suite_dir: Path) -> None:
    checked = check_experiment(experiment, measurement, suite_dir)
    assert [r.case for r in checked.regressions] == [
        "baseline", "metric final_policy_loss"]
    assert str(checked.regressions[0]).startswith(f"no baseline {suite_dir}/baselines/twice.json")
    assert str(checked.regressions[1]) == (
        "metric final_policy_loss was not measured (None); the rule needs a number")
    updated = check_experiment(experiment, measurement, suite_dir, update_baselines=True)
    assert updated.baseline_written and [r.case for r in updated.regressions] == [
        "metric final_policy_loss"]  # not measured fails, with or without a baseline
    stored = read_baseline(baseline_path(suite_dir, "twice"))
    assert stored is not None and stored.replicates == 2 and stored.seed == 8
    assert stored.metrics == measurement.metrics
    again = check_experiment(experiment, measurement, suite_dir)
    assert [r.case for r in again.regressions] == ["metric final_policy_loss"]
    assert again.checks[0].passed and again.checks[0].delta == 0.0


def test_a_field_takes_its_worst_outcome_over_the_replicates() -> None:
    experiment_field, seed_field, envs_field = CATALOGUE[:3]  # TELE-100 start_*

    def replicate(*outcomes: Outcome) -> list[WiringOutcome]:
        return [WiringOutcome(field, "expect", outcome, FieldObservation(), f"{outcome.value} r")
                for field, outcome in zip((experiment_field, seed_field, envs_field), outcomes)]

    worst = worst_outcomes([replicate(Outcome.PASS, Outcome.XFAIL, Outcome.SKIP),
                            replicate(Outcome.FAIL, Outcome.PASS, Outcome.PASS),
                            replicate(Outcome.XPASS, Outcome.SKIP, Outcome.SKIP)])
    assert {key: (field.outcome, field.reason) for key, field in worst.items()} == {
        "TELE-100 start_experiment": ("FAIL", "FAIL r"),
        "TELE-100 start_seed": ("XFAIL", "XFAIL r"),
        "TELE-100 start_envs": ("PASS", "PASS r")}
    assert list(worst) == sorted(worst)


def _a_baseline_of_another_seed_or_replicates_is_not_compared_with(
        experiment: SuiteExperiment, measurement: Measurement, suite_dir: Path) -> None:
    """The experiment's seed changed since its baseline was recorded (seed 8 then, 7 in the
    baseline file): its metrics were checked against another seed's numbers, and the false
    alarm named the metric, not the stale baseline."""
    path = baseline_path(suite_dir, "twice")
    stored = read_baseline(path)
    assert stored is not None
    accuracy = measurement.metrics["final_val_accuracy"]
    assert accuracy is not None
    write_baseline(path, dataclasses.replace(
        stored, seed=7, metrics={**stored.metrics, "final_val_accuracy": accuracy + 50}))
    checked = check_experiment(experiment, measurement, suite_dir)
    assert [r.case for r in checked.regressions] == ["baseline", "metric final_policy_loss"]
    assert result_to_dict(SuiteResult(load_suite(experiment.path.parent), (checked,)))[
        "experiments"][0]["baseline"] == "stale"
    assert str(checked.regressions[0]) == (
        f"baseline {path} was measured with seed 7 and 2 replicate(s), the experiment now runs "
        "seed 8 and 2; record it again with esper regress --update-baselines")
    fewer = dataclasses.replace(experiment, regression=dataclasses.replace(
        experiment.regression, replicates=1))
    write_baseline(path, stored)
    assert [r.case for r in check_experiment(fewer, measurement, suite_dir).regressions] == [
        "baseline", "metric final_policy_loss"]
    updated = check_experiment(experiment, measurement, suite_dir, update_baselines=True)
    assert [r.case for r in updated.regressions] == ["metric final_policy_loss"]
