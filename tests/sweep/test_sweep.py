"""A real 4-trial sweep on each executor (local processes, a local Ray cluster): the parent and
child runs in runs.db and MLflow, every trial's events, two trials that fail on missing data,
the ranking, and resume rerunning only those two."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from esper.compare.outcomes import outcome_metrics
from esper.leyline.events import TelemetryEventType
from esper.nissa.mlflow_store import MlflowStore
from esper.registry import Registry, RunRecord, RunStatus
from esper.sweep.driver import SweepResult, resume_sweep, run_sweep
from esper.sweep.local import LocalExecutor
from esper.sweep.ranking import rank_sweep, trial_runs
from tests.spec_factory import tiny_spec

T = TelemetryEventType


def four_trials(data_dir: Path, mlflow_uri: str | None):
    """digits or cifar10 x two host learning rates; the cifar10 trials fail (no data there)."""
    return tiny_spec(
        task={"dataset": "digits", "max_train": 128, "max_val": 64, "batch_size": 64,
              "data_dir": str(data_dir)},
        telemetry={"probes": []},
        tracking={"mlflow": mlflow_uri is not None, "uri": mlflow_uri},
        sweep={"parameters": {"task.dataset": {"values": ["digits", "cifar10"]},
                              "host.lr": {"values": [0.01, 0.1]}}})


@dataclass(frozen=True)
class Swept:
    result: SweepResult
    registry_path: Path
    mlflow_uri: str
    resumed: SweepResult


def _executor(kind: str):
    if kind == "local":
        return LocalExecutor(2)
    from esper.sweep.ray_executor import RayExecutor

    return RayExecutor(None, 2)


@pytest.fixture(scope="module", params=["local", "ray"])
def swept(request, tmp_path_factory) -> Swept:
    if request.param == "ray":
        ray = pytest.importorskip("ray", reason="the Ray executor needs Ray: "
                                                "pip install 'esper[ray]'")
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        request.addfinalizer(ray.shutdown)
    root = tmp_path_factory.mktemp(f"sweep-{request.param}")
    (root / "cifar").mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowStore.open(uri)
    result = run_sweep(four_trials(root / "cifar", uri), _executor(request.param),
                       registry=root / "runs.db", name="sw")
    resumed = resume_sweep("sw", _executor(request.param), registry=root / "runs.db")
    return Swept(result, root / "runs.db", uri, resumed)


def _events(swept: Swept, run: RunRecord):
    with Registry.open(swept.registry_path) as registry:
        return list(registry.events(run.run_id))


def test_the_sweep_is_a_parent_run_and_every_trial_a_child_with_its_params(swept):
    sweep, trials = swept.result.sweep, swept.result.trials
    assert sweep.tags["esper.kind"] == "sweep" and sweep.parent_run_id is None
    assert sweep.config["sweep"]["parameters"]["host.lr"]["values"] == [0.01, 0.1]
    assert [t.name for t in trials] == ["sw-t0", "sw-t1", "sw-t2", "sw-t3"]
    assert {t.parent_run_id for t in trials} == {t.group_id for t in trials} == {sweep.run_id}
    seen = set()
    for trial in trials:
        lr, dataset = trial.config["host"]["lr"], trial.config["task"]["dataset"]
        assert trial.tags["sweep.host.lr"] == str(lr)
        assert trial.tags["sweep.task.dataset"] == f'"{dataset}"'
        assert trial.config["sweep"] is None and trial.pid == sweep.pid
        seen.add((dataset, lr))
    assert seen == {("digits", 0.01), ("digits", 0.1), ("cifar10", 0.01), ("cifar10", 0.1)}


def test_every_trial_has_its_events_numbered_and_ended_by_its_status(swept):
    for trial in swept.result.trials:
        events = _events(swept, trial)
        assert [e.seq for e in events] == list(range(trial.event_count))
        assert {e.run_id for e in events} == {trial.run_id}
        last = events[-1]
        assert last.event_type is T.RUN_FINISHED and last.data.status == trial.status.value
        epochs = [e for e in events if e.event_type is T.EPOCH_COMPLETED]
        if trial.config["task"]["dataset"] == "digits":
            assert trial.status is RunStatus.FINISHED
            assert len(epochs) == 2 * 4  # 2 envs x 4 epochs x 1 batch
            assert trial.sinks[0].written == trial.event_count and trial.events_dropped == 0
        else:
            assert epochs == []


def test_a_failing_trial_is_recorded_failed_and_the_sweep_goes_on(swept):
    failed = [t for t in swept.result.trials if t.status is RunStatus.FAILED]
    assert [t.config["task"]["dataset"] for t in failed] == ["cifar10", "cifar10"]
    for trial in failed:
        assert trial.exit_reason.startswith("DatasetError: CIFAR-10 directory")
        assert "read_cifar10" in trial.traceback
    assert swept.result.sweep.status is RunStatus.FINISHED
    assert swept.result.sweep.exit_reason == (
        "2 of 4 trials did not finish: sw-t1 FAILED, sw-t3 FAILED")
    assert swept.result.failed == tuple(failed)


def test_mlflow_nests_every_trial_under_the_sweep_with_its_status(swept):
    client = MlflowClient(tracking_uri=swept.mlflow_uri)
    sweep = swept.result.sweep
    parent = client.get_run(sweep.mlflow_run_id)
    assert parent.info.run_name == "sw" and parent.info.status == "FINISHED"
    best = swept.result.ranking.trials[0]
    assert parent.data.tags["esper.sweep.best_run"] == best.runs[0].run_id
    assert parent.data.metrics["final_val_accuracy"] == pytest.approx(best.value)
    for trial in swept.result.trials:
        child = client.get_run(trial.mlflow_run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["esper.run_id"] == trial.run_id
        assert child.info.status == trial.status.value
        assert child.data.params["host.lr"] == str(trial.config["host"]["lr"])
        assert child.data.tags["esper.events"] == str(trial.event_count)


def test_the_ranking_orders_trials_by_the_metric_and_names_the_varying_keys(swept):
    with Registry.open(swept.registry_path) as registry:
        ranking = rank_sweep(registry, "sw")
        measured = {t.index: outcome_metrics(registry, t.runs[0].run_id)["final_val_accuracy"]
                    for t in ranking.trials if t.status is RunStatus.FINISHED}
    assert ranking.metric == "final_val_accuracy" and ranking.goal == "maximize"
    assert ranking.varying == ("host.lr", "task.dataset")
    values = [t.value for t in ranking.trials]
    assert values[:2] == sorted(measured.values(), reverse=True)
    assert all(v is not None for v in values[:2]) and values[2:] == [None, None]
    assert {t.index for t in ranking.trials[2:]} == {1, 3}


def test_resume_reruns_only_the_trials_that_did_not_finish(swept):
    resumed = swept.resumed
    assert sorted(t.name for t in resumed.trials) == ["sw-t1", "sw-t3"]
    assert all(t.tags["esper.trial"] in ("1", "3") for t in resumed.trials)
    assert all(t.parent_run_id == swept.result.sweep.run_id for t in resumed.trials)
    assert resumed.sweep.run_id == swept.result.sweep.run_id
    with Registry.open(swept.registry_path) as registry:
        children = trial_runs(registry, resumed.sweep.run_id)
    assert len(children) == 6  # the four first runs kept, two new ones


def test_esper_compare_sweep_ranks_the_trials_as_json(swept):
    from click.testing import CliRunner

    from esper.cli import cli

    result = CliRunner().invoke(cli, ["compare", f"sweep:{swept.result.sweep.run_id}",
                                      "--registry", str(swept.registry_path), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    ranking = swept.resumed.ranking
    assert shown["metric"] == "final_val_accuracy" and shown["varying"] == list(ranking.varying)
    assert [t["trial"] for t in shown["trials"]] == [t.index for t in ranking.trials]
    assert [t["value"] for t in shown["trials"]] == [t.value for t in ranking.trials]
