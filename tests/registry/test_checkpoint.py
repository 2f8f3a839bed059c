"""WAL checkpoints run on the registry's own thread, not inside the commits of event batches."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from esper.registry import Registry, checkpoint
from tests.polling import wait_until

from .builders import make_events, new_run


def test_commits_leave_checkpoints_to_the_background_thread(db_path: Path):
    with Registry.open(db_path) as registry:
        autocheckpoint = registry._db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert autocheckpoint == 0  # COMMIT never copies the WAL back itself
        run_id = registry.create_run(new_run()).run_id
        size_before = db_path.stat().st_size
        registry.write_events(make_events(run_id, 5_000))
        # The events reach runs.db itself while the registry is still open: only the
        # checkpoint thread can have copied them there.
        assert wait_until(lambda: db_path.stat().st_size > size_before + 200_000)
        registry.write_events(make_events(run_id, 5_000, start=5_000))
        assert [e.seq for e in registry.events(run_id)] == list(range(10_000))
    with sqlite3.connect(db_path) as reader:
        assert reader.execute("SELECT count(*) FROM events").fetchone()[0] == 10_000


def test_every_kind_of_write_is_checkpointed_not_only_events(db_path: Path):
    with Registry.open(db_path) as registry:
        run_id = registry.create_run(new_run()).run_id
        size_before = db_path.stat().st_size
        points = [(f"series/{k}", step, step / 3, 1_700_000_000.0) for k in range(20)
                  for step in range(1_000)]
        registry.append_metrics(run_id, points)  # no event written in this registry
        assert wait_until(lambda: db_path.stat().st_size > size_before + 200_000)


def test_the_wal_is_reused_instead_of_growing_with_the_run(db_path: Path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MIN_INTERVAL", 0.0)
    wal = db_path.with_name(db_path.name + "-wal")
    with Registry.open(db_path) as registry:
        run_id = registry.create_run(new_run()).run_id
        wal_sizes = []
        for batch in range(12):
            copied = db_path.stat().st_size
            registry.write_events(make_events(run_id, 2_000, start=batch * 2_000))
            assert wait_until(lambda: db_path.stat().st_size > copied)  # checkpointed...
            # ...to the end: a write that starts while a checkpoint is still copying cannot
            # rewind the WAL, so on a loaded machine the sizes would grow without this wait.
            assert wait_until(registry._checkpointer.caught_up)
            wal_sizes.append(wal.stat().st_size)
        database = db_path.stat().st_size
    # Without checkpoints the WAL would hold all 24,000 events (more than runs.db itself).
    assert max(wal_sizes) < database / 2, (wal_sizes, database)


def test_back_to_back_writes_keep_the_wal_bounded(db_path: Path, monkeypatch):
    # A steady stream of writes never leaves the background thread time to copy every frame,
    # and only a complete checkpoint lets SQLite start the WAL again from its beginning. Here
    # the background thread checkpoints once and then waits a minute: only the writer's own
    # checkpoints can keep the WAL bounded.
    monkeypatch.setattr(checkpoint, "WAL_LIMIT", 4 * 2**20)
    monkeypatch.setattr(checkpoint, "MIN_INTERVAL", 60.0)
    monkeypatch.setattr(checkpoint, "WRITER_INTERVAL", 0.0)
    wal = db_path.with_name(db_path.name + "-wal")
    with Registry.open(db_path) as registry:
        run_id = registry.create_run(new_run()).run_id
        wal_sizes = []
        for batch in range(40):
            registry.write_events(make_events(run_id, 1_000, start=batch * 1_000))
            wal_sizes.append(wal.stat().st_size)
        database = db_path.stat().st_size
        assert registry.run(run_id).event_count == 40_000
    # Unbounded, the WAL ends near the size of all 40,000 events (tens of MB).
    assert max(wal_sizes) < 4 * 2**20 + 3 * max(wal_sizes[:2]), (wal_sizes, database)
    # A rewound WAL is also truncated (to a quarter of the limit), so the file shrinks again
    # and the writer's rule stays quiet until the WAL has grown past the limit once more.
    assert min(wal_sizes[20:]) < 2**20 + 2 * max(wal_sizes[:2]), wal_sizes


def test_closing_stops_the_thread_and_a_read_only_registry_never_starts_it(db_path: Path):
    with Registry.open(db_path) as registry:
        registry.write_events(make_events(registry.create_run(new_run()).run_id, 10))
        assert _checkpoint_threads()
    assert not _checkpoint_threads()
    with Registry.open(db_path, create=False) as reader:
        assert len(reader.runs()) == 1
        assert not _checkpoint_threads()


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "esper-registry-checkpoint"]
