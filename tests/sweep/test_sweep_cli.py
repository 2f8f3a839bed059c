"""`esper sweep` from the command line: bad input fails before anything runs, Ctrl-C stops a
real sweep with its trials and itself KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from esper.cli import cli
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, RegistryError, RunStatus

SWEEP = str(Path(__file__).parents[2] / "experiments" / "sweep_quickstart.yaml")
# Hundreds of epochs per trial: long enough to be interrupted.
LONG = ("--set", "training.episode_length=1000", "--set", "task.max_train=200",
        "--set", "task.max_val=100")


def test_a_bad_grid_key_is_a_clear_error_and_nothing_runs(tmp_path):
    db = tmp_path / "runs.db"
    result = CliRunner().invoke(cli, ["sweep", SWEEP, "--grid", "host.lrr=0.1,0.2",
                                      "--registry", str(db), "--no-mlflow"])
    assert result.exit_code == 2
    assert ("--grid host.lrr=0.1,0.2: sweep.parameters.host.lrr: unknown key 'lrr' (did you "
            "mean 'lr'?)") in result.output
    assert "Traceback" not in result.output and not db.exists()


def test_ctrl_c_ends_the_trials_in_flight_and_the_sweep_killed(tmp_path):
    db = tmp_path / "runs.db"
    child = subprocess.Popen([sys.executable, "-c", "from esper.cli import main; main()",
                              "sweep", SWEEP, *LONG, "--registry", str(db), "--no-mlflow",
                              "--name", "stopped"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_events(db, child, events=4)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr, stderr
    with Registry.open(db) as registry:
        sweep = registry.resolve("stopped")
        trials = registry.runs(tag=f"esper.sweep={sweep.run_id}")
        last_events = [list(registry.events(t.run_id))[-1] for t in trials]
    assert sweep.status is RunStatus.KILLED and sweep.exit_reason == "SIGINT"
    assert 1 <= len(trials) <= 2  # the two in flight; none of the other four started
    assert {t.status for t in trials} == {RunStatus.KILLED}
    for trial, last in zip(trials, last_events):
        assert last.event_type is TelemetryEventType.RUN_FINISHED
        assert last.data.status == "KILLED" and last.seq == trial.event_count - 1


def _wait_for_events(db: Path, child: subprocess.Popen[str], *, events: int,
                     timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read()
        try:
            with Registry.open(db, create=False) as registry:
                if any(r.event_count >= events for r in registry.runs()):
                    return
        except RegistryError:  # not created yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"no trial recorded {events} events within {timeout} s")


def test_ctrl_c_to_the_whole_group_while_workers_start_prints_no_traceback(tmp_path):
    """A terminal's Ctrl-C goes to its whole process group. Sent as the first worker is spawned
    (still importing esper, still in that group), it printed a KeyboardInterrupt traceback from
    the worker; workers now start with SIGINT ignored and the driver stops the sweep."""
    db = tmp_path / "runs.db"
    child = subprocess.Popen([sys.executable, "-c", "from esper.cli import main; main()",
                              "sweep", SWEEP, *LONG, "--registry", str(db), "--no-mlflow",
                              "--name", "early"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = child.stderr.readline()  # "started trial t0: ...", printed once it is spawned
        assert first.startswith("started trial"), first
        os.killpg(child.pid, signal.SIGINT)  # the driver and the worker that is importing
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr, stderr
