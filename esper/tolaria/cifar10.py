"""Reader for the CIFAR-10 python batches (``cifar-10-batches-py``): no download, no torchvision.

Each file is a pickled dict with ``b"data"`` (uint8 [N, 3072], channel-major 3x32x32) and
``b"labels"`` (N ints). Unpickling is restricted to the numpy types such a file needs, so a
malicious pickle cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from esper.leyline.errors import EsperError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
EXPECTED = f"{', '.join(TRAIN_FILES)} and {TEST_FILE} (the CIFAR-10 python version)"
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # protocol 2 stores bytes through it
}


class DatasetError(EsperError):
    """A data set cannot be read: names the path and what was expected there."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"disallowed global {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) float32 in [0, 1] and labels (N,) int64 of one batch file.

    Raises:
        DatasetError: the file is missing or is not a CIFAR-10 batch.
    """
    if not path.is_file():
        raise DatasetError(f"CIFAR-10 file {path} is missing; expected {EXPECTED} in {path.parent}")
    try:
        with path.open("rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as e:
        raise DatasetError(f"CIFAR-10 file {path} is not a readable python batch: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"CIFAR-10 file {path} is malformed: expected a dict with b'data' and b'labels'")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"CIFAR-10 file {path} is malformed: b'data' must be uint8 [N, 3072], "
                           f"got {data.dtype} {list(data.shape)}")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() > 9)
    ):
        raise DatasetError(f"CIFAR-10 file {path} is malformed: b'labels' must be {data.shape[0]} "
                           "integers in 0..9")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return images, torch.from_numpy(labels.astype(np.int64))


def read_cifar10(data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_images, train_labels, test_images, test_labels) from `data_dir`.

    Raises:
        DatasetError: no directory given, the directory or a file is missing, or a file is
            malformed.
    """
    if data_dir is None:
        raise DatasetError(f"task.data_dir is required for cifar10: a directory with {EXPECTED}")
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"CIFAR-10 directory {root} does not exist; expected it to hold {EXPECTED}")
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (root / name).is_file()]
    if missing:
        raise DatasetError(f"CIFAR-10 directory {root} lacks {', '.join(missing)}; expected {EXPECTED}")
    train = [read_batch(root / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(root / TEST_FILE)
    return (torch.cat([images for images, _ in train]), torch.cat([labels for _, labels in train]),
            test_images, test_labels)
