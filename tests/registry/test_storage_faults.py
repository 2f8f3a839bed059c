"""Storage faults of runs.db (issue 20, items 3 and 8), on real files and real processes: a
read-only file system or directory, no permission, a full disk (at creation and mid-run), a
missing directory, and a registry deleted or replaced while a run writes to it.

A read-only file system and a small full disk need mounts: as root, each case runs in a
private mount namespace (``unshare``); without one it is skipped. A missing permission is a
chmod, which root ignores: root drops CAP_DAC_OVERRIDE for the child (``setpriv``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from esper.registry import Registry, RegistryError, RunStatus
from esper.registry.errors import RegistryGone
from tests.nissa.esper_process import QUICKSTART, SMALL, start_esper
from tests.polling import wait_until

from .builders import make_events, new_run

ESPER = f"{shlex.quote(sys.executable)} -c 'from esper.cli import main; main()'"
DROP_DAC = ("setpriv --inh-caps=-dac_override,-dac_read_search "
            "--bounding-set=-dac_override,-dac_read_search")
UNSHARE = ["unshare", "--mount", "--propagation", "private"]


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*UNSHARE, "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and a mount namespace "
                                 "(unshare) for a read-only or small file system")


def _sh(script: str, *, as_user: bool = False) -> subprocess.CompletedProcess[str]:
    """``script`` in bash; ``as_user``: without root's power to ignore file permissions."""
    if as_user and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores file permissions, and setpriv is missing to drop that")
        script = f"{DROP_DAC} bash -c {shlex.quote(script)}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)


def _in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UNSHARE, "bash", "-c", script], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def filled_dir(tmp_path: Path) -> Path:
    """A directory holding a registry with one finished run (with events)."""
    directory = tmp_path / "registry"
    directory.mkdir()
    with Registry.open(directory / "runs.db") as registry:
        run = registry.create_run(new_run("exp", name="kept"))
        registry.write_events(make_events(run.run_id, 50))
        registry.finish_run(run.run_id, RunStatus.FINISHED)
    return directory


def _run_cmd(registry: Path) -> str:
    return (f"{ESPER} run {QUICKSTART} --no-mlflow -q {' '.join(SMALL)} "
            f"--registry {shlex.quote(str(registry))}")


# --- read-only ---------------------------------------------------------------------------------


@needs_mount
def test_a_registry_on_a_read_only_file_system_is_read_and_refuses_to_record(filled_dir):
    d = shlex.quote(str(filled_dir))
    done = _in_namespace(
        f"mount --bind -o ro {d} {d} && {ESPER} runs --registry {d}/runs.db --json"
        f" && {ESPER} show kept --registry {d}/runs.db && {ESPER} events kept --registry "
        f"{d}/runs.db --format jsonl --limit 3 && {_run_cmd(filled_dir / 'runs.db')}")
    assert "Traceback" not in done.stderr
    assert [r["name"] for r in json.loads(done.stdout.split("\n]")[0] + "]")] == ["kept"]
    assert done.stdout.count('"seq"') == 3  # three events of `esper events --format jsonl`
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: registry {filled_dir}/runs.db is on a read-only file system: commands that "
        "only read it (esper runs, show, events, compare, wiring) work, recording a run does "
        "not; pass --registry PATH (or set ESPER_REGISTRY) to use another file")
    assert sorted(p.name for p in filled_dir.iterdir()) == ["runs.db", "runs.db-reserve"]


@needs_mount
def test_a_read_only_copy_whose_wal_holds_changes_is_refused_with_the_reason(filled_dir):
    writer = sqlite3.connect(filled_dir / "runs.db", isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("UPDATE runs SET notes = 'in the wal only'")
    shutil.copytree(filled_dir, filled_dir.parent / "copy")  # as a live registry is copied
    writer.close()
    copy = filled_dir.parent / "copy"
    (copy / "runs.db-shm").unlink()
    d = shlex.quote(str(copy))
    done = _in_namespace(f"mount --bind -o ro {d} {d} && {ESPER} runs --registry {d}/runs.db")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"Error: cannot read registry {copy}/runs.db: runs.db-wal holds changes not yet copied "
        f"into it, and SQLite cannot read them without creating runs.db-shm in the read-only "
        f"directory {copy}; copy both files to a writable directory, or pass --registry PATH "
        "(or set ESPER_REGISTRY) to use another file")


def test_a_registry_without_write_permission_is_read_and_refuses_to_record(filled_dir):
    (filled_dir / "runs.db").chmod(0o444)
    filled_dir.chmod(0o555)
    try:
        d = shlex.quote(str(filled_dir))
        read = _sh(f"{ESPER} runs --registry {d}/runs.db --json", as_user=True)
        write = _sh(_run_cmd(filled_dir / "runs.db"), as_user=True)
    finally:
        filled_dir.chmod(0o755)
    assert read.returncode == 0, read.stderr
    assert [r["name"] for r in json.loads(read.stdout)] == ["kept"]
    assert write.returncode == 1 and "Traceback" not in write.stderr
    assert write.stderr.strip() == (
        f"Error: no permission to write registry {filled_dir}/runs.db; fix its permissions, "
        "or pass --registry PATH (or set ESPER_REGISTRY) to use another file")


def test_a_directory_without_write_permission_is_named(filled_dir):
    filled_dir.chmod(0o555)
    try:
        write = _sh(_run_cmd(filled_dir / "runs.db"), as_user=True)
    finally:
        filled_dir.chmod(0o755)
    assert write.returncode == 1
    assert write.stderr.strip() == (
        f"Error: no permission to write the directory {filled_dir}, where SQLite keeps the "
        "runs.db-wal and runs.db-shm files beside the registry; fix its permissions, or pass "
        "--registry PATH (or set ESPER_REGISTRY) to use another file")


# --- missing directory, full disk --------------------------------------------------------------


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(RegistryError) as error:
        Registry.open(tmp_path / "nowhere" / "runs.db")
    assert error.value.message == (
        f"cannot create registry {tmp_path}/nowhere/runs.db: the directory {tmp_path}/nowhere "
        "does not exist; create it, or pass --registry PATH (or set ESPER_REGISTRY) to use "
        "another file")


@needs_mount
def test_a_registry_that_cannot_be_created_on_a_full_disk_leaves_nothing(tmp_path):
    d = shlex.quote(str(tmp_path))
    done = _in_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {d} && (head -c 200k /dev/zero > {d}/filler; "
        f"{_run_cmd(tmp_path / 'runs.db')}; echo rc=$?; ls -a {d})")
    assert done.stderr.strip() == (
        f"Error: cannot write registry {tmp_path}/runs.db: the disk is full (database or disk "
        "is full); free some space on it, or pass --registry PATH (or set ESPER_REGISTRY) to "
        "use another file")
    assert done.stdout.split() == ["rc=1", ".", "..", "filler"]


@needs_mount
def test_a_disk_that_fills_mid_run_ends_the_run_failed_with_the_reason(tmp_path):
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    args = ["run", QUICKSTART, "--no-mlflow", "-q", *SMALL, "--set",
            "training.episode_length=150", "--registry", str(disk / "runs.db")]
    subprocess.run([*UNSHARE, sys.executable, str(Path(__file__).with_name("disk_full_run.py")),
                    str(disk), str(out), "--", *args], check=True, timeout=400)
    result = json.loads((out / "result.json").read_text())
    stderr = result["stderr"]
    assert result["rc"] == 1 and "Traceback" not in stderr
    full = (f"cannot write registry {disk}/runs.db: the disk is full (database or disk is "
            "full); free some space on it")
    assert f"telemetry sink 'registry' failed: RegistryFull: {full}" in stderr  # when it fills
    with Registry.open(out / "runs.db", create=False) as registry:
        (run,) = registry.runs()
    assert run.status is RunStatus.FAILED  # recorded in the room of the space reserve
    assert f"events not written to registry {disk}/runs.db: RegistryFull: {full}" in \
        run.exit_reason
    assert stderr.strip().splitlines()[-1].startswith(
        f"Error: run {run.run_id} ({run.name}) recorded as FAILED: ")


def test_a_run_that_reaches_the_file_size_limit_says_it_could_not_be_recorded(filled_dir):
    """RLIMIT_FSIZE (ulimit -f): no write can grow the files, the end status included."""
    limit = (filled_dir / "runs.db").stat().st_size // 2  # the WAL reaches it within the run
    done = _sh(f"ulimit -f {limit // 1024}; trap '' XFSZ; {_run_cmd(filled_dir / 'runs.db')}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: run ") and (
        "ended FAILED, but the registry could not record it, so it shows as CRASHED: cannot "
        f"write registry {filled_dir}/runs.db: it reached the file size limit of this process "
        f"(ulimit -f: {limit // 1024 * 1024} bytes)") in last
    with Registry.open(filled_dir / "runs.db", create=False) as registry:
        assert [r.status for r in registry.runs()] == [RunStatus.CRASHED, RunStatus.FINISHED]


# --- deleted or replaced while open ------------------------------------------------------------


def test_a_write_after_the_file_was_deleted_or_replaced_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    with Registry.open(path) as registry:
        run = registry.create_run(new_run())
        path.unlink()
        with pytest.raises(RegistryGone, match=f"registry {path} was deleted while esper had "
                                               "it open, so esper stopped writing to it"):
            registry.heartbeat(run.run_id)
        with Registry.open(path):  # another file at the same path
            pass
        with pytest.raises(RegistryGone, match="was replaced by another file while"):
            registry.heartbeat(run.run_id)


def test_a_registry_deleted_mid_run_is_reported_and_the_run_rescued(tmp_path):
    path = tmp_path / "runs.db"
    long = [arg.replace("episode_length=3", "episode_length=12") for arg in SMALL]
    child = start_esper("run", QUICKSTART, "--no-mlflow", "-q", *long, "--registry", str(path))
    wait_until(lambda: path.exists() and _event_count(path) > 0, timeout=120)
    path.unlink()
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 1 and "Traceback" not in stderr
    rescued = next(tmp_path.glob("runs-rescued-*.db"))
    run_id = rescued.stem.removeprefix("runs-rescued-")
    assert stderr.strip().splitlines()[-1] == (
        f"Error: registry {path} was deleted while esper had it open, so esper stopped "
        f"writing to it; run {run_id} (quickstart-1) "
        f"ended FAILED: its record and events were saved to {rescued} (esper show {run_id} "
        f"--registry {rescued})")
    with Registry.open(rescued, create=False) as registry:
        run = registry.run(run_id)
        assert run.status is RunStatus.FAILED and "RegistryGone" in run.exit_reason
        assert run.event_count > 0
    assert not path.exists()  # nothing recreated in its place


def _event_count(path: Path) -> int:
    try:
        with Registry.open(path, create=False) as registry:
            return sum(r.event_count for r in registry.runs())
    except RegistryError:
        return 0
