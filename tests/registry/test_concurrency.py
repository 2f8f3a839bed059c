"""Four processes recording into one new runs.db at the same time lose nothing and never fail."""

from __future__ import annotations

import time
from pathlib import Path

from esper.leyline.events import TelemetryEventType
from esper.registry import Registry, RunStatus
from tests.nissa.processes import start

EVENTS = 20_000  # per process; several write transactions each, interleaved with the others


def test_four_writers_at_once_lose_no_event_and_raise_no_lock_error(tmp_path: Path):
    db = tmp_path / "runs.db"  # does not exist yet: the four also race to create the schema
    start_at = time.time() + 3.0  # after every child has imported esper
    children = [start(db, "finish", EVENTS, tmp_path / f"state{i}", start_at) for i in range(4)]
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (_, stderr) in zip(children, outputs):
        assert child.returncode == 0, stderr
        assert "locked" not in stderr and "Traceback" not in stderr, stderr
    with Registry.open(db) as registry:
        runs = registry.runs()
        assert len(runs) == 4
        assert max(r.started_at for r in runs) < min(r.ended_at for r in runs)  # overlapped
        for run in runs:
            assert run.status is RunStatus.FINISHED
            assert run.event_count == EVENTS + 1 and run.events_dropped == 0
            seqs = [e.seq for e in registry.events(run.run_id)]
            assert seqs == list(range(EVENTS + 1))
            outcomes = registry.events(run.run_id, types=[TelemetryEventType.EPISODE_OUTCOME])
            assert [e.data.param_ratio for e in outcomes] == [1.0 + i / 1e6 for i in range(EVENTS)]
