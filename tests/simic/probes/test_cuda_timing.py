"""`cuda_timing` probe: step timing on CUDA events on a GPU, on the CPU clock elsewhere."""

import pytest
import torch

from esper.leyline.events import TelemetryEventType as T
from esper.simic.probes.cuda_timing import CpuClock, CudaEventClock, step_clock
from tests.simic.probes.env_runs import record_run


def test_alone_it_times_every_step_and_names_the_cpu_clock_off_a_gpu(tmp_path):
    recorded = record_run(tmp_path, ["cuda_timing"], training={"envs": 2, "batches": 1,
                                                               "episode_length": 3})
    events = recorded.of(T.THROUGHPUT_MEASURED)
    assert sorted((e.env_id, e.epoch) for e in events) == [(env, epoch) for env in range(2)
                                                           for epoch in range(3)]
    for event in events:
        assert event.data.clock == "cpu" and event.data.step_time_ms > 0
        # the throughput probe's own fields stay unmeasured
        assert event.data.dataloader_wait_ms is None and event.data.fps is None


def test_the_clock_is_chosen_once_from_the_device_and_the_probe():
    assert isinstance(step_clock(torch.device("cpu"), cuda_timing=True), CpuClock)
    assert isinstance(step_clock(torch.device("cuda"), cuda_timing=False), CpuClock)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_step_is_timed_with_cuda_events():
    device = torch.device("cuda")
    clock = step_clock(device, cuda_timing=True)
    assert isinstance(clock, CudaEventClock) and clock.name == "cuda"
    clock.start()
    torch.randn(512, 512, device=device) @ torch.randn(512, 512, device=device)
    assert clock.stop() > 0
