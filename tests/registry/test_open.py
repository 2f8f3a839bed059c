"""Opening runs.db: path resolution, schema set-up, and clear errors for files that are not ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from esper.registry import Registry, RegistryError
from esper.registry.connection import registry_path
from esper.registry.schema import KNOWN_MIGRATIONS

from .builders import new_run


def test_path_is_the_argument_else_the_environment_else_runs_db(monkeypatch, tmp_path):
    monkeypatch.delenv("ESPER_REGISTRY", raising=False)
    assert registry_path(None) == Path("runs.db")
    monkeypatch.setenv("ESPER_REGISTRY", str(tmp_path / "env.db"))
    assert registry_path(None) == tmp_path / "env.db"
    assert registry_path(tmp_path / "arg.db") == tmp_path / "arg.db"


def test_a_new_registry_has_the_tables_in_wal_mode(db_path):
    with Registry.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "events", "metrics", "wiring", "_sqlite_migrations"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    indexes = {row[1]: row[2] for row in conn.execute("PRAGMA index_list(events)")}
    assert indexes["idx_events_run_id_seq"] == 1  # unique
    assert "idx_events_run_id_event_type" in indexes
    applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert tuple(applied) == KNOWN_MIGRATIONS


def test_opening_again_keeps_the_runs_and_applies_nothing_twice(db_path):
    with Registry.open(db_path) as registry:
        run = registry.create_run(new_run())
    with Registry.open(db_path) as registry:
        assert registry.run(run.run_id).name == "exp-1"
    count = sqlite3.connect(db_path).execute("SELECT count(*) FROM _sqlite_migrations").fetchone()
    assert count == (len(KNOWN_MIGRATIONS),)


def test_a_missing_registry_is_an_error_for_readers(tmp_path):
    with pytest.raises(RegistryError) as error:
        Registry.open(tmp_path / "none.db", create=False)
    assert error.value.message == (
        f"no registry at {tmp_path / 'none.db'}: run an experiment first, or pass --registry "
        "PATH (or set ESPER_REGISTRY) to use another file")
    assert not (tmp_path / "none.db").exists()


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    with pytest.raises(RegistryError, match=r"notes.txt is not an SQLite database; pass"):
        Registry.open(path)
    assert path.read_text() == "my notes\n"


def test_a_damaged_sqlite_file_is_a_clear_error(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    with pytest.raises(RegistryError, match=r"runs.db is not a usable SQLite database \("):
        Registry.open(path)


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError) as error:
        Registry.open(path)
    assert "other.db is an SQLite database but not an esper registry (tables: customers)" in (
        error.value.message)
    tables = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")]
    assert tables == ["customers"]
    # nor switched to WAL (a setting written into the file) on the way
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not path.with_name("other.db-wal").exists()


def test_a_registry_from_a_newer_esper_is_refused(db_path):
    with Registry.open(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('esper', 'm999_future', '2099-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(RegistryError) as error:
        Registry.open(db_path)
    version = len(KNOWN_MIGRATIONS)
    assert error.value.message == (
        f"{db_path} has registry schema version {version + 1} but this esper knows version "
        f"{version} (unknown migrations in set 'esper': m999_future); upgrade esper to read it")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(RegistryError, match="is a directory"):
        Registry.open(tmp_path)


def test_a_reader_leaves_an_empty_file_empty(tmp_path):
    path = tmp_path / "runs.db"
    path.touch()
    with pytest.raises(RegistryError, match="runs.db is empty, not an esper registry"):
        Registry.open(path, create=False)
    assert path.stat().st_size == 0


def test_an_empty_file_becomes_a_registry(tmp_path):
    path = tmp_path / "runs.db"
    path.touch()
    with Registry.open(path) as registry:
        assert registry.runs() == []


def test_the_page_cache_holds_a_whole_batch_of_events(registry: Registry):
    # A batch of 20,000 event rows is ~18 MB of pages; a smaller cache spills them to the WAL
    # mid-transaction and writes them again at COMMIT.
    cache_kib = -registry._db.conn.execute("PRAGMA cache_size").fetchone()[0]
    assert cache_kib * 1024 >= 20_000 * 900
