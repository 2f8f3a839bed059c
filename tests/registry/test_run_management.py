"""esper delete, gc, tag and note on a real runs.db (MLflow's side: tests/nissa/test_mlflow_manage.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.nissa.mlflow_store import URI_ENV_VAR
from esper.registry import Registry, RunStatus
from esper.registry.deletion import RUN_TABLES

from .builders import make_events, new_run


@pytest.fixture(autouse=True)
def no_mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default MLflow store is a file that does not exist: nothing to find, none created."""
    monkeypatch.setenv(URI_ENV_VAR, f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def ended_run(registry: Registry, name: str, **fields: object) -> str:
    """A FINISHED run with rows in every table and a file in artifacts/<run id>/."""
    run_id = registry.create_run(new_run("exp", name=name, **fields)).run_id
    registry.write_events(make_events(run_id, 12))
    registry.append_metrics(run_id, [("episode/val_accuracy", 0, 50.0, 1.0)])
    registry.record_wiring(run_id, [{"run_id": run_id, "tele_id": "TELE-1", "field": "f",
                                     "outcome": "PASS"}])
    directory = registry.path.parent / "artifacts" / run_id
    directory.mkdir(parents=True)
    (directory / "policy.pt").write_bytes(b"x" * 100)
    registry.record_artifact(run_id, "policy", directory / "policy.pt")
    registry.finish_run(run_id, RunStatus.FINISHED)
    return run_id


def rows_of(registry: Registry, run_id: str) -> dict[str, int]:
    return {table: registry.query(f"SELECT count(*) FROM {table} WHERE run_id = ?",
                                  [run_id])[0][0] for table in RUN_TABLES}


def test_delete_removes_every_row_and_file_of_the_run_and_a_dry_run_nothing(db_path):
    with Registry.open(db_path) as registry:
        gone, kept = ended_run(registry, "gone"), ended_run(registry, "kept")
    expected = {"runs": 1, "events": 12, "metrics": 1, "wiring": 1, "artifacts": 1}

    dry = invoke("delete", "gone", "--registry", str(db_path), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["dry_run"] and planned["rows"] == expected and planned["bytes"] == 100
    assert planned["runs"] == [{"run_id": gone, "name": "gone", "kind": "run"}]
    assert planned["files"] == [{"path": str(db_path.parent / "artifacts" / gone), "bytes": 100}]
    with Registry.open(db_path) as registry:
        assert rows_of(registry, gone) == expected
    assert (db_path.parent / "artifacts" / gone / "policy.pt").is_file()

    result = invoke("delete", gone, "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"deleted 1 run(s): {gone} (gone)\n"
                                    "  rows: runs 1, events 12, metrics 1, wiring 1, artifacts 1")
    with Registry.open(db_path) as registry:
        assert rows_of(registry, gone) == dict.fromkeys(RUN_TABLES, 0)
        assert rows_of(registry, kept) == expected
    assert not (db_path.parent / "artifacts" / gone).exists()
    assert (db_path.parent / "artifacts" / kept / "policy.pt").is_file()


def test_delete_refuses_a_running_run_and_an_unknown_one_with_exit_code_2(db_path):
    with Registry.open(db_path) as registry:
        ended = ended_run(registry, "ended")
        running = registry.create_run(new_run("exp", name="live")).run_id  # this process: alive
    result = invoke("delete", "ended", "live", "--registry", str(db_path))
    assert result.exit_code == 2
    assert f"Error: run {running} (live) is RUNNING (pid " in result.output
    assert invoke("delete", "nosuchrun", "--registry", str(db_path)).exit_code == 2
    with Registry.open(db_path) as registry:  # nothing was deleted, the ended run neither
        assert registry.run(ended).status is RunStatus.FINISHED


def test_a_sweep_parent_is_deleted_with_its_trials_only(db_path):
    with Registry.open(db_path) as registry:
        sweep = ended_run(registry, "sweep-a", tags={"esper.kind": "sweep"})
        trials = [ended_run(registry, f"trial-{i}", parent_run_id=sweep, group_id=sweep)
                  for i in range(2)]
    refused = invoke("delete", "sweep-a", "--registry", str(db_path))
    assert refused.exit_code == 2
    assert (f"Error: run {sweep} (sweep-a) is the sweep parent of 2 run(s) not named, "
            f"e.g. {trials[0]}: add --with-children") in refused.output
    named = invoke("delete", "sweep-a", "trial-0", "trial-1", "--registry", str(db_path),
                   "--dry-run", "--json")
    assert named.exit_code == 0, named.output
    assert [r["run_id"] for r in json.loads(named.output)["runs"]] == [sweep, *trials]
    result = invoke("delete", "sweep-a", "--with-children", "--registry", str(db_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"]["runs"] == 3
    with Registry.open(db_path) as registry:
        assert registry.runs() == []


def test_gc_removes_the_files_of_runs_no_longer_in_the_registry(db_path):
    with Registry.open(db_path) as registry:
        kept = ended_run(registry, "kept")
    artifacts = db_path.parent / "artifacts"
    orphan = artifacts / "0123456789ab"  # a run deleted by other means
    (orphan / "profiler").mkdir(parents=True)
    (orphan / "policy.pt").write_bytes(b"x" * 10)
    (orphan / "profiler" / "trace.json").write_bytes(b"y" * 5)
    (artifacts / "notes.txt").write_text("mine")  # not named like a run: left alone

    dry = invoke("gc", "--registry", str(db_path), "--dry-run", "--json")
    assert json.loads(dry.output) == {"dry_run": True, "bytes": 15, "mlflow": [],
                                      "files": [{"path": str(orphan), "bytes": 15}]}
    assert orphan.is_dir()
    result = invoke("gc", "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    assert result.output == f"removed\n  files: 1 (15 bytes freed)\n    {orphan} (15 bytes)\n"
    assert not orphan.exists()
    assert (artifacts / "notes.txt").is_file() and (artifacts / kept / "policy.pt").is_file()


def test_tag_and_note_after_the_fact(db_path):
    with Registry.open(db_path) as registry:
        run_id = ended_run(registry, "r", tags={"draft": "1"})
    result = invoke("tag", "r", "baseline=yes", "odd key=[/]\x1b", "--remove", "draft",
                    "--registry", str(db_path))
    assert result.exit_code == 0, result.output
    assert result.output == f'run {run_id} (r): tags {{"baseline": "yes", "odd key": "[/]\\u001b"}}\n'
    noted = invoke("note", "r", "first line\nsecond", "--registry", str(db_path), "--json")
    assert json.loads(noted.output) == {"run_id": run_id, "name": "r",
                                        "notes": "first line\nsecond", "mlflow": []}
    with Registry.open(db_path) as registry:
        run = registry.run(run_id)
    assert run.tags == {"baseline": "yes", "odd key": "[/]\x1b"}
    assert run.notes == "first line\nsecond"
    shown = invoke("show", "r", "--registry", str(db_path)).output
    assert "notes" in shown and "first line\\nsecond" in shown  # shown literally, one line

    for args, message in [
        (("esper.kind=sweep",), "tag key 'esper.kind' is reserved"),
        (("--remove", "mlflow.runName"), "tag key 'mlflow.runName' is reserved"),
        (("a\nb=1",), "tag key 'a\\nb': expected up to 250 letters"),
        (("novalue",), "expected KEY=VALUE tags"),
        ((), "expected KEY=VALUE tags"),
        (("x=1", "--remove", "x"), "tag key 'x' is both set and removed"),
    ]:
        refused = invoke("tag", "r", *args, "--registry", str(db_path))
        assert refused.exit_code == 2 and message in refused.output, (args, refused.output)
