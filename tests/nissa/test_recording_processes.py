"""Real processes: an exception, SIGINT, SIGTERM and SIGKILL, each seen in runs.db afterwards."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, RunStatus

from .processes import start, wait_for


def _events_are_complete(registry: Registry, run_id: str) -> int:
    """Asserts seq 0..n-1 without gaps, RUN_FINISHED last and counting all before it; returns n."""
    events = list(registry.events(run_id))
    assert [e.seq for e in events] == list(range(len(events)))
    last = events[-1]
    assert last.event_type is TelemetryEventType.RUN_FINISHED
    assert last.data.events_emitted == len(events) - 1 and last.data.events_dropped == 0
    assert registry.run(run_id).event_count == len(events)
    return len(events)


def test_a_process_that_raises_ends_failed_with_its_traceback(tmp_path: Path):
    child = start(tmp_path / "runs.db", "raise", 500, tmp_path / "state")
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 1 and "boom from the child" in stderr
    run_id = (tmp_path / "state" / "run_id").read_text()
    with Registry.open(tmp_path / "runs.db") as registry:
        run = registry.run(run_id)
        assert run.status is RunStatus.FAILED
        assert run.exit_reason == "RuntimeError: boom from the child"
        assert 'raise RuntimeError("boom from the child")' in run.traceback
        assert _events_are_complete(registry, run_id) == 501


@pytest.mark.parametrize(
    ("signum", "reason", "exit_codes"),
    [(signal.SIGINT, "SIGINT", {130, -signal.SIGINT}), (signal.SIGTERM, "SIGTERM", {143})],
)
def test_a_signal_ends_killed_with_every_emitted_event_written(tmp_path: Path, signum, reason,
                                                                exit_codes):
    child = start(tmp_path / "runs.db", "wait", 2_000, tmp_path / "state")
    wait_for(tmp_path / "state" / "ready", child)
    os.kill(child.pid, signum)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode in exit_codes, stderr
    run_id = (tmp_path / "state" / "run_id").read_text()
    with Registry.open(tmp_path / "runs.db") as registry:
        run = registry.run(run_id)
        assert (run.status, run.exit_reason) == (RunStatus.KILLED, reason)
        assert _events_are_complete(registry, run_id) > 2_000


def test_sigkill_shows_as_crashed_in_esper_runs(tmp_path: Path):
    db = tmp_path / "runs.db"
    child = start(db, "wait", 300, tmp_path / "state")
    wait_for(tmp_path / "state" / "ready", child)
    child.kill()
    child.communicate(timeout=60)
    run_id = (tmp_path / "state" / "run_id").read_text()
    result = CliRunner().invoke(cli, ["runs", "--registry", str(db), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert (row["run_id"], row["status"]) == (run_id, "CRASHED")
    assert row["event_count"] >= 300  # everything flushed before the kill is kept
    table = CliRunner().invoke(cli, ["runs", "--registry", str(db)])
    assert "CRASHED" in table.output and run_id in table.output
