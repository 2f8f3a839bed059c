"""The MLflow run ends with the registry's status: FAILED on an exception, KILLED on SIGTERM,
and a run that died without a word (CRASHED) is ended FAILED the next time esper runs."""

from __future__ import annotations

import os
import signal

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, RunStatus
from esper.tolaria.host_step import run_epoch
from esper.tolaria.stacked_step import run_epoch_stacked
from tests.spec_factory import tiny_spec

from .esper_process import LONG, QUICKSTART, SMALL, start_esper, wait_until_mirrored


def test_a_run_that_raises_ends_failed_in_mlflow_with_its_reason(tmp_path, monkeypatch,
                                                                 mlflow_uri):
    def failing_at_epoch_2(step):
        def fail_at_epoch_2(*args, **kwargs):
            if args[4] == 2:  # the global epoch, in either step's arguments
                raise RuntimeError("injected failure")
            return step(*args, **kwargs)
        return fail_at_epoch_2

    monkeypatch.setattr("esper.simic.env_loop.run_epoch", failing_at_epoch_2(run_epoch))
    monkeypatch.setattr("esper.simic.env_loop.run_epoch_stacked",
                        failing_at_epoch_2(run_epoch_stacked))
    with pytest.raises(RuntimeError, match="injected failure"):
        run(tiny_spec(), registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        (record,) = registry.runs()
        epochs = [e for e in registry.events(record.run_id)
                  if e.event_type is TelemetryEventType.EPOCH_COMPLETED]
    assert record.status is RunStatus.FAILED
    mlflow_run = MlflowClient(tracking_uri=mlflow_uri).get_run(record.mlflow_run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["esper.status"] == "FAILED"
    assert mlflow_run.data.tags["esper.exit_reason"] == record.exit_reason == (
        "RuntimeError: injected failure")
    history = MlflowClient(tracking_uri=mlflow_uri).get_metric_history(
        record.mlflow_run_id, "env0/val_accuracy")
    assert [m.value for m in history] == [e.data.val_accuracy for e in epochs if e.env_id == 0]
    assert len(history) == 2  # epochs 0 and 1 were trained and are kept


def test_sigterm_ends_the_run_killed_in_mlflow(tmp_path, mlflow_uri):
    db = tmp_path / "runs.db"
    child = start_esper("run", QUICKSTART, *LONG, "--registry", str(db), "--quiet")
    try:
        started = wait_until_mirrored(db, child, epochs=6)
        os.kill(child.pid, signal.SIGTERM)
        _, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 143, stderr
    with Registry.open(db) as registry:
        record = registry.run(started.run_id)
    assert (record.status, record.exit_reason) == (RunStatus.KILLED, "SIGTERM")
    client = MlflowClient(tracking_uri=mlflow_uri)
    mlflow_run = client.get_run(record.mlflow_run_id)
    assert mlflow_run.info.status == "KILLED"
    assert mlflow_run.data.tags["esper.exit_reason"] == "SIGTERM"
    assert mlflow_run.data.tags["esper.events"] == str(record.event_count)
    assert len(client.get_metric_history(record.mlflow_run_id, "env0/val_accuracy")) >= 2


def test_a_crashed_run_is_ended_failed_in_mlflow_the_next_time_esper_runs(tmp_path, mlflow_uri):
    db = tmp_path / "runs.db"
    child = start_esper("run", QUICKSTART, *LONG, "--registry", str(db), "--quiet")
    try:
        crashed = wait_until_mirrored(db, child, epochs=6)
    finally:
        child.kill()
        child.communicate(timeout=60)  # reaped: its pid is dead, the run shows CRASHED
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(crashed.mlflow_run_id).info.status == "RUNNING"

    result = CliRunner().invoke(cli, ["run", QUICKSTART, *SMALL, "--registry", str(db), "-q"])
    assert result.exit_code == 0, result.output
    with Registry.open(db) as registry:
        record = registry.run(crashed.run_id)
    assert record.status is RunStatus.CRASHED
    mlflow_run = client.get_run(crashed.mlflow_run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["esper.status"] == "CRASHED"
    assert mlflow_run.info.end_time == round(record.heartbeat_at * 1000)
