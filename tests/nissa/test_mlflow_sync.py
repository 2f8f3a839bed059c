"""An unreachable MLflow store does not stop a run; `esper sync` pushes it later, and the pushed
MLflow run is the one a live recording makes."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.nissa.mlflow_store import URI_ENV_VAR, TrackingError
from esper.nissa.mlflow_sync import sync_run
from esper.registry import NewRun, Registry, RunStatus

from .conftest import new_store
from .esper_process import QUICKSTART, SMALL

PER_RUN_TAGS = {"mlflow.runName", "esper.run_id"}


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def comparable(client: MlflowClient, run_id: str, *, timestamps: bool):
    """Everything of an MLflow run but its ids (and, unless asked, its clock times)."""
    mlflow_run = client.get_run(run_id)
    keys = sorted(mlflow_run.data.metrics)
    histories = {key: [(m.step, m.value, m.timestamp if timestamps else None)
                       for m in client.get_metric_history(run_id, key)] for key in keys}
    artifacts = sorted(f.path for top in client.list_artifacts(run_id)
                       for f in client.list_artifacts(run_id, top.path))
    tags = {k: v for k, v in mlflow_run.data.tags.items() if k not in PER_RUN_TAGS}
    times = (mlflow_run.info.start_time, mlflow_run.info.end_time) if timestamps else None
    return (mlflow_run.info.status, mlflow_run.data.params, tags, histories, artifacts, times)


def test_a_run_with_mlflow_unreachable_completes_and_esper_sync_pushes_it_later(
        tmp_path, mlflow_template, monkeypatch, caplog):
    db, store = str(tmp_path / "runs.db"), tmp_path / "store"
    store.write_text("")  # a file where the store's directory should be: cannot be created
    monkeypatch.setenv(URI_ENV_VAR, f"sqlite:///{store / 'mlflow.db'}")
    with caplog.at_level(logging.WARNING):
        invoke("run", QUICKSTART, *SMALL, "--registry", db, "--name", "offline", "-q")
    with Registry.open(db) as registry:
        offline = registry.resolve("offline")
    warnings = [r for r in caplog.records if "MLflow tracking store" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # reported once
    assert warnings[0].getMessage().endswith(  # the registry is not ./runs.db: it is named
        f"the run is still recorded in {db}; push it later with: "
        f"esper sync {offline.run_id} --registry {db}")
    assert offline.status is RunStatus.FINISHED and offline.mlflow_run_id is None
    (mlflow_sink,) = [s for s in offline.sinks if s.name == "mlflow"]
    assert (mlflow_sink.written, mlflow_sink.dropped) == (0, offline.event_count)
    assert mlflow_sink.last_error.startswith(
        f"MlflowUnavailable: MLflow tracking store sqlite:///{store}/mlflow.db: cannot open it")

    store.unlink()  # the store is back
    uri = new_store(store, mlflow_template)
    pushed = invoke("sync", "offline", "--registry", db)
    assert "pushed to MLflow run" in pushed.output
    invoke("run", QUICKSTART, *SMALL, "--registry", db, "--name", "live", "-q")
    with Registry.open(db) as registry:
        offline, live = registry.resolve("offline"), registry.resolve("live")
    client = MlflowClient(tracking_uri=uri)
    assert offline.mlflow_run_id is not None
    assert client.get_run(offline.mlflow_run_id).data.tags["esper.run_id"] == offline.run_id
    # Same experiment and seed: the same events but their times, so the same MLflow run.
    assert comparable(client, offline.mlflow_run_id, timestamps=False) == comparable(
        client, live.mlflow_run_id, timestamps=False)

    again = invoke("sync", "offline", "--registry", db)
    assert "already complete in MLflow run " + offline.mlflow_run_id in again.output
    forced = invoke("sync", "offline", "--registry", db, "--force")
    with Registry.open(db) as registry:
        replaced = registry.resolve("offline").mlflow_run_id
    assert replaced != offline.mlflow_run_id and replaced in forced.output
    assert client.get_run(offline.mlflow_run_id).info.lifecycle_stage == "deleted"


def test_sync_replays_a_live_run_into_the_same_mlflow_run_times_included(
        tmp_path, mlflow_uri, mlflow_template):
    db = tmp_path / "runs.db"
    invoke("run", QUICKSTART, *SMALL, "--registry", str(db), "--name", "live", "-q")
    other = new_store(tmp_path / "other", mlflow_template)
    with Registry.open(db) as registry:
        live = registry.resolve("live")
        result = sync_run(registry, "live", uri=other)
    assert result.pushed and result.uri == other
    original = comparable(MlflowClient(tracking_uri=mlflow_uri), live.mlflow_run_id,
                          timestamps=True)
    replayed = comparable(MlflowClient(tracking_uri=other), result.mlflow_run_id,
                          timestamps=True)
    assert replayed == original


def test_sync_refuses_a_run_still_running(tmp_path, mlflow_uri):
    with Registry.open(tmp_path / "runs.db") as registry:
        running = registry.create_run(NewRun(experiment="busy", config={}, seed=0))
        with pytest.raises(TrackingError, match=f"run {running.run_id} .* is still RUNNING"):
            sync_run(registry, running.run_id)
