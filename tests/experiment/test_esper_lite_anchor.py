"""experiments/esper_lite_anchor.yaml and host.pooling in compiled and real runs."""

from pathlib import Path

import pytest

from esper.experiment import load
from esper.experiment.compile import CompileError, compile_spec
from esper.experiment.runner import run
from esper.kasmina.host import CNNHost
from esper.registry import RunStatus
from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import load_task
from tests.growing_spec import growing_spec
from tests.spec_factory import tiny_spec

ANCHOR = Path(__file__).parents[2] / "experiments" / "esper_lite_anchor.yaml"


def test_the_anchor_does_esper_lite_s_work_per_env_epoch() -> None:
    spec = load(ANCHOR)
    training = spec.training
    assert (training.envs, training.episode_length, training.batches) == (4, 150, 2)
    assert spec.policy.type == "lstm" and spec.reward.mode == "shaped"
    data = load_task(spec.task, spec.seed)
    assert data.image_shape == (3, 32, 32) and data.num_classes == 10
    schedule = BatchSchedule(data.n_train, data.n_val, spec.task.batch_size, spec.seed,
                             spec.task.env_data, training.envs)
    for env in range(training.envs):
        assert [len(b) for b in schedule.train_batches(7, env)] == [64, 64, 64]  # 192 images
        val = schedule.val_indices(env)
        assert val is not None and len(val) == 50
    host = CNNHost(spec.host, *data.image_shape[:2], data.num_classes)
    assert host.channels == [2, 4, 8] and host.spatial_sizes == [32, 32, 32]


def test_a_shortened_anchor_runs_to_the_end(tmp_path) -> None:
    spec = load(ANCHOR, ("training.batches=1", "training.episode_length=3",
                         "tracking.mlflow=false"))
    result = run(spec, registry=tmp_path / "runs.db")
    assert result.record.status is RunStatus.FINISHED
    assert result.summary.env_epochs == 4 * 3


def test_a_run_without_pooling_grows_and_fossilises_seeds(tmp_path) -> None:
    spec = growing_spec(host={"pooling": "none"}, tracking={"mlflow": False})
    result = run(spec, registry=tmp_path / "runs.db")
    assert result.record.status is RunStatus.FINISHED
    assert result.summary.seeds_germinated >= 1 and result.summary.seeds_fossilized >= 1


@pytest.mark.parametrize("pooling", ["every_block", "none"])
def test_the_one_image_batch_check_follows_the_host_s_pooling(pooling) -> None:
    # digits are 8x8: with pooling, block 3 of 4 works at 1x1, where a batch of one image
    # cannot train; without pooling every block works at 8x8
    spec = tiny_spec(host={"n_blocks": 4, "pooling": pooling},
                     task={"dataset": "digits", "max_train": 64, "max_val": 32, "batch_size": 1})
    if pooling == "none":
        compile_spec(spec)
    else:
        with pytest.raises(CompileError, match="host block 3 of 4 works at 1x1"):
            compile_spec(spec)
