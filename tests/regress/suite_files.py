"""The suite experiments the `esper regress` tests run: spec_factory's tiny digits experiment
shrunk to one env, one slot and three epochs (about a second a run), written as suite files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.spec_factory import tiny_document


def suite_document(name: str, seed: int, metrics: dict[str, dict[str, Any]], replicates: int = 1,
                   **sections: Any) -> dict[str, Any]:
    """A heuristic-policy suite experiment checked on `metrics` (its regression block's
    metrics) over `replicates` runs; keyword arguments replace whole sections."""
    return tiny_document(**{
        "name": name, "seed": seed,
        "task": {"dataset": "digits", "max_train": 128, "max_val": 64, "batch_size": 64},
        "slots": {"enabled": ["r0c0"], "max_seeds": 1},
        "policy": {"type": "heuristic"},
        "training": {"envs": 1, "batches": 1, "episode_length": 3},
        "telemetry": {"probes": []},
        "regression": {"replicates": replicates, "metrics": metrics},
        **sections})


def write_experiment(directory: Path, document: dict[str, Any]) -> Path:
    """Write `document` into the suite `directory` as `<name>.yaml`."""
    path = directory / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
