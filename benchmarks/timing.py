"""Timing that means something on a shared, noisy machine.

Wall time of a run measured while other processes compete for the two cores mostly measures
the other processes. CPU time of this process (every thread: training, hub, sinks, MLflow's
async logger) is the work the run itself did, and hardly depends on the load beside it. Torch
is pinned to one intra-op thread so that its OpenMP workers do not spin and inflate CPU time;
both sides of a ratio run the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch


class Timing(NamedTuple):
    wall: float  # seconds, elapsed
    cpu: float  # seconds, CPU time of this process (all threads)


def single_threaded_torch() -> None:
    """One torch intra-op thread: CPU time then equals the work done (no spinning workers)."""
    torch.set_num_threads(1)


def timed(work: Callable[[], object]) -> Timing:
    """Wall and CPU seconds of one call of `work`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def median(timings: Sequence[Timing]) -> Timing:
    """The median wall and the median CPU time of repeated measurements."""
    return Timing(statistics.median(t.wall for t in timings),
                  statistics.median(t.cpu for t in timings))


def ratio_line(label: str, numerator: Timing, denominator: Timing, target: str) -> str:
    """`label: cpu ratio (wall ratio)  target` as one printed line."""
    return (f"{label:<31}{numerator.cpu / denominator.cpu:6.3f} CPU time "
            f"({numerator.wall / denominator.wall:.3f} wall)  {target}")
