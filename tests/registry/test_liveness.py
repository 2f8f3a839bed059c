"""A RUNNING row shows as CRASHED only when its own process is gone (issue 20, item 5): real
processes paused past the heartbeat threshold, killed, left as zombies, or whose pid another
process now holds; rows of registries older than the process start time; taking a run over."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from esper.registry import Registry, RegistryError, RunStatus
from esper.registry import process, schema
from esper.registry.errors import RunInUse
from tests.nissa.esper_process import QUICKSTART, SMALL, start_esper
from tests.polling import wait_until

from .builders import new_run

# A child that records a RUNNING run, prints its id, and lives until its stdin closes.
_OWNER = ("import sys; from esper.registry import Registry, NewRun; "
          "r = Registry.open(sys.argv[1]); "
          "print(r.create_run(NewRun(experiment='owned', config={}, seed=0)).run_id, flush=True); "
          "sys.stdin.read()")


@pytest.fixture
def owner(db_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A live process owning a RUNNING run of ``db_path``, and the run's id."""
    child = subprocess.Popen([sys.executable, "-c", _OWNER, str(db_path)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield child, child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait()


def _set(db_path: Path, run_id: str, **columns: object) -> None:
    """Change a run's row behind the registry's back (what another process or host left)."""
    with sqlite3.connect(db_path) as db:
        db.execute(f"UPDATE runs SET {', '.join(f'{c} = ?' for c in columns)} WHERE run_id = ?",
                   [*columns.values(), run_id])


def test_a_real_run_paused_past_the_heartbeat_threshold_is_running_and_then_finishes(tmp_path):
    db = tmp_path / "runs.db"
    child = start_esper("run", QUICKSTART, *SMALL, "--registry", str(db), "--no-mlflow")
    try:
        assert wait_until(lambda: _runs(db), timeout=180), child.stderr.read()
        child.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        with Registry.open(db, create=False, stale_after=0.5) as registry:
            (paused,) = registry.runs()
        child.send_signal(signal.SIGCONT)
        _, stderr = child.communicate(timeout=180)
    finally:
        child.kill()
    assert time.time() - paused.heartbeat_at > 1.0  # no heartbeat while stopped
    assert paused.status is RunStatus.RUNNING
    assert child.returncode == 0, stderr
    with Registry.open(db, create=False) as registry:
        assert registry.run(paused.run_id).status is RunStatus.FINISHED


def test_a_run_whose_process_is_stopped_stays_running_however_old_its_heartbeat(db_path, owner):
    child, run_id = owner
    child.send_signal(signal.SIGSTOP)
    _set(db_path, run_id, heartbeat_at=time.time() - 86_400)  # stopped for a day
    with Registry.open(db_path, stale_after=30) as registry:
        assert registry.run(run_id).status is RunStatus.RUNNING
        assert [r.run_id for r in registry.runs(status=RunStatus.RUNNING)] == [run_id]
    child.send_signal(signal.SIGCONT)


def test_a_killed_process_left_a_zombie_is_crashed_at_once(db_path, owner):
    child, run_id = owner
    child.send_signal(signal.SIGKILL)  # not reaped: its pid still answers kill(pid, 0)
    assert wait_until(lambda: _state(child.pid) == "Z")
    with Registry.open(db_path) as registry:
        assert registry.run(run_id).status is RunStatus.CRASHED


def test_a_pid_now_held_by_another_process_is_crashed(db_path, owner):
    child, run_id = owner
    with Registry.open(db_path) as registry:
        _set(db_path, run_id, pid_start=process.start_time(child.pid) - 1)  # not this process
        assert registry.run(run_id).status is RunStatus.CRASHED
        child.kill()
        child.wait()
        _set(db_path, run_id, pid=os.getpid(), heartbeat_at=time.time())  # pid reused by us
        assert registry.run(run_id).status is RunStatus.CRASHED


def test_another_pid_space_on_this_host_falls_back_to_the_heartbeat(db_path, owner):
    _, run_id = owner  # another container with this host name, or this host before a reboot
    _set(db_path, run_id, pid_space="another-boot/pid:[1]")
    with Registry.open(db_path, stale_after=0.5) as registry:
        assert registry.run(run_id).status is RunStatus.RUNNING
        _set(db_path, run_id, heartbeat_at=time.time() - 1)
        assert registry.run(run_id).status is RunStatus.CRASHED


def test_a_registry_from_before_the_start_time_opens_and_judges_its_runs_as_before(db_path):
    old = Database(db_path)
    steps = Migrations(schema.MIGRATION_SET)
    for step in (schema.m001_initial, schema.m002_artifacts_and_field_wiring):
        steps()(step)
    steps.apply(old)
    old.close()
    with Registry.open(db_path) as registry:  # upgraded: the columns are added, NULL
        run = registry.create_run(new_run())
        _set(db_path, run.run_id, pid_space=None, pid_start=None)
        assert registry.run(run.run_id).status is RunStatus.RUNNING  # pid alive, beat fresh
        _set(db_path, run.run_id, heartbeat_at=time.time() - 3600)
        assert registry.run(run.run_id).status is RunStatus.CRASHED
        _set(db_path, run.run_id, heartbeat_at=time.time(), pid=_dead_pid())
        assert registry.run(run.run_id).status is RunStatus.CRASHED


def test_a_run_is_taken_over_once_and_never_from_a_live_owner(db_path, owner):
    child, run_id = owner
    with Registry.open(db_path) as registry:
        with pytest.raises(RunInUse, match=rf"still running \(pid {child.pid} on "):
            registry.reopen_run(run_id)
        child.kill()
        child.wait()
        assert registry.run(run_id).status is RunStatus.CRASHED
        taken = registry.reopen_run(run_id)
        assert (taken.status, taken.pid, taken.ended_at) == (RunStatus.RUNNING, os.getpid(), None)
        with pytest.raises(RunInUse) as error:  # a second taker: this process owns it now
            registry.reopen_run(run_id)
    assert error.value.exit_code == 2


def _runs(db: Path) -> list[object]:
    try:
        with Registry.open(db, create=False) as registry:
            return registry.runs()
    except RegistryError:  # not created yet
        return []


def _state(pid: int) -> str:
    """Field 3 of /proc/PID/stat: R, S, T (stopped), Z (zombie), ..."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           check=True, capture_output=True, text=True)
    return int(child.stdout)
