"""The stock monitoring experiments let the ratio detectors move: their PPO ratio leaves 1."""

from pathlib import Path

import pytest

from esper.experiment.loading import load
from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


@pytest.mark.parametrize("name", ["p4_monitoring", "telemetry_wiring"])
def test_the_ratio_of_a_stock_monitoring_experiment_moves(tmp_path, name):
    spec = load(EXPERIMENTS / f"{name}.yaml", overrides=(
        "training.batches=1", "training.envs=1", "training.episode_length=4",
        "tracking.mlflow=false"))
    result = run(spec, registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        [update] = [e.data for e in registry.events(result.record.run_id,
                                                    types=[T.PPO_UPDATE_COMPLETED])]
    assert update.ratio_max - update.ratio_min > 1e-3  # 1 +- 4e-7 with one update epoch
