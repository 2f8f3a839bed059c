"""tolaria: data sets, the host's training and validation epoch, and the governor (rollback).

Entry points: `load_task`, `BatchSchedule`, `build_host_optimizer`, `run_epoch` (or
`train_epoch` + `validate`), `Governor`.
"""

from esper.tolaria.batching import BatchSchedule
from esper.tolaria.datasets import DatasetError, TaskData, load_task
from esper.tolaria.governor import Governor, GovernorVerdict, ModelSnapshot, RollbackResult
from esper.tolaria.host_step import (
    EpochResult,
    TrainResult,
    build_host_optimizer,
    run_epoch,
    train_epoch,
    validate,
)

__all__ = [
    "BatchSchedule", "DatasetError", "TaskData", "load_task", "Governor", "GovernorVerdict",
    "ModelSnapshot", "RollbackResult", "EpochResult", "TrainResult", "build_host_optimizer",
    "run_epoch", "train_epoch", "validate",
]
