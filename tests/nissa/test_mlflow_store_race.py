"""Several processes use a fresh MLflow store at once: one creates it under its lock, the
others wait, and every one of them records; a store that cannot be created or migrated is
reported as unavailable, never as a traceback."""

from __future__ import annotations

import fcntl
import sqlite3
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from esper.nissa import mlflow_store
from esper.nissa.mlflow_store import URI_ENV_VAR, MlflowStore, MlflowUnavailable, locate_store
from esper.registry import Registry, RunStatus

from .esper_process import QUICKSTART, SMALL, start_esper

OPENER = Path(__file__).with_name("store_opener_script.py")
PROCESSES = 4


def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path: Path):
    uri, go = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "go"
    children = [subprocess.Popen([sys.executable, str(OPENER), uri, "race", str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(PROCESSES)]
    go.touch()  # the children wait for it, their imports done: they open the store together
    outputs = [child.communicate(timeout=600) for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, outputs
    (experiment_id,) = {stdout.strip() for stdout, _ in outputs}
    client = MlflowClient(tracking_uri=uri)  # the store works afterwards
    assert client.get_experiment_by_name("race").experiment_id == experiment_id
    created = client.create_run(experiment_id, run_name="after the race")
    client.log_metric(created.info.run_id, "x", 1.0)
    assert client.get_run(created.info.run_id).data.metrics == {"x": 1.0}


def test_concurrent_esper_runs_on_a_fresh_store_all_land_in_mlflow(tmp_path: Path,
                                                                   monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(URI_ENV_VAR, uri)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    db = tmp_path / "runs.db"
    Registry.open(db).close()  # the registry exists: only the MLflow store is fresh
    children = [start_esper("run", QUICKSTART, *SMALL, "--registry", str(db), "--name", f"r{i}",
                            "-q") for i in range(PROCESSES - 1)]
    outputs = [child.communicate(timeout=600) for child in children]
    assert [child.returncode for child in children] == [0] * len(children), outputs
    assert not any("MLflow" in stderr for _, stderr in outputs), outputs
    with Registry.open(db) as registry:
        runs = registry.runs()
    assert len(runs) == len(children)
    client = MlflowClient(tracking_uri=uri)
    for record in runs:
        assert record.status is RunStatus.FINISHED
        mlflow_run = client.get_run(record.mlflow_run_id)
        assert mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.tags["esper.run_id"] == record.run_id
        assert mlflow_run.data.tags["esper.events"] == str(record.event_count)


def test_a_store_whose_lock_is_held_too_long_is_unavailable(tmp_path: Path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setattr(mlflow_store, "LOCK_TIMEOUT", 0.3)
    lock_path = locate_store(uri).lock_path
    with open(lock_path, "a") as held:  # another process creating the store, stuck
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(MlflowUnavailable) as raised:
            MlflowStore.open(uri)
    assert raised.value.message == (
        f"MLflow tracking store {uri}: another process has held its lock {lock_path} for over "
        "0.3 s while creating or opening it; try again once that process has finished")
    assert not (tmp_path / "mlflow.db").exists()  # nothing was created while it waited
    MlflowStore.open(uri)  # released: the store opens


def test_a_store_that_cannot_be_migrated_is_unavailable_not_a_traceback(tmp_path: Path):
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as db:  # a schema revision this MLflow does not know
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('deadbeef')")
    db.close()
    with pytest.raises(MlflowUnavailable, match=(
            f"MLflow tracking store sqlite:///{path}: cannot open it \\(CommandError: Can't "
            "locate revision identified by 'deadbeef'\\)")):
        MlflowStore.open(f"sqlite:///{path}")


def test_a_process_killed_while_creating_the_store_leaves_no_half_made_store(tmp_path: Path):
    uri, go = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "go"
    go.touch()
    child = subprocess.Popen([sys.executable, str(OPENER), uri, "killed", str(go)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("mlflow.db.creating-*")) and child.poll() is None:
        assert time.monotonic() < deadline, "the child never started to create the store"
        time.sleep(0.01)
    time.sleep(0.5)  # into MLflow's migrations
    assert child.poll() is None, "the child ended before it was killed: nothing was provoked"
    child.kill()
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not (tmp_path / "mlflow.db").exists()  # nothing half-made where the store goes
    store = MlflowStore.open(uri)  # the next process creates it from scratch
    assert store.client.get_experiment_by_name("Default") is not None
    assert [p.name for p in tmp_path.iterdir() if "creating" in p.name] == []
