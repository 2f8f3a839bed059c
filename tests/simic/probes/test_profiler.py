"""`profiler` probe: torch.profiler traces written into the run's artifacts and recorded."""

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from esper.experiment.runner import artifact_dir, run
from esper.registry import Registry
from tests.growing_spec import growing_spec
from tests.simic.probes.env_runs import CORE_PROBES, record_run


def test_each_recorded_window_is_a_tensorboard_trace_recorded_as_an_artifact(tmp_path):
    recorded = record_run(tmp_path, ["profiler"],
                          {"profiler": {"wait": 1, "warmup": 1, "active": 1, "repeat": 2}},
                          training={"envs": 1, "batches": 1, "episode_length": 6})
    traces = artifact_dir(tmp_path / "runs.db", recorded.result.record.run_id) / "profiler"
    files = sorted(traces.glob("*.pt.trace.json"))
    assert len(files) == 2  # two windows of wait 1, warmup 1, active 1 in six env steps
    assert recorded.artifacts == {f"profiler/{f.name}": str(f) for f in files}
    for path in files:
        trace = json.loads(Path(path).read_text())
        names = {event.get("name") for event in trace["traceEvents"]}
        assert any("conv2d" in str(name) for name in names)  # the host's forward was profiled


def test_the_traces_reach_the_mlflow_run_as_artifacts(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    telemetry = {"probes": [*CORE_PROBES, "profiler"],
                 "profiler": {"wait": 1, "warmup": 1, "active": 1, "repeat": 1}}
    spec = growing_spec(telemetry=telemetry, tracking={"mlflow": True, "uri": uri},
                        training={"envs": 1, "batches": 1, "episode_length": 3})
    result = run(spec, registry=tmp_path / "runs.db")
    with Registry.open(tmp_path / "runs.db") as registry:
        recorded = registry.artifacts(result.record.run_id)
    client = MlflowClient(tracking_uri=uri)
    logged = client.list_artifacts(result.record.mlflow_run_id, "profiler")
    assert len(recorded) == 1
    assert [a.path for a in logged] == list(recorded)
    local = client.download_artifacts(result.record.mlflow_run_id, logged[0].path, str(tmp_path))
    assert Path(local).read_bytes() == Path(next(iter(recorded.values()))).read_bytes()
