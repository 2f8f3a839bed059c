"""An MLflow tracking server that cannot be reached is reported within seconds, in a whole
sentence: MLflow's own client retries a refused connection for about four minutes."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.nissa.mlflow_store import PROBE_TIMEOUT, MlflowStore, MlflowUnavailable
from esper.registry import Registry, RunStatus

from .esper_process import QUICKSTART, SMALL

PROMPTLY = 60.0  # seconds: loose (the probe takes PROBE_TIMEOUT at most; MLflow alone took 247)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of 127.0.0.1 where connections are refused: bound (so nothing else takes it) but
    not listening."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield reserved.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port of 127.0.0.1 that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


@pytest.mark.parametrize(("port", "reason"), [
    ("closed_port", "Connection refused"),  # at once
    ("silent_port", f"no answer within {PROBE_TIMEOUT:g} s"),  # after the probe's timeout
])
def test_an_unreachable_http_store_is_reported_promptly_with_its_reason(port, reason, request):
    uri = f"http://127.0.0.1:{request.getfixturevalue(port)}"
    started = time.monotonic()
    with pytest.raises(MlflowUnavailable) as raised:
        MlflowStore.open(uri)
    assert time.monotonic() - started < PROMPTLY
    assert raised.value.message == f"MLflow tracking store {uri} cannot be reached ({reason})"


def test_esper_run_with_an_unreachable_server_completes_and_says_how_to_sync(
        tmp_path, closed_port, caplog):
    db, uri = tmp_path / "elsewhere.db", f"http://127.0.0.1:{closed_port}"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, [
            "run", QUICKSTART, *SMALL, "--set", f"tracking.uri={uri}", "--registry", str(db),
            "--name", "offline", "-q"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 2 * PROMPTLY  # training included
    with Registry.open(db) as registry:
        offline = registry.resolve("offline")
    assert offline.status is RunStatus.FINISHED and offline.mlflow_run_id is None
    warnings = [r.getMessage() for r in caplog.records if uri in r.getMessage()]
    # Reported once, whole, naming the registry file the run is in and how to push it.
    assert warnings == [
        f"telemetry sink 'mlflow' failed: MlflowUnavailable: MLflow tracking store {uri} cannot "
        f"be reached (Connection refused); the run is still recorded in {db}; push it later "
        f"with: esper sync {offline.run_id} --registry {db}"]

    started = time.monotonic()
    synced = CliRunner().invoke(cli, ["sync", "offline", "--registry", str(db)])
    assert time.monotonic() - started < PROMPTLY
    assert synced.exit_code == 1
    assert synced.stderr == f"Error: MLflow tracking store {uri} cannot be reached " \
                            "(Connection refused)\n"
