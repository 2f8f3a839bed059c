"""`throughput` probe: per env per epoch, the step time, the data-loading wait and the fps.

One env step is one host training epoch and its validation (`run_epoch`), with its reference
host's (reward mode escrow) when it has one. With `training.batch_envs` the envs take their
steps together, as one stacked computation (`run_epoch_stacked`): that joint step is timed,
and each env is given its share, the joint time divided by the envs (the wait alike). THROUGHPUT_MEASURED carries, per env per epoch:
- step_time_ms: the step's wall time, on the clock `cuda_timing` chose (the CPU clock unless
  that probe is on and the device is a GPU);
- dataloader_wait_ms: the time the step spent getting its training batches, measured, never
  assumed: building the epoch's index batches (the shared seeded permutation and its split,
  `TimedBatchSchedule`), plus for every batch the time from the training loop asking for it to
  the model's forward pass starting, which is gathering the batch's samples from the data set
  by index (and the gradient reset, a few microseconds, that sits in the same gap). Validation
  data is not counted;
- fps: env steps per second, 1000 / step_time_ms (None when step_time_ms is 0).
With only `cuda_timing` on, the event carries step_time_ms and its clock, and these two
fields stay None. The event keeps EPOCH_COMPLETED lean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn

from esper.leyline.emitter import Emitter
from esper.leyline.events import TelemetryEventType, ThroughputPayload
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext
from esper.simic.probes.cuda_timing import StepClock
from esper.tolaria.batching import BatchSchedule


class DataWait:
    """The time one env step has waited for its training data so far."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._asked_at: float | None = None  # a batch was asked for, its forward has not begun

    def reset(self) -> None:
        self.seconds, self._asked_at = 0.0, None

    def add(self, seconds: float) -> None:
        self.seconds += seconds

    def batch_asked(self) -> None:
        self._asked_at = time.perf_counter()

    def forward_started(self, module: nn.Module, args: Any) -> None:
        """Forward pre-hook of each env's model: the batch asked for is ready. Forwards nobody
        asked a batch for (validation, diagnostics) find no mark and are ignored."""
        if self._asked_at is not None:
            self.seconds += time.perf_counter() - self._asked_at
            self._asked_at = None


class TimedBatches(list[torch.Tensor]):
    """An epoch's index batches that mark when the training loop asks for each one."""

    def __init__(self, batches: Sequence[torch.Tensor], wait: DataWait) -> None:
        super().__init__(batches)
        self.wait = wait

    def __iter__(self) -> Iterator[torch.Tensor]:
        for index in super().__iter__():
            self.wait.batch_asked()
            yield index


class TimedBatchSchedule(BatchSchedule):
    """The run's shared batch order (see `BatchSchedule`), timing the batches of every step."""

    def __init__(self, n_train: int, n_val: int, batch_size: int, seed: int,
                 env_data: Literal["full", "split"], envs: int, wait: DataWait) -> None:
        super().__init__(n_train, n_val, batch_size, seed, env_data, envs)
        self.wait = wait

    def train_batches(self, epoch: int, env_id: int) -> list[torch.Tensor]:
        started = time.perf_counter()
        batches = super().train_batches(epoch, env_id)
        self.wait.add(time.perf_counter() - started)
        return TimedBatches(batches, self.wait)


class ThroughputProbe:
    """Times every env step and emits THROUGHPUT_MEASURED; `wait` is None when only
    `cuda_timing` is on (no data-loading wait, no fps)."""

    def __init__(self, hub: Emitter, clock: StepClock, wait: DataWait | None) -> None:
        self.hub, self.clock, self.wait = hub, clock, wait

    def episode_started(self, envs: Sequence[EnvState], stack: nn.Module | None) -> None:
        """Watch every fresh model (the reference hosts' too), and their stack if they step as
        one, for the start of their forward passes."""
        if self.wait is not None:
            references = [env.reference.model for env in envs if env.reference is not None]
            for model in ([env.model for env in envs] + references
                          + ([] if stack is None else [stack])):
                model.register_forward_pre_hook(self.wait.forward_started)

    def steps_started(self) -> None:
        if self.wait is not None:
            self.wait.reset()
        self.clock.start()

    def steps_finished(self, contexts: Sequence[StepContext]) -> None:
        """Emit each env's share of the step just timed (its whole time when it is one env's)."""
        share = 1.0 / len(contexts)
        step_ms = self.clock.stop() * share
        wait_ms = fps = None
        if self.wait is not None:
            wait_ms = self.wait.seconds * 1000.0 * share
            fps = 1000.0 / step_ms if step_ms > 0 else None
        for ctx in contexts:
            self.hub.emit(TelemetryEventType.THROUGHPUT_MEASURED, ThroughputPayload(
                step_time_ms=step_ms, clock=self.clock.name, dataloader_wait_ms=wait_ms,
                fps=fps), batch=ctx.batch, env_id=ctx.env_id, epoch=ctx.epoch)
