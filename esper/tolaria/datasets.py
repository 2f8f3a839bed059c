"""Task data: load a data set once, as tensors shared by every env.

`load_task(task, seed)` returns a `TaskData` with float32 NCHW images and int64 labels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from esper.leyline.config import SyntheticConfig, TaskConfig
from esper.tolaria.cifar10 import DatasetError, read_cifar10

__all__ = ["DatasetError", "TaskData", "load_task", "load_digits", "make_synthetic"]


@dataclass(frozen=True)
class TaskData:
    """Train and validation tensors of one task, prepared once and shared by the envs."""

    name: str
    train_images: torch.Tensor  # (N_train, C, H, W) float32
    train_labels: torch.Tensor  # (N_train,) int64
    val_images: torch.Tensor  # (N_val, C, H, W) float32
    val_labels: torch.Tensor  # (N_val,) int64
    num_classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.train_images.shape[1:]
        return (c, h, w)

    @property
    def n_train(self) -> int:
        return self.train_images.shape[0]

    @property
    def n_val(self) -> int:
        return self.val_images.shape[0]

    def to(self, device: torch.device | str) -> TaskData:
        """The same data on `device` (one copy, shared by every env on that device)."""
        return TaskData(
            name=self.name,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            val_images=self.val_images.to(device),
            val_labels=self.val_labels.to(device),
            num_classes=self.num_classes,
        )


def load_task(task: TaskConfig, seed: int) -> TaskData:
    """Load `task.dataset`, then keep at most `max_train` / `max_val` images of each split.

    Raises:
        DatasetError: the CIFAR-10 directory or one of its files is missing or malformed.
    """
    if task.dataset == "digits":
        data = load_digits(task.val_fraction, seed)
    elif task.dataset == "cifar10":
        train_images, train_labels, val_images, val_labels = read_cifar10(task.data_dir)
        data = TaskData("cifar10", train_images, train_labels, val_images, val_labels, 10)
    else:
        data = make_synthetic(task.synthetic, seed)
    return _subset(data, task.max_train, task.max_val)


def _subset(data: TaskData, max_train: int | None, max_val: int | None) -> TaskData:
    return TaskData(
        name=data.name,
        train_images=data.train_images[:max_train],
        train_labels=data.train_labels[:max_train],
        val_images=data.val_images[:max_val],
        val_labels=data.val_labels[:max_val],
        num_classes=data.num_classes,
    )


def digits_file() -> Path:
    """scikit-learn's bundled digits table (``sklearn/datasets/data/digits.csv.gz``), found
    without importing scikit-learn: ``sklearn.datasets`` takes about a second to import, in
    every run; its own loader reads this same file with ``np.loadtxt``."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetError("task.dataset digits needs scikit-learn (pip install scikit-learn)")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetError(f"scikit-learn's digits table is not at {path}: reinstall "
                           "scikit-learn")
    return path


def load_digits(val_fraction: float, seed: int) -> TaskData:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), pixels / 16, split by a
    permutation seeded with `seed`: the last round(N * val_fraction) images are validation."""
    table = np.loadtxt(digits_file(), delimiter=",")  # (N, 65): 64 pixels, then the label
    pixels = table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0
    images = torch.from_numpy(pixels)[:, None]  # (N, 1, 8, 8)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))  # (N,)
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    n_val = round(images.shape[0] * val_fraction)
    train, val = order[n_val:], order[:n_val]
    return TaskData("digits", images[train], labels[train], images[val], labels[val], 10)


def make_synthetic(config: SyntheticConfig, seed: int) -> TaskData:
    """Seeded images with class structure: each class has a smooth random pattern
    (a 4x4 grid upsampled to size x size), and an image is its class pattern plus unit noise."""
    generator = torch.Generator().manual_seed(seed)
    c, size, k = config.channels, config.size, config.classes
    grid = torch.randn(k, c, 4, 4, generator=generator)  # (K, C, 4, 4)
    patterns = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, k, (n,), generator=generator)  # (n,)
        noise = torch.randn(n, c, size, size, generator=generator)  # (n, C, S, S)
        return patterns[labels] + noise, labels

    train_images, train_labels = sample(config.n_train)
    val_images, val_labels = sample(config.n_val)
    return TaskData("synthetic", train_images, train_labels, val_images, val_labels, k)
