"""The tables of ``runs.db`` (docs/architecture.md §4), created and upgraded by sqlite-utils
migrations.

A migration is a function of the ``Database``; its name is recorded in ``_sqlite_migrations``
when applied. Never edit an applied migration: add the next one to ``_STEPS``. A registry
holding a migration this code does not know was written by a newer esper and is refused.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "esper"


def m001_initial(db: Database) -> None:
    """runs, events, metrics and wiring tables, with their indexes."""
    db["runs"].create(
        {
            "run_id": str,
            "name": str,
            "experiment": str,
            "spec_path": str,
            "spec_sha256": str,
            "config": str,  # resolved config, canonical JSON
            "config_sha256": str,
            "status": str,  # RUNNING / FINISHED / FAILED / KILLED (CRASHED is derived)
            "exit_reason": str,
            "traceback": str,
            "created_at": float,  # unix seconds
            "started_at": float,
            "ended_at": float,
            "heartbeat_at": float,
            "pid": int,
            "host": str,
            "user": str,
            "git_commit": str,
            "git_dirty": int,  # 0 / 1, NULL: not a git work tree
            "esper_version": str,
            "torch_version": str,
            "python_version": str,
            "seed": int,
            "device": str,
            "group_id": str,
            "parent_run_id": str,
            "mlflow_run_id": str,
            "mlflow_experiment_id": str,
            "tags": str,  # JSON object
            "notes": str,
            "event_count": int,
            "sinks": str,  # JSON array of per-sink reports (written, dropped, failures, error)
        },
        pk="run_id",
        not_null=[
            "name", "experiment", "config", "config_sha256", "status", "created_at",
            "started_at", "pid", "host", "esper_version", "python_version", "seed", "device",
            "tags", "notes", "event_count", "sinks",
        ],
        defaults={"event_count": 0, "tags": "{}", "notes": "", "sinks": "[]"},
    )
    for columns in (["experiment"], ["name"], ["status"], ["started_at"], ["group_id"]):
        db["runs"].create_index(columns)

    db["events"].create(
        {
            "id": int,
            "run_id": str,
            "seq": int,
            "ts": float,
            "event_type": str,
            "severity": str,
            "batch": int,
            "env_id": int,
            "epoch": int,
            "seed_id": str,
            "slot_id": str,
            "message": str,
            "data": str,  # the payload, JSON text (NaN and Infinity allowed)
        },
        pk="id",
        not_null=["run_id", "seq", "ts", "event_type", "severity", "message", "data"],
    )
    db["events"].create_index(["run_id", "seq"], unique=True)
    db["events"].create_index(["run_id", "event_type"])

    db["metrics"].create(
        {"run_id": str, "key": str, "step": int, "value": float, "ts": float},
        not_null=["run_id", "key", "step"],
    )
    db["metrics"].create_index(["run_id", "key", "step"])

    db["wiring"].create(
        {
            "run_id": str,
            "tele_id": str,  # TELE-340
            "field": str,
            "probe": str,
            "expectation": str,
            "outcome": str,  # PASS / FAIL / XFAIL / XPASS / SKIP
            "observed": int,  # 0 / 1
            "null_count": int,
            "first_seq": int,
            "reason": str,
        },
        not_null=["run_id", "tele_id", "outcome"],
    )
    db["wiring"].create_index(["run_id", "tele_id"], unique=True)


def m002_artifacts_and_field_wiring(db: Database) -> None:
    """artifacts: files a run wrote beside the registry (policy checkpoint, traces, ...);
    wiring outcomes are stored per catalogue field (a TELE id groups several fields)."""
    db["artifacts"].create(
        {"run_id": str, "name": str, "path": str, "created_at": float},
        pk=("run_id", "name"),
        not_null=["run_id", "name", "path", "created_at"],
    )
    db.execute("DROP INDEX IF EXISTS idx_wiring_run_id_tele_id")
    db["wiring"].create_index(["run_id", "field"], unique=True)
    db["wiring"].create_index(["run_id", "tele_id"])


def m003_process_identity(db: Database) -> None:
    """runs.pid_space and runs.pid_start: which process the pid is (esper.registry.process),
    so a live run is told from a dead one whose pid was reused. NULL on rows of older esper."""
    db["runs"].add_column("pid_space", str)
    db["runs"].add_column("pid_start", int)


_STEPS = (m001_initial, m002_artifacts_and_field_wiring, m003_process_identity)

#: Names of the migrations this code knows, in order; their count is the schema version.
KNOWN_MIGRATIONS: tuple[str, ...] = tuple(step.__name__ for step in _STEPS)

MIGRATIONS = Migrations(MIGRATION_SET)
for _step in _STEPS:
    MIGRATIONS()(_step)
