"""Real tiny runs shared by the compare tests (one registry per session): a replicate group run
through `esper run` (seeds 1 and 2), a twin of its first run (same config and seed), and a
second group whose config differs in one key."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from esper.cli import cli
from esper.experiment import load
from esper.experiment.replicates import run_replicates
from esper.experiment.runner import run
from esper.registry import Registry, RunRecord
from tests.spec_factory import tiny_document


def cmp_document() -> dict[str, Any]:
    """A random-policy experiment small enough to run in ~2 s, with seeds that germinate."""
    return tiny_document(
        name="cmp",
        policy={"type": "random"},
        training={"envs": 1, "batches": 2, "episode_length": 6, "replicates": 2},
        telemetry={"probes": ["gate_events", "throughput"]},  # throughput: wall-clock fields
        tracking={"mlflow": False},
    )


@dataclass(frozen=True)
class Runs:
    registry_path: Path
    group_a: str  # group id: seeds 1 and 2
    group_b: str  # group id: gates.auto_forward [G1], seeds 1 and 2, named cmp-b-r0 / -r1
    first: RunRecord  # of group_a, seed 1
    second: RunRecord  # of group_a, seed 2
    twin: RunRecord  # same config and seed as `first`, outside the group

    def open(self) -> Registry:
        return Registry.open(self.registry_path, create=False)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("compare")
    registry_path = root / "runs.db"
    spec_file = root / "cmp.yaml"
    spec_file.write_text(yaml.safe_dump(cmp_document()))
    result = CliRunner().invoke(cli, ["run", str(spec_file), "--json", "--registry",
                                      str(registry_path)])
    assert result.exit_code == 0, result.output
    group_a = json.loads(result.output)
    spec = load(str(spec_file))
    twin = run(replace(spec, seed=1), spec_path=spec_file, registry=registry_path).record
    other = load(str(spec_file), ["gates.auto_forward=[G1]"])
    group_b = run_replicates(other, registry=registry_path, name="cmp-b")
    assert group_b.group_id is not None
    with Registry.open(registry_path) as registry:
        first, second = (registry.run(r["run_id"]) for r in group_a["runs"])
    return Runs(registry_path, group_a["group_id"], group_b.group_id, first, second, twin)
