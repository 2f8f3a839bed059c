"""`profiler` probe: torch.profiler traces written into the run's artifacts and recorded."""

import json
from pathlib import Path

from esper.experiment.runner import artifact_dir
from tests.simic.probes.env_runs import record_run


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
