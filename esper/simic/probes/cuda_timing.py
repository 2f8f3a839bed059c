"""`cuda_timing` probe: time env steps with CUDA events on a GPU, else with the CPU clock.

On a CUDA device, kernels run asynchronously, so a host clock read when the step returns can
miss work still queued; a pair of CUDA events recorded around the step and read after the end
event completes measures the device's time. Off a GPU (or with the probe off) the step is timed
with `time.perf_counter`. The THROUGHPUT_MEASURED event names the clock it was read on.
"""

from __future__ import annotations

import time
from typing import Protocol

import torch


class StepClock(Protocol):
    """Times one step: `start()` before it, `stop()` after it returns the milliseconds."""

    name: str  # "cuda" or "cpu", as recorded on THROUGHPUT_MEASURED

    def start(self) -> None: ...

    def stop(self) -> float: ...


class CpuClock:
    """The host's monotonic performance counter."""

    name = "cpu"

    def __init__(self) -> None:
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> float:
        return (time.perf_counter() - self._started) * 1000.0


class CudaEventClock:
    """A pair of CUDA events on the current stream of `device`; `stop` waits for the end event."""

    name = "cuda"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record(torch.cuda.current_stream(self.device))

    def stop(self) -> float:
        self._end.record(torch.cuda.current_stream(self.device))
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))


def step_clock(device: torch.device, cuda_timing: bool) -> StepClock:
    """CUDA events when `cuda_timing` is on and `device` is a GPU; the CPU clock otherwise."""
    if cuda_timing and device.type == "cuda":
        return CudaEventClock(device)
    return CpuClock()
