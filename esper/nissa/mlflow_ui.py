"""``esper ui``: the MLflow UI (``mlflow server``) on the tracking store esper records to.

The server is a child process in the same process group, so Ctrl-C in a terminal reaches both;
SIGTERM to esper stops the child too.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from esper.nissa.mlflow_store import MlflowStore, StoreLocation, TrackingError, locate_store

STOP_TIMEOUT = 15.0  # seconds the server gets to stop before it is killed
READY_TIMEOUT = 300.0  # seconds the server gets to answer its health check (a loaded machine)


class PortUnavailable(TrackingError):
    """The UI cannot listen on the host and port asked for (another program has the port)."""


@dataclass(frozen=True)
class UiServer:
    """A running MLflow UI."""

    url: str
    location: StoreLocation
    process: subprocess.Popen[bytes]


def start_ui(uri: str | None = None, *, host: str = "127.0.0.1", port: int = 5000) -> UiServer:
    """Start ``mlflow server`` on the store ``uri`` names (see ``locate_store``); returns at once.

    One worker, and no job runner (MLflow's GenAI jobs): browsing runs needs neither. A new
    store is created here, under its lock, not by the server, which would race the runs that
    create it at the same time.

    Raises:
        TrackingError: ``uri`` is a tracking server already (open it in a browser instead).
        MlflowUnavailable: the store cannot be opened or created.
        PortUnavailable: ``port`` is taken on ``host`` (the server would fail to bind, and the
            URL would lead to the other program), or ``host`` is not an address of this machine.
    """
    location = locate_store(uri)
    if location.is_server or location.artifact_root is None:
        raise TrackingError(f"{location.uri} is a tracking server with its own UI: open it in a "
                            "browser")
    check_port(host, port)
    MlflowStore.open(location.uri)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", location.uri,
        "--default-artifact-root", Path(location.artifact_root).as_uri(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    # its log on stderr (file descriptor 2): stdout carries the URL alone, for scripts
    process = subprocess.Popen(command, env=environment, stdout=2)
    return UiServer(f"http://{host}:{port}", location, process)


def check_port(host: str, port: int) -> None:
    """Raise ``PortUnavailable`` unless a server could listen on ``host``:``port`` now.

    Binds and releases the address the way the server will bind it (``SO_REUSEADDR``, as
    uvicorn does: a port whose last connections are closing is free, one a program listens on
    is not). Another program may still take the port before the server binds it.
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailable(f"port {port} on {host} is already in use by another program: "
                                  "choose a free one with --port") from exc
        reason = exc.strerror or str(exc)
        raise PortUnavailable(f"cannot listen on {host}:{port} ({reason}): choose another "
                              "--host") from exc


def serve_until_stopped(server: UiServer, on_ready: Callable[[], None] = lambda: None) -> int:
    """Wait until the server answers, call `on_ready` (announce its URL), then wait while it
    runs; Ctrl-C or SIGTERM stops it, also while it starts. Returns 0 when stopped so.

    Raises:
        TrackingError: the server stopped by itself, or did not answer within READY_TIMEOUT.
            ``mlflow server`` exits 0 even when it cannot bind its port (another program took
            it after ``check_port``), so any exit it was not asked for is an error.
    """
    main = threading.current_thread() is threading.main_thread()  # handlers live there only
    # SIGINT too: a process started in the background by a non-interactive shell inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt for it
    stopping = (signal.SIGTERM, signal.SIGINT) if main else ()
    previous = {signum: signal.signal(signum, _interrupt) for signum in stopping}
    try:
        if _wait_until_answering(server):
            on_ready()
        code = server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(server.process)
    raise TrackingError(f"the MLflow UI server for {server.url} stopped by itself (exit code "
                        f"{code}); its log above says why")


def _wait_until_answering(server: UiServer) -> bool:
    """Poll the server's health endpoint until it answers (True) or the server exits (False).

    Raises:
        TrackingError: no answer within READY_TIMEOUT seconds (the server is stopped).
    """
    deadline = time.monotonic() + READY_TIMEOUT
    while server.process.poll() is None:
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1.0) as response:
                if response.status == 200:
                    return True
        except OSError:  # not listening yet (URLError, connection refused, timeout)
            pass
        if time.monotonic() > deadline:
            raise TrackingError(f"the MLflow UI server for {server.url} did not answer within "
                                f"{READY_TIMEOUT:.0f} s; its log above may say why")
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
