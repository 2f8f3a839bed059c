"""`esper run` in a child process, and waiting until it records."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
import sys
import time
from pathlib import Path
from typing import IO

from esper.registry import Registry, RegistryError, RunRecord

QUICKSTART = str(Path(__file__).parents[2] / "experiments" / "quickstart.yaml")
# No probes: their fields cannot all be observed in a few epochs (the run would fail wiring).
SMALL = ("--set", "training.batches=1", "--set", "training.episode_length=3",
         "--set", "task.max_train=200", "--set", "task.max_val=100", "--set", "telemetry.probes=[]")
# Long enough to be interrupted: hundreds of epochs of a small host on 200 images.
LONG = ("--set", "training.batches=1", "--set", "training.episode_length=1000",
        "--set", "task.max_train=200", "--set", "task.max_val=100", "--set", "telemetry.probes=[]")


def start_esper(*args: str, stderr: IO[str] | int = subprocess.PIPE,
                preexec_fn: Callable[[], object] | None = None) -> subprocess.Popen[str]:
    """`esper ARGS...` in a child process (environment inherited), stdout piped;
    `preexec_fn` runs in the child before esper starts."""
    return subprocess.Popen([sys.executable, "-c", "from esper.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=preexec_fn)


def wait_until_mirrored(registry_path: Path, child: subprocess.Popen[str], *, epochs: int,
                        timeout: float = 180.0) -> RunRecord:
    """Wait until the child's run has its MLflow run and at least ``epochs`` events recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f"esper exited {child.returncode}: {child.stderr.read()}")
        try:
            with Registry.open(registry_path, create=False) as registry:
                runs = registry.runs()
        except RegistryError:  # not created yet
            runs = []
        if runs and runs[0].mlflow_run_id is not None and runs[0].event_count >= epochs:
            return runs[0]
        time.sleep(0.2)
    child.kill()
    raise AssertionError(f"no mirrored run with {epochs} events within {timeout} s")


def run_without_mlflow(db: Path) -> RunRecord:
    """A small quickstart run through the CLI with --no-mlflow, recorded into `db`; its row."""
    from click.testing import CliRunner

    from esper.cli import cli

    result = CliRunner().invoke(cli, ["run", QUICKSTART, *SMALL, "--registry", str(db),
                                      "--no-mlflow", "--quiet"])
    assert result.exit_code == 0, result.output
    with Registry.open(db) as registry:
        (record,) = registry.runs()
    return record
