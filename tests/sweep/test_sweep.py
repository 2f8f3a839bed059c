"""A real 4-trial sweep on each executor (local processes, a local Ray cluster): the parent and
child runs in runs.db, every trial's events and metrics, two trials that fail on missing data.
On the local executor also MLflow, the ranking, and `esper sweep --resume` rerunning only those
two (exit code 1: they fail again), read back by `esper compare sweep:<id>`.

Each executor's sequence is one test: a module-scoped fixture would rerun the sweeps on every
xdist worker that gets one of its tests. The checks are named functions, so a failure says
which one broke.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.compare.outcomes import outcome_metrics
from esper.leyline.events import TelemetryEventType
from esper.nissa.metric_series import MetricMapper
from esper.registry import Registry, RunStatus
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


def test_a_sweep_on_local_processes_its_mlflow_runs_ranking_and_resume(tmp_path):
    (tmp_path / "cifar").mkdir()
    db, uri = tmp_path / "runs.db", f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_sweep(four_trials(tmp_path / "cifar", uri), LocalExecutor(2), registry=db,
                       name="sw")
    check_parent_and_children(result)
    check_trial_events_and_metrics(db, result)
    check_failed_trials(result)
    check_mlflow(db, uri, result)
    check_ranking(db, result)
    resumed = CliRunner().invoke(cli, ["sweep", "--resume", "sw", "--registry", str(db),
                                       "--max-parallel", "1", "--json"])
    check_resume(db, result, resumed)
    check_compare_cli(db, result, json.loads(resumed.stdout))


def test_a_sweep_on_a_local_ray_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray executor needs Ray: pip install 'esper[ray]'")
    from esper.sweep.ray_executor import RayExecutor

    (tmp_path / "cifar").mkdir()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        result = run_sweep(four_trials(tmp_path / "cifar", None), RayExecutor(None, 2),
                           registry=tmp_path / "runs.db", name="sw")
    finally:
        ray.shutdown()
    check_parent_and_children(result)
    check_trial_events_and_metrics(tmp_path / "runs.db", result)
    check_failed_trials(result)


def check_parent_and_children(result: SweepResult) -> None:
    sweep, trials = result.sweep, result.trials
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


def check_trial_events_and_metrics(db: Path, result: SweepResult) -> None:
    """Every trial's events numbered and ended by its status; its metrics table what the
    mapping derives from those events read back."""
    with Registry.open(db) as registry:
        for trial in result.trials:
            events = list(registry.events(trial.run_id))
            stored = registry.query("SELECT key, step, value FROM metrics WHERE run_id = ? "
                                    "ORDER BY key, step", [trial.run_id])
            assert [e.seq for e in events] == list(range(trial.event_count))
            assert {e.run_id for e in events} == {trial.run_id}
            last = events[-1]
            assert last.event_type is T.RUN_FINISHED and last.data.status == trial.status.value
            derived = sorted((p.key, p.step, p.value) for p in MetricMapper().points(events))
            assert stored == derived
            epochs = [e for e in events if e.event_type is T.EPOCH_COMPLETED]
            if trial.config["task"]["dataset"] == "digits":
                assert trial.status is RunStatus.FINISHED
                assert len(epochs) == 2 * 4  # 2 envs x 4 epochs x 1 batch
                assert {"env0/val_accuracy", "env1/val_accuracy", "episode/val_accuracy"} <= {
                    key for key, _, _ in stored}
                assert trial.sinks[0].written == trial.event_count and trial.events_dropped == 0
            else:
                assert epochs == [] and stored == []


def check_failed_trials(result: SweepResult) -> None:
    failed = [t for t in result.trials if t.status is RunStatus.FAILED]
    assert [t.config["task"]["dataset"] for t in failed] == ["cifar10", "cifar10"]
    for trial in failed:
        assert trial.exit_reason.startswith("DatasetError: CIFAR-10 directory")
        assert "read_cifar10" in trial.traceback
    assert result.sweep.status is RunStatus.FINISHED
    assert result.sweep.exit_reason == "2 of 4 trials did not finish: sw-t1 FAILED, sw-t3 FAILED"
    assert result.failed == tuple(failed)


def check_mlflow(db: Path, uri: str, result: SweepResult) -> None:
    """MLflow nests every trial under the sweep, with its status and params, and a finished
    trial's wiring verdict."""
    with Registry.open(db) as registry:
        verdicts = {t.run_id: "fail" if any(row["outcome"] in ("FAIL", "XPASS")
                                            for row in registry.wiring(t.run_id)) else "ok"
                    for t in result.trials if t.status is RunStatus.FINISHED}
    assert len(verdicts) == 2
    client = MlflowClient(tracking_uri=uri)
    sweep = result.sweep
    parent = client.get_run(sweep.mlflow_run_id)
    assert parent.info.run_name == "sw" and parent.info.status == "FINISHED"
    best = result.ranking.trials[0]
    assert parent.data.tags["esper.sweep.best_run"] == best.runs[0].run_id
    assert parent.data.metrics["final_val_accuracy"] == pytest.approx(best.value)
    for trial in result.trials:
        child = client.get_run(trial.mlflow_run_id)
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["esper.run_id"] == trial.run_id
        assert child.info.status == trial.status.value
        assert child.data.params["host.lr"] == str(trial.config["host"]["lr"])
        assert child.data.tags["esper.events"] == str(trial.event_count)
        assert child.data.tags.get("esper.wiring") == verdicts.get(trial.run_id)


def check_ranking(db: Path, result: SweepResult) -> None:
    """Trials ordered by the metric, the unmeasured last; the varying keys named."""
    with Registry.open(db) as registry:
        ranking = rank_sweep(registry, "sw")
        measured = {t.index: outcome_metrics(registry, t.runs[0].run_id)["final_val_accuracy"]
                    for t in ranking.trials if t.status is RunStatus.FINISHED}
    assert ranking == result.ranking
    assert ranking.metric == "final_val_accuracy" and ranking.goal == "maximize"
    assert ranking.varying == ("host.lr", "task.dataset")
    values = [t.value for t in ranking.trials]
    assert values[:2] == sorted(measured.values(), reverse=True)
    assert all(v is not None for v in values[:2]) and values[2:] == [None, None]
    assert {t.index for t in ranking.trials[2:]} == {1, 3}


def check_resume(db: Path, result: SweepResult, resumed) -> None:
    """`esper sweep --resume` reran only the two failed trials (failing again: exit code 1),
    as new child runs of the same sweep, and printed the ranking with their new runs."""
    sweep_id = result.sweep.run_id
    assert resumed.exit_code == 1, resumed.output
    assert (f"Error: 2 of 2 trials did not finish; rerun them with: esper sweep --resume "
            f"{sweep_id}") in resumed.stderr
    with Registry.open(db) as registry:
        children = trial_runs(registry, sweep_id)
    first = {t.run_id for t in result.trials}
    new = [c for c in children if c.run_id not in first]
    assert len(children) == 6  # the four first runs kept, two new ones
    assert sorted(t.name for t in new) == ["sw-t1", "sw-t3"]
    assert sorted(t.tags["esper.trial"] for t in new) == ["1", "3"]
    assert {t.parent_run_id for t in new} == {sweep_id}
    assert {t.status for t in new} == {RunStatus.FAILED}
    shown = {t["trial"]: t["runs"] for t in json.loads(resumed.stdout)["trials"]}
    assert {shown[1][0], shown[3][0]} == {t.run_id for t in new}
    progress = [line for line in resumed.stderr.splitlines() if "trial t" in line]
    assert len(progress) == 4  # each trial started and ended, on stderr as the sweep ran
    for label in ("t1", "t3"):
        assert sum(line.startswith(f"started trial {label}: run sw-{label} (")
                   for line in progress) == 1
        assert sum(bool(re.fullmatch(rf"\[[12]/2\] trial {label} FAILED in \d+ s: run "
                                     rf"sw-{label} \(\w+\)", line)) for line in progress) == 1


def check_compare_cli(db: Path, result: SweepResult, ranking: dict) -> None:
    """`esper compare sweep:<id> --json` shows the ranking `esper sweep` printed."""
    shown = CliRunner().invoke(cli, ["compare", f"sweep:{result.sweep.run_id}",
                                     "--registry", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    compared = json.loads(shown.stdout)
    assert compared["metric"] == "final_val_accuracy"
    assert compared["varying"] == ["host.lr", "task.dataset"]
    assert compared["trials"] == ranking["trials"]


def test_resuming_a_sweep_whose_trials_all_finished_changes_nothing(tmp_path):
    db = tmp_path / "runs.db"
    spec = tiny_spec(task={"dataset": "digits", "max_train": 128, "max_val": 64, "batch_size": 64},
                     telemetry={"probes": []}, tracking={"mlflow": False},
                     sweep={"parameters": {"host.lr": {"values": [0.01]}}})
    first = run_sweep(spec, LocalExecutor(1), registry=db, name="done")
    assert [t.status for t in first.trials] == [RunStatus.FINISHED]
    resumed = resume_sweep("done", LocalExecutor(1), registry=db)
    assert resumed.trials == () and resumed.sweep == first.sweep  # ended_at kept, no new run
    with Registry.open(db) as registry:
        assert len(trial_runs(registry, first.sweep.run_id)) == 1
        assert registry.run(first.sweep.run_id).ended_at == first.sweep.ended_at
