"""Real runs shared by the probe tests (each takes seconds: share them)."""

from __future__ import annotations

import pytest

from tests.simic.probes.probe_runs import PPO_PROBES, Recorded, probe_spec


@pytest.fixture(scope="session")
def lstm_all_on(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """An lstm run with every PPO probe on, default options, one update epoch."""
    path = tmp_path_factory.mktemp("lstm_all_on") / "runs.db"
    return Recorded(probe_spec("lstm", PPO_PROBES, ppo={"update_epochs": 1}), path)


@pytest.fixture(scope="session")
def lstm_all_off(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """The same lstm run with every probe off."""
    path = tmp_path_factory.mktemp("lstm_all_off") / "runs.db"
    return Recorded(probe_spec("lstm", (), ppo={"update_epochs": 1}), path)


@pytest.fixture(scope="session")
def mlp_all_on(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """An mlp run with every PPO probe on, two update epochs, and a value-loss bound any real
    critic exceeds, checked from the first update (value collapse on the feed-forward path)."""
    path = tmp_path_factory.mktemp("mlp_all_on") / "runs.db"
    return Recorded(probe_spec("mlp", PPO_PROBES, ppo={"update_epochs": 2},
                               anomalies={"max_value_loss": 1e-6, "warmup_batches": 0}), path)
