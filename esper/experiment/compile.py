"""Compile a spec into the pieces of the pipeline: device, data, policy."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from esper.kasmina.host import block_sizes
from esper.leyline.config import ExperimentSpec
from esper.leyline.errors import EsperError
from esper.simic.determinism import seed_everything
from esper.simic.ppo_policy import PPOPolicy
from esper.tamiyo.heuristic import HeuristicPolicy
from esper.tamiyo.policy import Policy
from esper.tamiyo.random_policy import RandomPolicy
from esper.tolaria.datasets import TaskData, load_task


class CompileError(EsperError):
    """The experiment is valid but cannot be built on this machine."""

    exit_code = 2


@dataclass(frozen=True)
class Pipeline:
    """What the env loop needs, built from a spec before any run row is written."""

    device: torch.device
    data: TaskData
    policy: Policy


def compile_spec(spec: ExperimentSpec) -> Pipeline:
    """Seed the run and build its device, data and policy.

    Raises:
        CompileError: no CUDA device for `training.device: cuda`; data that does not fit in
            memory; a training or validation set with no image, or (`task.env_data: split`)
            fewer images than envs; a training batch of one image at a 1x1 host block.
        CheckpointError: `policy.init_from` cannot be loaded into this policy.
        DatasetError: the data set cannot be read.
    """
    seed_everything(spec.seed)
    device = _device(spec.training.device)
    try:
        data = load_task(spec.task, spec.seed).to(device)
    except RuntimeError as error:  # torch's allocator, for synthetic images of a huge size
        tried = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", str(error))
        if tried is None:
            raise
        raise CompileError(
            f"the {spec.task.dataset} data set does not fit in memory (one tensor of "
            f"{int(tried[1]) / 2**30:,.1f} GiB); expected fewer or smaller images "
            "(task.synthetic n_train, n_val, size, channels; task.max_train, max_val)") from None
    _check_data(spec, data)
    return Pipeline(device, data, _policy(spec))


def _check_data(spec: ExperimentSpec, data: TaskData) -> None:
    """What the env loop needs of the data's size: an image to train on and one to validate on,
    per env when the envs split the data."""
    task, envs = spec.task, spec.training.envs
    for part, count in (("training", data.n_train), ("validation", data.n_val)):
        if count == 0:
            total = data.n_train + data.n_val
            cause = (f" (task.val_fraction {task.val_fraction} of its {total} images leaves it "
                     "none)" if task.dataset == "digits" else "")
            raise CompileError(f"the {part} set of task {data.name} has no image{cause}; "
                               "expected at least one")
        if task.env_data == "split" and count < envs:
            raise CompileError(
                f"task.env_data is 'split' but the {part} set has {count} image"
                f"{'s' if count != 1 else ''} for {envs} envs (training.envs); expected at "
                "least one image per env (fewer envs, more images, or env_data: full)")
    _check_single_image_batches(spec, data)


def _check_single_image_batches(spec: ExperimentSpec, data: TaskData) -> None:
    """BatchNorm in training cannot normalise one value per channel: a training batch of one
    image reaching a host block whose output is 1x1 raised a ValueError mid-run. A last batch
    of one joins the batch before it (BatchSchedule); batches of one remain when
    task.batch_size is 1 or an env trains on a single image."""
    sizes = block_sizes(data.image_shape[1], spec.host.n_blocks, spec.host.pooling)[:-1]
    blocks_at_1x1 = [block for block, size in enumerate(sizes) if size == 1]
    task = spec.task
    smallest = data.n_train if task.env_data == "full" else data.n_train // spec.training.envs
    if blocks_at_1x1 and (task.batch_size == 1 or smallest == 1):
        raise CompileError(
            f"a training batch would hold one image (task.batch_size {task.batch_size}, "
            f"{smallest} training image{'s' if smallest != 1 else ''} per env), and host block "
            f"{blocks_at_1x1[0]} of {spec.host.n_blocks} works at 1x1 on these "
            f"{data.image_shape[1]}x{data.image_shape[2]} images, where BatchNorm needs more "
            "than one value per channel; expected a task.batch_size and training images per "
            "env of at least 2, fewer host.n_blocks, or host.pooling: none")


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise CompileError("training.device is 'cuda' but no CUDA device is available "
                           "(use --set training.device=cpu, or auto)")
    return torch.device(choice)


def _policy(spec: ExperimentSpec) -> Policy:
    kind = spec.policy.type
    if kind == "heuristic":
        return HeuristicPolicy(spec.policy.heuristic, len(spec.blueprints),
                               spec.slots.min_prune_age, spec.gates)
    if kind == "random":
        return RandomPolicy(len(spec.blueprints), spec.slots.min_prune_age, spec.seed)
    policy = PPOPolicy(spec)
    if spec.policy.init_from is not None:
        policy.load(spec.policy.init_from)
    return policy
