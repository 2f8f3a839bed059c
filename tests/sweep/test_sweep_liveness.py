"""A sweep's driver owns it (issue 20): `--resume` is refused while the driver lives, paused or
not (item 5), and its workers and resource tracker die with it, SIGKILL included (item 6).
Real `esper sweep` processes of two tiny trials."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

from click.testing import CliRunner

from esper.cli import cli
from esper.registry import Registry, RegistryError, RunRecord, RunStatus
from esper.registry import process
from esper.registry.records import KIND_TAG as TAG_KIND
from esper.sweep.ranking import TAG_SWEEP, TAG_TRIAL
from tests.nissa.esper_process import start_esper
from tests.polling import wait_until

SWEEP = str(Path(__file__).parents[2] / "experiments" / "sweep_quickstart.yaml")
TWO_TINY_TRIALS = ("--grid", "host.lr=0.01,0.1", "--grid", "host.base_channels=4",
                   "--set", "training.batches=1", "--set", "training.episode_length=2",
                   "--set", "task.max_train=200", "--set", "task.max_val=100", "--no-mlflow")


def test_resume_is_refused_while_the_driver_is_paused_and_every_trial_runs_once(tmp_path):
    db = tmp_path / "runs.db"
    driver = start_esper("sweep", SWEEP, *TWO_TINY_TRIALS, "--max-parallel", "1",
                         "--registry", str(db), "--name", "paused")
    try:
        assert wait_until(lambda: _sweep(db), timeout=180), driver.stderr.read()
        _pause_for_an_hour(driver, db)
        resumed = CliRunner().invoke(cli, ["sweep", "--resume", "paused", "--registry", str(db),
                                           "--no-mlflow"])
        driver.send_signal(signal.SIGCONT)
        _, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    sweep = _sweep(db)
    assert resumed.exit_code == 2, resumed.output
    assert (f"Error: sweep paused ({sweep.run_id}) is still running (pid {driver.pid} on "
            f"{socket.gethostname()}); resume it once it has ended") in resumed.output
    assert "Traceback" not in resumed.output
    assert driver.returncode == 0, stderr
    with Registry.open(db, create=False) as registry:
        trials = registry.runs(tag=f"{TAG_SWEEP}={sweep.run_id}")
    assert sorted(t.tags[TAG_TRIAL] for t in trials) == ["0", "1"]  # each once
    assert {t.status for t in trials} == {RunStatus.FINISHED}


def test_the_workers_die_with_a_killed_driver_and_the_sweep_resumes(tmp_path):
    db = tmp_path / "runs.db"
    driver = start_esper("sweep", SWEEP, *TWO_TINY_TRIALS, "--max-parallel", "2",
                         "--registry", str(db), "--name", "killed")
    descendants: dict[int, int] = {}
    try:
        assert wait_until(lambda: _trial_started(db), timeout=180), driver.stderr.read()
        descendants = _descendants(driver.pid)
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in descendants]
        driver.kill()
        driver.wait()
        gone = wait_until(lambda: not any(process.is_alive(p, s) for p, s in
                                          descendants.items()), timeout=30)
    finally:
        driver.kill()
        for pid, started in descendants.items():  # whatever outlived the driver
            if process.is_alive(pid, started):
                os.kill(pid, signal.SIGKILL)
    assert sum(b"spawn_main" in c for c in commands) >= 1  # the workers were there
    assert any(b"resource_tracker" in c for c in commands)  # and the tracker
    assert gone, "the driver's workers or resource tracker outlived it by 30 s"
    assert _sweep(db).status is RunStatus.CRASHED
    resumed = CliRunner().invoke(cli, ["sweep", "--resume", "killed", "--registry", str(db),
                                       "--no-mlflow"])
    assert resumed.exit_code == 0, resumed.output
    with Registry.open(db, create=False) as registry:
        sweep = registry.resolve("killed")
        finished = [t for t in registry.runs(tag=f"{TAG_SWEEP}={sweep.run_id}")
                    if t.status is RunStatus.FINISHED]
    assert sweep.status is RunStatus.FINISHED and sweep.pid == os.getpid()
    assert sorted(t.tags[TAG_TRIAL] for t in finished) == ["0", "1"]


def _sweep(db: Path) -> RunRecord | None:
    """The sweep's run in `db`, None until the driver has created it."""
    try:
        with Registry.open(db, create=False) as registry:
            sweeps = registry.runs(tag=f"{TAG_KIND}=sweep")
    except RegistryError:  # not created yet
        return None
    return sweeps[0] if sweeps else None


def _trial_started(db: Path) -> bool:
    """A trial has recorded an event: its worker is training."""
    sweep = _sweep(db)
    if sweep is None:
        return False
    with Registry.open(db, create=False) as registry:
        return any(t.event_count for t in registry.runs(tag=f"{TAG_SWEEP}={sweep.run_id}"))


def _pause_for_an_hour(driver: subprocess.Popen[str], db: Path) -> None:
    """SIGSTOP the driver and age its rows' heartbeats by an hour, as a long pause would. It
    may have stopped holding the write lock: then let it run a moment and stop it again."""
    while True:
        driver.send_signal(signal.SIGSTOP)
        try:
            with sqlite3.connect(db, timeout=0.5) as conn:
                conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - 3600 "
                             "WHERE status = 'RUNNING'")
            return
        except sqlite3.OperationalError:  # database is locked
            driver.send_signal(signal.SIGCONT)
            time.sleep(0.05)


def _descendants(pid: int) -> dict[int, int]:
    """The processes below `pid` (pid -> start time), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2:].split()[1])
    found: dict[int, int] = {}
    todo = [pid]
    while todo:
        above = todo.pop()
        for child in [c for c, parent in parents.items() if parent == above]:
            started = process.start_time(child)
            if started is not None:
                found[child] = started
                todo.append(child)
    return found
