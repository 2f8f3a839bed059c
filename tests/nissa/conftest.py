"""Fixtures of the MLflow tests: a fresh, real MLflow SQLite store per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from esper.nissa.mlflow_store import URI_ENV_VAR, MlflowStore


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow store with its schema, made once per worker: MLflow's migrations take
    seconds, a copy of the file milliseconds."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowStore.open(f"sqlite:///{path}")
    return path


def new_store(directory: Path, template: Path) -> str:
    """A copy of the template store in ``directory``; returns its URI."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


@pytest.fixture
def mlflow_uri(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store in tmp_path/mlflow, set as MLFLOW_TRACKING_URI for the test (and for the
    processes it starts)."""
    uri = new_store(tmp_path / "mlflow", mlflow_template)
    monkeypatch.setenv(URI_ENV_VAR, uri)
    return uri
