"""esper rerun: a recorded run's resolved config trained again, through esper run's path."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from esper.cli import cli
from esper.registry import NewRun, Registry, RunStatus
from esper.registry.records import KIND_TAG

QUICKSTART = str(Path(__file__).parents[2] / "experiments" / "quickstart.yaml")
TINY = ("--set", "training.batches=1", "--set", "training.episode_length=2",
        "--set", "task.max_train=200", "--set", "task.max_val=100",
        "--set", "telemetry.probes=[]", "--no-mlflow")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_rerun_trains_the_recorded_config_with_overrides(db_path):
    first = invoke("run", QUICKSTART, *TINY, "--set", "tracking.tags={esper.suite: ci, who: me}",
                   "--set", "training.replicates=2", "--registry", str(db_path), "--json",
                   "--name", "orig")
    assert first.exit_code == 0, first.output
    with Registry.open(db_path) as registry:
        original = registry.resolve("orig-r1")  # the second replicate: seed 43
    result = invoke("rerun", "orig-r1", "--set", "training.envs=1", "--registry", str(db_path),
                    "--no-mlflow", "--json", "--name", "again")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)  # esper run's summary of one run
    with Registry.open(db_path) as registry:
        rerun = registry.run(summary["run_id"])
    assert rerun.name == "again" and rerun.status is RunStatus.FINISHED and rerun.seed == 43
    assert rerun.tags == {"who": "me", "esper.rerun_of": original.run_id}  # no esper.suite
    expected = json.loads(json.dumps(original.config))
    expected["training"].update(envs=1, replicates=1)
    expected["tracking"]["tags"] = rerun.tags
    assert rerun.config == expected

    text = invoke("rerun", original.run_id, "--registry", str(db_path), "--no-mlflow")
    assert text.exit_code == 0 and "run " in text.output  # esper run's closing summary


def test_rerun_refuses_bad_overrides_and_a_sweeps_run(db_path):
    with Registry.open(db_path) as registry:
        sweep = registry.create_run(NewRun("exp", {"name": "exp"}, seed=0, name="sweep-a",
                                           tags={KIND_TAG: "sweep"}))
        registry.finish_run(sweep.run_id, RunStatus.FINISHED)
        plain = registry.create_run(NewRun("exp", {"name": "exp"}, seed=0, name="plain"))
        registry.finish_run(plain.run_id, RunStatus.FINISHED)
    refused = invoke("rerun", "sweep-a", "--registry", str(db_path))
    assert refused.exit_code == 2 and "is a sweep's run: rerun one of its trials" in refused.output
    bad = invoke("rerun", "plain", "--set", "training.envz=1", "--registry", str(db_path))
    assert bad.exit_code == 2 and "training.envz" in bad.output
    assert invoke("rerun", "nosuchrun", "--registry", str(db_path)).exit_code == 2
