"""``esper ui``: the MLflow UI (``mlflow server``) on the tracking store esper records to.

The server is a child process in the same process group, so Ctrl-C in a terminal reaches both;
SIGTERM to esper stops the child too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from esper.nissa.mlflow_store import StoreLocation, TrackingError, locate_store

STOP_TIMEOUT = 15.0  # seconds the server gets to stop before it is killed


@dataclass(frozen=True)
class UiServer:
    """A running MLflow UI."""

    url: str
    location: StoreLocation
    process: subprocess.Popen[bytes]


def start_ui(uri: str | None = None, *, host: str = "127.0.0.1", port: int = 5000) -> UiServer:
    """Start ``mlflow server`` on the store ``uri`` names (see ``locate_store``); returns at once.

    One worker, and no job runner (MLflow's GenAI jobs): browsing runs needs neither.

    Raises:
        TrackingError: ``uri`` is a tracking server already (open it in a browser instead).
    """
    location = locate_store(uri)
    if location.is_server or location.artifact_root is None:
        raise TrackingError(f"{location.uri} is a tracking server with its own UI: open it in a "
                            "browser")
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", location.uri,
        "--default-artifact-root", Path(location.artifact_root).as_uri(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]
    environment = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    process = subprocess.Popen(command, env=environment)
    return UiServer(f"http://{host}:{port}", location, process)


def serve_until_stopped(server: UiServer) -> int:
    """Wait while the server runs; Ctrl-C or SIGTERM stops it. Returns 0 when stopped so, else
    the server's own exit code (e.g. the port is taken)."""
    main = threading.current_thread() is threading.main_thread()  # handlers live there only
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]
        _stop(server.process)


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
