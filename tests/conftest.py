"""Suite-wide fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

# pytest-xdist runs one worker per core: one torch thread each (and in the `esper` processes
# tests start, which inherit the variable) instead of every worker spinning threads on all cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True, scope="session")
def _mlflow_store_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs recorded by any test go to an MLflow store in a temporary directory (one per
    worker), never to ./mlflow.db; tests of the MLflow side set a store of their own."""
    store = tmp_path_factory.mktemp("mlflow-session") / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        yield
