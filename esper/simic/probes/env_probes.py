"""The env-side probes a run switched on, composed for the env loop.

Which probes run is decided once, at construction, from `telemetry.probes`: a probe that is off
has no object here, so none of its code runs, it measures nothing and its fields stay None. The
env loop calls the hooks below at fixed points; each hook runs the enabled probes that take part
in it, in a fixed order:

    run_started                      profiler
    episode_started(envs, stack)     seed_telemetry, throughput
    steps_started(envs) [run_epoch]  diagnostics (per env), throughput / cuda_timing
    steps_finished(envs)             throughput / cuda_timing, diagnostics (per env), profiler
    epoch_validated(env)             seed_telemetry, trends, reward_hacking, diagnostics
    batch_fields(payload)            memory (fills BATCH_COMPLETED's fields)
    batch_completed(payload)         memory
    run_finished -> artifacts        profiler

`steps_started`/`steps_finished` bracket one step: one env's (`run_epoch`), or every env's
stacked as one computation (`run_epoch_stacked`, `training.batch_envs`).

The module also owns the run's `BatchSchedule`: with `throughput` on it is the timed one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from esper.kasmina.stacked import StackedModels
from esper.leyline.config import ExperimentSpec
from esper.leyline.emitter import Emitter
from esper.leyline.events import BatchCompletedPayload
from esper.simic.env_state import EnvState
from esper.simic.lifecycle_events import StepContext
from esper.simic.probes.cuda_timing import step_clock
from esper.simic.probes.diagnostics import DiagnosticsProbe
from esper.simic.probes.memory import MemoryProbe
from esper.simic.probes.profiler import ProfilerProbe
from esper.simic.probes.reward_hacking import RewardHackingProbe
from esper.simic.probes.seed_telemetry import SeedTelemetryProbe
from esper.simic.probes.throughput import DataWait, ThroughputProbe, TimedBatchSchedule
from esper.simic.probes.trends import TrendsProbe
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import TaskData

StepHook = Callable[[EnvState, StepContext], None]
EpochHook = Callable[[EnvState, StepContext, bool], None]
BatchHook = Callable[[int, BatchCompletedPayload], None]


class EnvProbes:
    """The enabled env-side probes of one run, and the hooks the env loop calls.

    :param artifact_dir: where the run keeps its files; the `profiler` probe needs it.
    """

    def __init__(self, spec: ExperimentSpec, data: TaskData, hub: Emitter,
                 device: torch.device, artifact_dir: Path | None) -> None:
        telemetry = spec.telemetry
        on = telemetry.enabled
        schedule_args = (data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                         spec.task.env_data, spec.training.envs)
        wait = DataWait() if on("throughput") else None
        self.schedule = (BatchSchedule(*schedule_args) if wait is None
                         else TimedBatchSchedule(*schedule_args, wait=wait))
        seed_telemetry = (SeedTelemetryProbe(spec.training.episode_length)
                          if on("seed_telemetry") else None)
        trends = TrendsProbe(telemetry.trends, hub) if on("trends") else None
        timing = (ThroughputProbe(hub, step_clock(device, on("cuda_timing")), wait)
                  if on("throughput") or on("cuda_timing") else None)
        profiler = None
        if on("profiler"):
            assert artifact_dir is not None, "the profiler probe needs the run's artifact directory"
            profiler = ProfilerProbe(telemetry.profiler, artifact_dir, device)
        diagnostics = (DiagnosticsProbe(telemetry.diagnostics, hub, data, self.schedule)
                       if on("diagnostics") else None)
        memory = MemoryProbe(telemetry.memory, hub, device) if on("memory") else None
        hacking = (RewardHackingProbe(telemetry.reward_hacking, hub)
                   if on("reward_hacking") else None)

        self.profiler = profiler
        self.memory = memory
        self.timing = timing
        self.seed_telemetry = seed_telemetry
        self._step_started: tuple[StepHook, ...] = tuple(
            p.step_started for p in (diagnostics,) if p is not None)
        self._step_finished: tuple[StepHook, ...] = tuple(
            p.step_finished for p in (diagnostics,) if p is not None)
        self._epoch_validated: tuple[EpochHook, ...] = tuple(
            p.epoch_validated for p in (seed_telemetry, trends, hacking, diagnostics)
            if p is not None)
        self._batch_completed: tuple[BatchHook, ...] = tuple(
            p.batch_completed for p in (memory,) if p is not None)

    def run_started(self) -> None:
        if self.profiler is not None:
            self.profiler.run_started()

    def run_finished(self) -> dict[str, Path]:
        """Stop what runs for the whole loop; artifact name -> file the probes wrote."""
        return {} if self.profiler is None else self.profiler.run_finished()

    def episode_started(self, envs: Sequence[EnvState], stack: StackedModels | None) -> None:
        """Fresh envs (and models) for a new batch of episodes; `stack`: their models stacked,
        when the envs step as one computation."""
        if self.seed_telemetry is not None:
            self.seed_telemetry.episode_started(envs)
        if self.timing is not None:
            self.timing.episode_started(envs, stack)

    def steps_started(self, envs: Sequence[EnvState], contexts: Sequence[StepContext]) -> None:
        """Right before `envs` train and validate one epoch, as one step."""
        for env, ctx in zip(envs, contexts):
            for hook in self._step_started:
                hook(env, ctx)
        if self.timing is not None:
            self.timing.steps_started()

    def steps_finished(self, envs: Sequence[EnvState], contexts: Sequence[StepContext]) -> None:
        """Right after `envs` trained and validated, before the governor looks at them."""
        if self.timing is not None:
            self.timing.steps_finished(contexts)
        for env, ctx in zip(envs, contexts):
            for hook in self._step_finished:
                hook(env, ctx)
        if self.profiler is not None:
            self.profiler.step_finished()

    def epoch_validated(self, env: EnvState, ctx: StepContext, stabilised: bool) -> None:
        """After the governor and the signal tracker, before the policy observes `env`;
        `stabilised`: the host first counted as stabilised on this epoch."""
        for hook in self._epoch_validated:
            hook(env, ctx, stabilised)

    def batch_fields(self, payload: BatchCompletedPayload) -> BatchCompletedPayload:
        """BATCH_COMPLETED with the probe fields measured now."""
        return payload if self.memory is None else self.memory.batch_fields(payload)

    def batch_completed(self, batch: int, payload: BatchCompletedPayload) -> None:
        """After BATCH_COMPLETED (`payload`) was emitted."""
        for hook in self._batch_completed:
            hook(batch, payload)
