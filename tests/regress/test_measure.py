"""Measuring a suite experiment with replicates: one replicate group of real runs, metrics
averaged over them, the worst wiring outcome, and the check of an experiment without baseline."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from esper.compare.outcomes import outcome_metrics
from esper.registry import Registry
from esper.regress.baselines import baseline_path, read_baseline, rounded
from esper.regress.measure import Measurement, measure
from esper.regress.runner import check_experiment
from esper.regress.suite import SuiteExperiment, load_suite

EXPERIMENT = """name: twice
seed: 8
task: {dataset: digits, max_train: 128, max_val: 64, batch_size: 64}
host: {n_blocks: 2, base_channels: 4}
slots: {enabled: [r0c0], max_seeds: 1}
policy: {type: heuristic}
training: {envs: 1, batches: 1, episode_length: 3}
telemetry: {probes: []}
regression:
  replicates: 2
  metrics:
    final_val_accuracy: {direction: higher, threshold: 1, absolute_tolerance: 2}
    final_policy_loss: {direction: lower, absolute_tolerance: 0.1}
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteExperiment, Measurement,
                                                                 Path]:
    root = tmp_path_factory.mktemp("measure")
    (root / "twice.yaml").write_text(EXPERIMENT)
    (experiment,) = load_suite(root).experiments
    db = root / "runs.db"
    return experiment, measure(experiment, "nightly", mlflow=False, registry=db), db


def test_replicates_are_one_group_and_metrics_their_mean(
        measured: tuple[SuiteExperiment, Measurement, Path]) -> None:
    _, measurement, db = measured
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


def test_without_a_baseline_it_regresses_until_one_is_recorded(
        measured: tuple[SuiteExperiment, Measurement, Path], tmp_path: Path) -> None:
    experiment, measurement, _ = measured
    checked = check_experiment(experiment, measurement, tmp_path)
    assert [r.case for r in checked.regressions] == [
        "baseline", "metric final_policy_loss"]
    assert str(checked.regressions[0]).startswith(f"no baseline {tmp_path}/baselines/twice.json")
    assert str(checked.regressions[1]) == (
        "metric final_policy_loss was not measured (None); the rule needs a number")
    updated = check_experiment(experiment, measurement, tmp_path, update_baselines=True)
    assert updated.baseline_written and [r.case for r in updated.regressions] == [
        "metric final_policy_loss"]  # not measured fails, with or without a baseline
    stored = read_baseline(baseline_path(tmp_path, "twice"))
    assert stored is not None and stored.replicates == 2 and stored.seed == 8
    assert stored.metrics == measurement.metrics
    again = check_experiment(replace(experiment), measurement, tmp_path)
    assert [r.case for r in again.regressions] == ["metric final_policy_loss"]
    assert again.checks[0].passed and again.checks[0].delta == 0.0
