"""esper runs with chosen columns, --where, --sort and --kind on a real runs.db."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from esper.cli import cli
from esper.registry import NewRun, Registry, RunStatus
from esper.registry.records import KIND_TAG, SUITE_TAG


def recorded(registry: Registry, name: str, envs: int, policy: str, accuracy: float | None,
             **fields: object) -> str:
    config = {"training": {"envs": envs, "train": True}, "policy": {"type": policy}}
    run_id = registry.create_run(NewRun("exp", config, seed=envs, name=name, **fields)).run_id
    if accuracy is not None:  # the outcome metric final_val_accuracy is the last of the series
        registry.append_metrics(run_id, [("episode/val_accuracy", 0, 10.0, 1.0),
                                         ("episode/val_accuracy", 1, accuracy, 2.0)])
    registry.finish_run(run_id, RunStatus.FINISHED)
    return run_id


@pytest.fixture
def table(db_path: Path) -> dict[str, str]:
    with Registry.open(db_path) as registry:
        sweep = recorded(registry, "sweep-a", 1, "lstm", None, tags={KIND_TAG: "sweep"})
        return {
            "sweep-a": sweep,
            "trial-0": recorded(registry, "trial-0", 2, "lstm", 91.5, parent_run_id=sweep,
                                group_id=sweep),
            "suite-run": recorded(registry, "suite-run", 4, "heuristic", 80.0,
                                  tags={SUITE_TAG: "ci"}),
            "plain": recorded(registry, "plain", 8, "mlp", 95.0, group_id="0a0a0a0a0a0a"),
        }


def runs(db_path: Path, *args: str):
    return CliRunner().invoke(cli, ["runs", "--registry", str(db_path), *args])


def columns(db_path: Path, *args: str) -> list[tuple[str, dict[str, object]]]:
    result = runs(db_path, "--json", *args)
    assert result.exit_code == 0, result.output
    return [(row["name"], row["columns"]) for row in json.loads(result.output)]


def test_chosen_columns_from_the_config_the_outcome_metrics_and_the_series(db_path, table):
    shown = columns(db_path, "-c", "training.envs", "-c", "final_val_accuracy",
                    "-c", "episode/val_accuracy", "-c", "policy.type", "-c", "kind")
    assert shown == [
        ("plain", {"training.envs": 8, "final_val_accuracy": 95.0, "episode/val_accuracy": 95.0,
                   "policy.type": "mlp", "kind": "run"}),
        ("suite-run", {"training.envs": 4, "final_val_accuracy": 80.0,
                       "episode/val_accuracy": 80.0, "policy.type": "heuristic",
                       "kind": "regression"}),
        ("trial-0", {"training.envs": 2, "final_val_accuracy": 91.5,
                     "episode/val_accuracy": 91.5, "policy.type": "lstm", "kind": "trial"}),
        ("sweep-a", {"training.envs": 1, "final_val_accuracy": None,
                     "episode/val_accuracy": None, "policy.type": "lstm", "kind": "sweep"}),
    ]
    text = runs(db_path, "-c", "training.envs", "-c", "final_val_accuracy")
    header, *lines = text.output.splitlines()
    assert header.split() == ["id", "name", "experiment", "kind", "status", "started",
                              "duration", "events", "training.envs", "final_val_accuracy"]
    by_name = {line.split()[1]: line for line in lines}
    assert f"trial of {table['sweep-a']}" in by_name["trial-0"]  # the full parent id
    assert "run group:0a0a0a0a0a0a" in by_name["plain"]
    assert by_name["plain"].split()[-2:] == ["8", "95"]
    assert by_name["sweep-a"].split()[-2:] == ["1", "-"]


def test_where_sort_and_kind(db_path, table):
    def names(*args: str) -> list[str]:
        return [name for name, _ in columns(db_path, *args)]

    assert names("--where", "final_val_accuracy>=90") == ["plain", "trial-0"]
    assert names("--where", "policy.type=lstm") == ["trial-0", "sweep-a"]
    assert names("--where", "policy.type!=lstm", "--where", "training.envs<8") == ["suite-run"]
    assert names("--where", "training.train=true") == ["plain", "suite-run", "trial-0", "sweep-a"]
    assert names("--sort", "final_val_accuracy") == ["suite-run", "trial-0", "plain", "sweep-a"]
    assert names("--sort", "final_val_accuracy:desc", "--limit", "2") == ["plain", "trial-0"]
    assert names("--sort", "policy.type", "--sort", "training.envs:desc") == [
        "suite-run", "trial-0", "sweep-a", "plain"]
    for kind, expected in [("run", ["plain"]), ("sweep", ["sweep-a"]), ("trial", ["trial-0"]),
                           ("regression", ["suite-run"])]:
        assert names("--kind", kind) == expected
    assert names("--kind", "trial", "-c", "parent") == ["trial-0"]
    assert columns(db_path, "--kind", "trial", "-c", "parent")[0][1] == {
        "parent": table["sweep-a"]}


@pytest.mark.parametrize("args, message", [
    (("-c", "training.envz"), "unknown key 'training.envz': no run listed has it"),
    (("--sort", "episode/nope"), "unknown key 'episode/nope'"),
    (("--where", "final_val_accuracy~90"), "expected KEY OP VALUE with OP one of"),
    (("--where", "policy.type>lstm"), "> compares numbers, and 'lstm' is not one"),
])
def test_bad_keys_and_conditions_exit_2(db_path, table, args, message):
    result = runs(db_path, *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_nan_metric_is_named_in_json(db_path):
    with Registry.open(db_path) as registry:
        recorded(registry, "nan", 1, "lstm", float("nan"))  # SQLite keeps it as NULL
    result = runs(db_path, "--json", "-c", "final_val_accuracy")
    assert '"final_val_accuracy": "NaN"' in result.output
