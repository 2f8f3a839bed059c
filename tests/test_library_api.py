"""`import esper` is the library the command line sits on: its names load lazily and run a real
experiment end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import esper

QUICKSTART = Path(__file__).parents[1] / "experiments" / "quickstart.yaml"
TINY = ("training.batches=1", "training.episode_length=2", "task.max_train=200",
        "task.max_val=100", "telemetry.probes=[]", "tracking.mlflow=false")


def test_import_esper_loads_neither_torch_nor_mlflow():
    code = "import sys, esper; print('torch' in sys.modules, 'mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_load_run_and_compare_through_the_package(tmp_path):
    spec = esper.load(QUICKSTART, TINY)
    first = esper.run(spec, registry=tmp_path / "runs.db")
    second = esper.run(spec, registry=tmp_path / "runs.db")
    assert first.record.status.value == second.record.status.value == "FINISHED"
    with esper.Registry.open(tmp_path / "runs.db") as registry:
        report = esper.compare_runs(registry, [first.record.run_id, second.record.run_id])
    assert [s.run_ids for s in report.sides] == [[first.record.run_id], [second.record.run_id]]
    assert report.divergence and report.divergence[0].identical  # same config and seed


def test_no_public_name_is_shadowed_by_a_subpackage():
    import esper.compare.report  # noqa: F401  (binds esper.compare to the subpackage)

    assert callable(esper.compare_runs)
    assert not {name for name in esper._API} & {"compare", "experiment", "registry", "sweep"}


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        esper.trian  # noqa: B018
