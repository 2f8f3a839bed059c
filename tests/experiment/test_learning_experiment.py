"""experiments/learning.yaml, the experiment of benchmarks/learning.py: `esper run` accepts it."""

import json
from pathlib import Path

from click.testing import CliRunner

from esper.cli import cli

LEARNING = str(Path(__file__).parents[2] / "experiments" / "learning.yaml")


def test_esper_run_accepts_the_learning_experiment(tmp_path):
    result = CliRunner().invoke(cli, [
        "run", LEARNING, "--set", "training.batches=1", "--set", "training.envs=2",
        "--set", "training.episode_length=3", "--registry", str(tmp_path / "runs.db"),
        "--no-mlflow", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "FINISHED" and len(summary["final_accuracy"]) == 2
