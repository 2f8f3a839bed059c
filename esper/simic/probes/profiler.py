"""`profiler` probe: torch.profiler over a window of env steps, traces kept with the run.

The profiler runs for the whole env loop on the schedule of `telemetry.profiler` (skip `wait`
steps, warm up for `warmup`, record `active`, `repeat` times; repeat 0 = until the run ends),
one profiler step per env step (a training epoch and its validation), or per joint step when the
envs step as one stacked computation (`training.batch_envs`). Each recorded window is
written in TensorBoard's format (`torch.profiler.tensorboard_trace_handler`) into
`<run artifact dir>/profiler/`; the runner records every trace as an artifact of the run
(`profiler/<file name>`), where `tensorboard --logdir` and the MLflow side can find them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from esper.leyline.config import ProfilerOptions

TRACE_DIR = "profiler"  # under the run's artifact directory; also the artifacts' name prefix
TRACE_PATTERN = "*.pt.trace.json"  # what tensorboard_trace_handler writes


class ProfilerProbe:
    """One torch.profiler session over the run."""

    def __init__(self, options: ProfilerOptions, artifact_dir: Path, device: torch.device) -> None:
        self.directory = artifact_dir / TRACE_DIR
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self._profile = profile(
            activities=activities,
            schedule=schedule(wait=options.wait, warmup=options.warmup, active=options.active,
                              repeat=options.repeat),
            on_trace_ready=tensorboard_trace_handler(str(self.directory), worker_name="esper"),
        )

    def run_started(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._profile.start()

    def step_finished(self) -> None:
        """One step done: one env's, or every env's stacked (`training.batch_envs`)."""
        with warnings.catch_warnings():
            # Each window's events are written to disk at its end; torch's warning that the
            # in-memory events are cleared between windows (acc_events) is moot here.
            warnings.filterwarnings("ignore", message=".*Profiler clears events")
            self._profile.step()

    def run_finished(self) -> dict[str, Path]:
        """Stop (a window still recording is written) and name the traces written."""
        self._profile.stop()
        return {f"{TRACE_DIR}/{path.name}": path
                for path in sorted(self.directory.glob(TRACE_PATTERN))}
