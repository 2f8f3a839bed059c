"""Data sets: digits split determinism, synthetic data, the CIFAR-10 reader and its errors."""

import dataclasses
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from esper.experiment import spec_from_dict
from esper.tolaria.datasets import DatasetError, load_digits, load_task


def task(**fields: object):
    return spec_from_dict({"name": "t", "task": fields}).task


def test_digits_default_split() -> None:
    data = load_task(task(), seed=0)
    assert (data.n_train, data.n_val) == (1438, 359) and data.num_classes == 10
    assert data.image_shape == (1, 8, 8)
    assert data.train_images.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    assert data.train_images.min() >= 0.0 and data.train_images.max() == 1.0  # pixels / 16


def test_digits_are_scikit_learns_read_without_importing_it() -> None:
    """The table esper reads is the one sklearn.datasets.load_digits returns; reading it imports
    no sklearn.datasets (about a second in every run)."""
    import subprocess
    import sys

    code = ("import sys; from esper.tolaria.datasets import load_digits; load_digits(0.2, 0); "
            "print('sklearn.datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from sklearn.datasets import load_digits as sklearn_digits

    reference = sklearn_digits()
    data = load_digits(0.0, 0)  # no validation: every image, in the seed's order
    order = torch.randperm(len(reference.target), generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(reference.images.astype(np.float32) / 16.0)[:, None][order]
    assert torch.equal(data.train_images, expected)
    assert torch.equal(data.train_labels, torch.from_numpy(reference.target)[order])


def test_digits_split_is_deterministic_per_seed_and_disjoint() -> None:
    a, b, c = load_task(task(), 7), load_task(task(), 7), load_task(task(), 8)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.val_labels, b.val_labels)
    assert not torch.equal(a.val_images, c.val_images)
    rows = lambda t: {tuple(r.flatten().tolist()) for r in t}  # noqa: E731
    # the bundled set has a few duplicate images; the split itself shares no index
    assert len(rows(a.train_images) & rows(a.val_images)) < 10


def test_digits_subsets_and_val_fraction() -> None:
    data = load_task(task(max_train=100, max_val=30, val_fraction=0.5), seed=0)
    assert (data.n_train, data.n_val) == (100, 30)
    full = load_task(task(val_fraction=0.5), seed=0)
    assert full.n_val == round(1797 * 0.5) and torch.equal(full.train_images[:100], data.train_images)


def test_synthetic() -> None:
    config = task(dataset="synthetic", synthetic={"channels": 3, "size": 16, "classes": 4,
                                                  "n_train": 64, "n_val": 32})
    data = load_task(config, seed=1)
    assert data.image_shape == (3, 16, 16) and (data.n_train, data.n_val) == (64, 32)
    assert data.num_classes == 4 and set(data.train_labels.tolist()) <= {0, 1, 2, 3}
    assert torch.equal(load_task(config, seed=1).train_images, data.train_images)
    assert not torch.equal(load_task(config, seed=2).train_images, data.train_images)
    # class structure: per-class means of different classes differ far more than noise / sqrt(n)
    means = torch.stack([data.train_images[data.train_labels == k].mean(0) for k in range(4)])
    assert (means[0] - means[1]).abs().mean() > 0.3


def write_batch(path: Path, n: int, seed: int, protocol: int = 2) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    with path.open("wb") as f:
        pickle.dump({b"batch_label": b"test", b"labels": labels, b"data": data}, f, protocol=protocol)
    return data, labels


def write_cifar(root: Path, n: int = 4) -> None:
    root.mkdir(exist_ok=True)
    for i in range(1, 6):
        write_batch(root / f"data_batch_{i}", n, seed=i, protocol=[2, 4, 5, 2, 3][i - 1])
    write_batch(root / "test_batch", n, seed=0)


def test_cifar10_reads_the_python_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    data = load_task(task(dataset="cifar10", data_dir=str(tmp_path)), seed=0)
    assert (data.n_train, data.n_val, data.image_shape) == (20, 4, (3, 32, 32))
    raw, labels = write_batch(tmp_path / "test_batch", 4, seed=0)
    assert data.val_labels.tolist() == labels
    # channel-major layout: the first 1024 bytes are the red plane, scaled to [0, 1]
    assert torch.allclose(data.val_images[1, 0].flatten(), torch.from_numpy(raw[1, :1024] / 255.0).float())
    assert data.train_images.dtype == torch.float32 and data.train_labels.dtype == torch.int64
    subset = load_task(task(dataset="cifar10", data_dir=str(tmp_path), max_train=6, max_val=2), 0)
    assert (subset.n_train, subset.n_val) == (6, 2)


def test_cifar10_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=f"CIFAR-10 directory {re.escape(str(missing))} does not exist; expected "
                       "it to hold data_batch_1, .*data_batch_5 and test_batch"):
        load_task(task(dataset="cifar10", data_dir=str(missing)), seed=0)
    # the spec loader rejects this too; configs built in code get the same clear error
    no_dir = dataclasses.replace(task(dataset="cifar10", data_dir=str(missing)), data_dir=None)
    with pytest.raises(DatasetError, match="task.data_dir is required for cifar10"):
        load_task(no_dir, seed=0)


def test_cifar10_missing_files(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    (tmp_path / "test_batch").unlink()
    expected = re.escape(f"CIFAR-10 directory {tmp_path} lacks data_batch_3, test_batch; expected")
    with pytest.raises(DatasetError, match=expected):
        load_task(task(dataset="cifar10", data_dir=str(tmp_path)), seed=0)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not a pickle", "is not a readable python batch"),
        (pickle.dumps([1, 2, 3]), "expected a dict with b'data' and b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
         r"b'data' must be uint8 \[N, 3072\], got uint8 \[2, 100\]"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}),
         "b'labels' must be 2 integers in 0..9"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": Path("/")}),
         "disallowed global pathlib"),
    ],
)
def test_cifar10_malformed_file(tmp_path: Path, content: bytes, message: str) -> None:
    write_cifar(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(content)
    with pytest.raises(DatasetError, match=f"CIFAR-10 file {re.escape(str(tmp_path / 'data_batch_2'))} .*{message}"):
        load_task(task(dataset="cifar10", data_dir=str(tmp_path)), seed=0)
