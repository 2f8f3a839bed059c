"""Suite-wide fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _mlflow_store_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs recorded by any test go to an MLflow store in a temporary directory (one per
    worker), never to ./mlflow.db; tests of the MLflow side set a store of their own."""
    store = tmp_path_factory.mktemp("mlflow-session") / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        yield
