"""One shared, seeded batch order per epoch, and how it is divided among the envs."""

from __future__ import annotations

from typing import Literal

import torch


class BatchSchedule:
    """Batch indices for every env, epoch by epoch.

    The training permutation of epoch e is drawn from a generator seeded with (seed, e), once,
    and shared: with ``env_data="full"`` every env trains on all of it in the same order; with
    ``"split"`` env i takes the i-th contiguous share of it (and of the validation set).
    """

    def __init__(
        self,
        n_train: int,
        n_val: int,
        batch_size: int,
        seed: int,
        env_data: Literal["full", "split"],
        envs: int,
    ) -> None:
        assert envs >= 1 and batch_size >= 1
        if env_data == "split":
            assert n_train >= envs and n_val >= envs, "split needs at least one sample per env"
        self.n_train, self.n_val = n_train, n_val
        self.batch_size, self.seed = batch_size, seed
        self.env_data, self.envs = env_data, envs
        self._epoch: int | None = None
        self._permutation = torch.empty(0, dtype=torch.int64)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The shared training order of `epoch`, (n_train,) int64."""
        if self._epoch != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._permutation = torch.randperm(self.n_train, generator=generator)
            self._epoch = epoch
        return self._permutation

    def train_batches(self, epoch: int, env_id: int) -> list[torch.Tensor]:
        """Index tensors of env `env_id`'s training batches in `epoch`. A last batch of one image
        joins the batch before it: BatchNorm cannot train on one value per channel (a host
        block that works at 1x1 raised a ValueError mid-run)."""
        order = self.permutation(epoch)
        if self.env_data == "split":
            order = torch.tensor_split(order, self.envs)[env_id]
        batches = list(torch.split(order, self.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2:] = [torch.cat(batches[-2:])]
        return batches

    def val_indices(self, env_id: int) -> torch.Tensor | None:
        """Validation indices of env `env_id`: None means the whole validation set."""
        if self.env_data == "full":
            return None
        return torch.tensor_split(torch.arange(self.n_val), self.envs)[env_id]
