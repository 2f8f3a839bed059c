"""esper tag, note, delete and gc on a real run's MLflow run, read back with MlflowClient; an
unreachable store is reported and cleaned up later by esper gc --mlflow."""

from __future__ import annotations

import json

from click.testing import CliRunner
from mlflow import MlflowClient

from esper.cli import cli
from esper.registry import Registry

from .esper_process import QUICKSTART, SMALL


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_tags_notes_and_deletion_reach_the_mlflow_run(tmp_path, mlflow_uri):
    db = str(tmp_path / "runs.db")
    invoke("run", QUICKSTART, *SMALL, "--registry", db, "--name", "run-a", "-q")
    invoke("run", QUICKSTART, *SMALL, "--registry", db, "--name", "run-b", "-q")
    with Registry.open(db) as registry:
        a, b = registry.resolve("run-a"), registry.resolve("run-b")
    client = MlflowClient(tracking_uri=mlflow_uri)

    tagged = json.loads(invoke("tag", "run-a", "baseline=yes", "who=me", "--registry", db,
                               "--json").output)
    assert tagged["mlflow"] == [{"uri": mlflow_uri, "run_ids": [a.mlflow_run_id], "error": None}]
    invoke("tag", "run-a", "--remove", "who", "--registry", db)
    invoke("note", "run-a", "kept as the baseline", "--registry", db)
    tags = client.get_run(a.mlflow_run_id).data.tags
    assert tags["baseline"] == "yes" and "who" not in tags
    assert tags["mlflow.note.content"] == "kept as the baseline"

    planned = json.loads(invoke("delete", "run-a", "--dry-run", "--json", "--registry", db).output)
    assert planned["mlflow"] == [{"uri": mlflow_uri, "run_ids": [a.mlflow_run_id],
                                  "error": None}]
    assert client.get_run(a.mlflow_run_id).info.lifecycle_stage == "active"
    invoke("delete", "run-a", "--registry", db)
    assert client.get_run(a.mlflow_run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(b.mlflow_run_id).info.lifecycle_stage == "active"

    broken = tmp_path / "broken" / "mlflow.db"  # a store that exists but cannot be read
    broken.parent.mkdir()
    broken.write_text("not a database")
    result = CliRunner().invoke(cli, ["delete", "run-b", "--registry", db, "--json",
                                      "--uri", f"sqlite:///{broken}"])
    assert result.exit_code == 0, result.output
    (change,) = json.loads(result.stdout)["mlflow"]
    assert change["run_ids"] == [] and change["error"].startswith(
        f"MLflow tracking store sqlite:///{broken}: cannot open it")
    assert result.stderr.startswith("Warning: MLflow tracking store")
    assert result.stderr.rstrip().endswith(
        f"once it can be reached: esper gc --mlflow --uri sqlite:///{broken}")
    with Registry.open(db) as registry:
        assert registry.runs() == []  # the registry is the record: the run is gone there
    assert client.get_run(b.mlflow_run_id).info.lifecycle_stage == "active"

    collected = json.loads(invoke("gc", "--mlflow", "--registry", db, "--json").output)
    assert collected["mlflow"] == [{"uri": mlflow_uri, "run_ids": [b.mlflow_run_id],
                                    "error": None}]
    assert client.get_run(b.mlflow_run_id).info.lifecycle_stage == "deleted"
