"""A run does not import torch._dynamo (1.2-1.4 s of CPU per process, issue 22): esper steps its
own SGD and Adam (esper/kasmina/optim.py), whose first call, unlike torch.optim's, imports none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

_RUN = """
import sys, tempfile
from esper.experiment.loading import load
from esper.experiment.runner import run
overrides = ("training.batches=1", "training.episode_length=2", "task.max_train=200",
             "task.max_val=100", "telemetry.probes=[]", "tracking.mlflow=false",
             "policy.type={policy}")
with tempfile.TemporaryDirectory() as directory:
    result = run(load("experiments/quickstart.yaml", overrides), registry=directory + "/runs.db")
print(result.record.status.value, "torch._dynamo" in sys.modules)
"""


@pytest.mark.parametrize("policy", ["heuristic", "lstm"])
def test_a_run_ends_without_importing_torch_dynamo(policy: str) -> None:
    done = subprocess.run([sys.executable, "-c", _RUN.format(policy=policy)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    status, dynamo = done.stdout.split()[-2:]
    assert status.lower() == "finished", done.stdout
    assert dynamo == "False", "a torch.optim optimiser (or another import) pulled in torch._dynamo"
