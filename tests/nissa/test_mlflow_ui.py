"""`esper ui` serves the MLflow UI on esper's store: its REST API lists the runs of `esper run`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.nissa.mlflow_store import TrackingError, locate_store
from esper.nissa.mlflow_ui import UiServer, serve_until_stopped
from esper.registry import Registry

from .esper_process import QUICKSTART, SMALL, start_esper

READY_TIMEOUT = 120.0  # seconds for `mlflow server` to answer (it starts a uvicorn worker)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for_api(url: str, child, log) -> dict:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert child.poll() is None, f"esper ui exited {child.returncode}: {log.read_text()}"
        try:
            return post(f"{url}/api/2.0/mlflow/experiments/search", {"max_results": 100})
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise AssertionError(f"the MLflow UI at {url} did not answer within {READY_TIMEOUT} s")


def test_ctrl_c_stops_esper_ui_started_with_sigint_ignored(tmp_path, mlflow_uri):
    """A process a non-interactive shell starts in the background inherits SIGINT ignored, and
    Python then raises no KeyboardInterrupt: esper ui stops on SIGINT all the same."""
    port, log = free_port(), tmp_path / "ui.log"
    with log.open("w") as server_output:
        child = start_esper("ui", "--port", str(port), "--uri", mlflow_uri, stderr=server_output,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_for_api(child.stdout.readline().strip(), child, log)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with socket.socket() as probe:  # the server stopped with it
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def _servers_on(port: int) -> list[str]:
    """The command lines of live `mlflow server` processes started for `port` (from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mlflow" in args and b"server" in args and str(port).encode() in args:
            found.append(" ".join(a.decode(errors="replace") for a in args))
    return found


def test_the_url_is_printed_once_the_server_answers(tmp_path, mlflow_uri):
    port, log = free_port(), tmp_path / "ui.log"
    with log.open("w") as server_output:
        child = start_esper("ui", "--port", str(port), "--uri", mlflow_uri, stderr=server_output)
    try:
        url = child.stdout.readline().strip()
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:  # no retry
            assert response.status == 200
    finally:
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=60) == 0


def test_ctrl_c_while_the_server_starts_leaves_no_server(tmp_path, mlflow_uri):
    port, log = free_port(), tmp_path / "ui.log"
    with log.open("w") as server_output:
        child = start_esper("ui", "--port", str(port), "--uri", mlflow_uri, stderr=server_output)
    try:
        deadline = time.monotonic() + 300
        while "starting the MLflow UI" not in log.read_text() and child.poll() is None:
            assert time.monotonic() < deadline, "esper ui never said it was starting"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)  # before it answers: no URL was printed
        assert child.wait(timeout=60) == 0
        assert child.stdout.read() == ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert _servers_on(port) == []


def test_esper_ui_lists_the_runs_of_esper_run(tmp_path, mlflow_uri):
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["run", QUICKSTART, *SMALL, "--registry", str(db), "-q"])
    assert result.exit_code == 0, result.output
    with Registry.open(db) as registry:
        (record,) = registry.runs()

    port, log = free_port(), tmp_path / "ui.log"
    with log.open("w") as server_output:  # a file: the server's logs never fill a pipe
        child = start_esper("ui", "--port", str(port), "--uri", mlflow_uri, stderr=server_output)
    try:
        url = child.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        experiments = wait_for_api(url, child, log)["experiments"]
        (quickstart,) = [e for e in experiments if e["name"] == "quickstart"]
        runs = post(f"{url}/api/2.0/mlflow/runs/search",
                    {"experiment_ids": [quickstart["experiment_id"]]})["runs"]
        listed = [(r["info"]["run_id"], r["info"]["run_name"], r["info"]["status"],
                   {t["key"]: t["value"] for t in r["data"]["tags"]}["esper.run_id"])
                  for r in runs]
        assert listed == [(record.mlflow_run_id, record.name, "FINISHED", record.run_id)]
        child.send_signal(signal.SIGINT)  # Ctrl-C stops esper ui and the server with it
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    with socket.socket() as probe:  # nothing listens on the port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_esper_ui_refuses_a_tracking_server_uri():
    result = CliRunner().invoke(cli, ["ui", "--uri", "http://mlflow.example.com"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: http://mlflow.example.com is a tracking server")


def test_esper_ui_on_a_port_in_use_is_an_error_without_a_url(tmp_path, mlflow_uri):
    with socket.socket() as other:  # another program's server on the port
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        port = other.getsockname()[1]
        result = CliRunner().invoke(cli, ["ui", "--port", str(port), "--uri", mlflow_uri])
    assert result.exit_code == 1
    assert result.stdout == ""  # no URL: it would lead to the other program
    assert result.stderr == (f"Error: port {port} on 127.0.0.1 is already in use by another "
                             "program: choose a free one with --port\n")


def test_a_ui_server_that_stops_by_itself_is_an_error(tmp_path):
    # `mlflow server` exits 0 when another program took its port first: a stand-in that exits 0.
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    server = UiServer("http://127.0.0.1:1", locate_store(f"sqlite:///{tmp_path}/mlflow.db"),
                      process)
    with pytest.raises(TrackingError, match=r"stopped by itself \(exit code 0\)"):
        serve_until_stopped(server)
