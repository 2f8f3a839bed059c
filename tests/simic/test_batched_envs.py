"""`training.batch_envs` through the real runner: batched runs are reproducible, fall back to
the per-env loop where the data cannot be stacked, agree with the per-env loop, time their
joint steps, and train escrow's reference hosts (real training on digits, a real runs.db)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from esper.experiment.runner import run
from esper.leyline.events import TelemetryEventType as T
from esper.registry import Registry
from tests.growing_spec import growing_spec

FULL = {"dataset": "digits", "max_train": 300, "max_val": 150, "batch_size": 50}
SPLIT = {"dataset": "digits", "max_train": 250, "max_val": 150, "batch_size": 50,
         "env_data": "split"}  # train shares of 83, 83 and 84 images: not stackable


def _events(path: Path, batch_envs: Any = True, envs: int = 3, episode_length: int = 6,
            **sections: Any) -> list:
    """The events of a small growing run (seeds germinate and blend) recorded to `path`."""
    spec = growing_spec(training={"envs": envs, "batches": 1, "episode_length": episode_length,
                                  "batch_envs": batch_envs},
                        tracking={"mlflow": False}, **sections)
    path.mkdir(exist_ok=True)
    result = run(spec, registry=path / "runs.db")
    with Registry.open(path / "runs.db") as registry:
        return list(registry.events(result.record.run_id))


def _stream(events: list) -> list:
    return [(e.seq, e.event_type, e.batch, e.env_id, e.epoch, e.seed_id, e.slot_id, e.message,
             e.data) for e in events if e.event_type is not T.RUN_FINISHED]


def _epochs(events: list, epoch: int) -> dict[int, Any]:
    """env id -> EPOCH_COMPLETED payload of `epoch`."""
    return {e.env_id: e.data for e in events
            if e.event_type is T.EPOCH_COMPLETED and e.epoch == epoch}


def test_batched_runs_of_one_experiment_give_the_same_event_stream(tmp_path: Path) -> None:
    """Two batched runs of the same spec and seed record identical events, seeds included."""
    first = _events(tmp_path / "a")
    second = _events(tmp_path / "b")
    assert any(e.event_type is T.SEED_GERMINATED for e in first)
    assert _stream(first) == _stream(second)


def test_unstackable_split_data_steps_env_by_env_exactly_as_unbatched(tmp_path: Path) -> None:
    """Split shares of unequal sizes cannot stack: batch_envs on takes the per-env loop and
    records exactly the events of batch_envs off."""
    batched = _events(tmp_path / "on", task=SPLIT)
    unbatched = _events(tmp_path / "off", batch_envs=False, task=SPLIT)
    assert any(e.event_type is T.SEED_GERMINATED for e in batched)
    assert _stream(batched) == _stream(unbatched)


def test_batched_first_epoch_agrees_with_the_per_env_loop(tmp_path: Path) -> None:
    """Every env's epoch 0 is the same, up to float rounding, stacked or env by env."""
    batched = _epochs(_events(tmp_path / "on", task=FULL), 0)
    unbatched = _epochs(_events(tmp_path / "off", batch_envs=False, task=FULL), 0)
    assert sorted(batched) == sorted(unbatched) == [0, 1, 2]
    one_sample = 100.0 / FULL["max_val"] + 1e-9
    for env_id, own in unbatched.items():
        stacked = batched[env_id]
        assert stacked.train_loss == pytest.approx(own.train_loss, abs=1e-4)
        assert stacked.val_loss == pytest.approx(own.val_loss, abs=1e-4)
        assert stacked.train_accuracy == pytest.approx(own.train_accuracy,
                                                       abs=100.0 / FULL["max_train"] + 1e-9)
        assert stacked.val_accuracy == pytest.approx(own.val_accuracy, abs=one_sample)
        assert stacked.host_accuracy == pytest.approx(own.host_accuracy, abs=one_sample)


def test_throughput_gives_each_env_its_share_of_the_joint_step(tmp_path: Path) -> None:
    """Batched, the throughput probe emits one event per env per epoch, all envs of an epoch
    carrying the same positive step time and a measured data-loading wait."""
    events = _events(tmp_path, episode_length=3, telemetry={"probes": ["throughput"]})
    measured = [e for e in events if e.event_type is T.THROUGHPUT_MEASURED]
    assert sorted((e.epoch, e.env_id) for e in measured) == [
        (epoch, env) for epoch in range(3) for env in range(3)]
    for epoch in range(3):
        payloads = [e.data for e in measured if e.epoch == epoch]
        assert len({p.step_time_ms for p in payloads}) == 1
        assert len({p.dataloader_wait_ms for p in payloads}) == 1
        for p in payloads:
            assert p.step_time_ms > 0
            assert p.dataloader_wait_ms is not None and p.dataloader_wait_ms > 0
            assert p.fps == pytest.approx(1000.0 / p.step_time_ms)


def test_escrow_reference_hosts_train_in_the_stack(tmp_path: Path) -> None:
    """Reward mode escrow, batched: every epoch records the reference host's accuracy, and at
    epoch 0 it is the per-env loop's up to float rounding."""
    escrow = {"mode": "escrow"}
    batched = _events(tmp_path / "on", task=FULL, reward=escrow)
    unbatched = _events(tmp_path / "off", batch_envs=False, task=FULL, reward=escrow)
    epochs = [e.data for e in batched if e.event_type is T.EPOCH_COMPLETED]
    assert len(epochs) == 3 * 6
    assert all(p.reference_accuracy is not None for p in epochs)
    stacked, own = _epochs(batched, 0), _epochs(unbatched, 0)
    for env_id in range(3):
        assert stacked[env_id].reference_accuracy == pytest.approx(
            own[env_id].reference_accuracy, abs=100.0 / FULL["max_val"] + 1e-9)


@pytest.mark.parametrize("reward", ["shaped", "escrow"])
@pytest.mark.parametrize("batch_envs", [True, False])
def test_every_training_forward_finds_its_batch_asked_for(tmp_path: Path, monkeypatch,
                                                          batch_envs: bool, reward: str) -> None:
    """The data-loading wait counts every training batch's gathering, stacked or not, the
    escrow reward's reference hosts' included: each training forward (one per batch, for all
    models at once when stacked) finds the mark its batch set. Reading every batch up front
    left all but the epoch's first unmeasured, and the reference hosts were not watched."""
    from esper.simic.probes.throughput import DataWait

    forwards = {"marked": 0, "unmarked": 0}
    started = DataWait.forward_started

    def counting(self: DataWait, module: Any, args: Any) -> None:
        forwards["marked" if self._asked_at is not None else "unmarked"] += 1
        started(self, module, args)

    monkeypatch.setattr(DataWait, "forward_started", counting)
    epochs, envs = 2, 3
    _events(tmp_path, batch_envs=batch_envs, envs=envs, episode_length=epochs, task=FULL,
            telemetry={"probes": ["throughput"]}, reward={"mode": reward})
    batches = -(-FULL["max_train"] // FULL["batch_size"])
    models = envs * (2 if reward == "escrow" else 1)
    assert forwards["marked"] == epochs * batches * (1 if batch_envs else models)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA device: run on a GPU machine (pytest -k cuda)")
def test_on_cuda_stacked_envs_run_and_are_timed_on_the_cuda_clock(tmp_path: Path) -> None:
    """`training.device: cuda`, stacked (auto stacks on a GPU): the run finishes, its steps
    are timed with CUDA events, and its first epoch agrees with the per-env loop on cuda."""
    probes = {"probes": ["throughput", "cuda_timing"]}
    cuda = {"envs": 3, "batches": 1, "episode_length": 3, "device": "cuda"}
    runs = {}
    for mode in ("auto", False):
        spec = growing_spec(training={**cuda, "batch_envs": mode}, task=FULL, telemetry=probes,
                            tracking={"mlflow": False})
        path = tmp_path / str(mode)
        path.mkdir()
        result = run(spec, registry=path / "runs.db")
        with Registry.open(path / "runs.db") as registry:
            runs[mode] = list(registry.events(result.record.run_id))
    timed = [e.data for e in runs["auto"] if e.event_type is T.THROUGHPUT_MEASURED]
    assert len(timed) == 3 * 3 and all(p.clock == "cuda" and p.step_time_ms > 0 for p in timed)
    stacked_epoch, own_epoch = _epochs(runs["auto"], 0), _epochs(runs[False], 0)
    for env_id in range(3):
        assert stacked_epoch[env_id].val_loss == pytest.approx(own_epoch[env_id].val_loss,
                                                               abs=1e-3)


@pytest.mark.parametrize("batch_envs", [True, False])
def test_each_env_is_given_its_share_of_the_timed_step(tmp_path: Path, monkeypatch,
                                                       batch_envs: bool) -> None:
    """With a clock that reads 300 ms per step, the 3 envs of a stacked step report 100 ms
    each (fps 10), and envs stepped one by one 300 ms each."""
    from esper.simic.probes.cuda_timing import CpuClock

    monkeypatch.setattr(CpuClock, "stop", lambda self: 300.0)
    events = _events(tmp_path, batch_envs=batch_envs, episode_length=2,
                     telemetry={"probes": ["throughput"]})
    expected = 100.0 if batch_envs else 300.0
    timed = [e.data for e in events if e.event_type is T.THROUGHPUT_MEASURED]
    assert len(timed) == 3 * 2
    assert all(p.step_time_ms == expected and p.fps == pytest.approx(1000.0 / expected)
               for p in timed)


@pytest.mark.parametrize(("batch_envs", "task", "stacked"), [
    ("auto", FULL, True), (False, FULL, False), (True, SPLIT, False)])
def test_training_started_records_whether_the_envs_were_stacked(
        tmp_path: Path, batch_envs: Any, task: dict, stacked: bool) -> None:
    """The resolved mode is recorded: auto on a small host stacks, false does not, and split
    shares of unequal sizes step env by env even when true is asked for."""
    events = _events(tmp_path, batch_envs=batch_envs, episode_length=1, task=task)
    (started,) = [e.data for e in events if e.event_type is T.TRAINING_STARTED]
    assert started.stacked is stacked


def test_the_profiler_steps_once_per_joint_step(tmp_path: Path, monkeypatch) -> None:
    """Stacked, the profiler's schedule counts joint steps: one profiler step per epoch, not
    one per env (5 envs stepped back to back would pass its whole window with no work)."""
    from esper.simic.probes.profiler import ProfilerProbe

    steps = []
    finished = ProfilerProbe.step_finished
    monkeypatch.setattr(ProfilerProbe, "step_finished",
                        lambda self: (steps.append(1), finished(self)))
    _events(tmp_path, envs=5, episode_length=3, telemetry={"probes": ["profiler"]})
    assert len(steps) == 3
