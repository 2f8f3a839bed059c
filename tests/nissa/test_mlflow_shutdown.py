"""A signal while MLflow hangs ends the run within bounds, and `esper sync` then leaves exactly
one MLflow run of it, ended with the registry's status (the stale one is replaced, not kept
beside a second)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.nissa.mlflow_run import create_mlflow_run, mlflow_runs_of
from esper.nissa.mlflow_sink import MlflowTarget
from esper.nissa.mlflow_sync import sync_run
from esper.registry import Registry, RunStatus

from .conftest import new_store
from .esper_process import LONG, QUICKSTART, run_without_mlflow, start_esper, wait_until_mirrored

SERVER_START = 300.0  # seconds `mlflow server` may take to answer (a loaded CI machine)
DOES_NOT_HANG = 30.0  # generous: the second signal leaves the sinks 2 s


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(tmp_path: Path, backend: str) -> tuple[subprocess.Popen[bytes], str]:
    """A real `mlflow server` in its own process group (its workers are children), serving
    artifacts itself, so that uploads go through it."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(tmp_path / "served"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + SERVER_START
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=5).close()
            return server, url
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise AssertionError(f"mlflow server did not answer within {SERVER_START} s")


def test_sigterm_while_mlflow_hangs_ends_within_bounds_and_sync_replaces_the_stale_run(
        tmp_path, mlflow_template, monkeypatch):
    server, url = _start_server(tmp_path, new_store(tmp_path / "backend", mlflow_template))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    db = tmp_path / "runs.db"
    child = start_esper("run", QUICKSTART, *LONG, "--registry", str(db), "--quiet")
    try:
        started = wait_until_mirrored(db, child, epochs=6)
        os.killpg(server.pid, signal.SIGSTOP)  # the store hangs: every MLflow call waits
        os.kill(child.pid, signal.SIGTERM)
        time.sleep(3)  # the end is under way, waiting for the MLflow sink
        os.kill(child.pid, signal.SIGTERM)
        asked = time.monotonic()
        _, stderr = child.communicate(timeout=120)
        took = time.monotonic() - asked
    finally:
        child.kill()
        os.killpg(server.pid, signal.SIGCONT)
    try:
        assert child.returncode == 143, stderr
        assert took < DOES_NOT_HANG, (took, stderr)
        assert "SIGTERM: ending now" in stderr and "Traceback" not in stderr, stderr
        with Registry.open(db) as registry:
            record = registry.run(started.run_id)
        assert (record.status, record.exit_reason) == (RunStatus.KILLED, "SIGTERM")
        client = MlflowClient(tracking_uri=url)
        assert client.get_run(record.mlflow_run_id).info.status == "RUNNING"  # it could not

        result = CliRunner().invoke(cli, ["sync", record.run_id, "--registry", str(db)])
        assert result.exit_code == 0, result.output
        with Registry.open(db) as registry:
            record = registry.run(started.run_id)
            target = MlflowTarget.open(url, "quickstart")
            (mlflow_run,) = mlflow_runs_of(target.store, record.run_id)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert mlflow_run.info.run_id == record.mlflow_run_id
    assert mlflow_run.info.status == "KILLED"
    assert mlflow_run.data.tags["esper.events"] == str(record.event_count)


def test_sync_replaces_an_mlflow_run_left_running_that_the_registry_never_linked(
        tmp_path, mlflow_uri):
    db = tmp_path / "runs.db"
    record = run_without_mlflow(db)
    with Registry.open(db) as registry:
        target = MlflowTarget.open(mlflow_uri, record.experiment)
        with target.store.reporting("leave a run RUNNING"):  # created, then the store failed
            stale = create_mlflow_run(target.store, target.experiment_id, record, db)
        synced = sync_run(registry, record.run_id)
        again = sync_run(registry, record.run_id)
        (kept,) = mlflow_runs_of(target.store, record.run_id)
        linked = registry.run(record.run_id).mlflow_run_id
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(stale).info.lifecycle_stage == "deleted"
    assert synced.pushed and not again.pushed
    assert kept.info.run_id == synced.mlflow_run_id == again.mlflow_run_id == linked
    assert kept.info.status == "FINISHED"
    assert kept.data.tags["esper.events"] == str(record.event_count)
