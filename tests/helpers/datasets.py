"""Small datasets written in the real on-disk formats, with a learnable signal (see litlab.data.synthetic).

MNIST's idx files come from the package, which scripts/benchmark_data.py uses too; CIFAR's pickled batches
and the checksum patch that torchvision needs for them are test-only.
"""

import hashlib
import pickle
from pathlib import Path

import numpy as np

from litlab.data.synthetic import class_images


def _pickle(path: Path, obj: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        pickle.dump(obj, file, protocol=2)
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar(root: Path, num_classes: int = 10, n_train: int = 500, n_test: int = 200, seed: int = 0) -> dict:
    """Writes CIFAR-10 (five data batches, test batch, batches.meta) or CIFAR-100 (train, test, meta).

    Returns the md5 sums torchvision checks, as {"train_list": ..., "test_list": ..., "meta": ...},
    for `patch_cifar_checksums`.
    """
    images, labels = class_images(n_train + n_test, (32, 32, 3), num_classes, seed)
    # CIFAR stores each image as 3072 bytes: the red plane, then green, then blue.
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    names = [f"class_{i}" for i in range(num_classes)]
    if num_classes == 10:
        folder = Path(root, "cifar-10-batches-py")
        chunks = np.array_split(np.arange(n_train), 5)
        train_list = [
            [
                f"data_batch_{i + 1}",
                _pickle(folder / f"data_batch_{i + 1}", {"data": flat[idx], "labels": labels[idx].tolist()}),
            ]
            for i, idx in enumerate(chunks)
        ]
        test = {"data": flat[n_train:], "labels": labels[n_train:].tolist()}
        test_list = [["test_batch", _pickle(folder / "test_batch", test)]]
        meta = {
            "filename": "batches.meta",
            "key": "label_names",
            "md5": _pickle(folder / "batches.meta", {"label_names": names}),
        }
    else:
        folder = Path(root, "cifar-100-python")
        coarse = (labels // 5).tolist()
        train = {"data": flat[:n_train], "fine_labels": labels[:n_train].tolist(), "coarse_labels": coarse[:n_train]}
        test = {"data": flat[n_train:], "fine_labels": labels[n_train:].tolist(), "coarse_labels": coarse[n_train:]}
        train_list = [["train", _pickle(folder / "train", train)]]
        test_list = [["test", _pickle(folder / "test", test)]]
        meta = {
            "filename": "meta",
            "key": "fine_label_names",
            "md5": _pickle(folder / "meta", {"fine_label_names": names}),
        }
    return {"train_list": train_list, "test_list": test_list, "meta": meta}


def patch_cifar_checksums(monkeypatch, dataset_cls, checksums: dict) -> None:
    """torchvision checks CIFAR files against the official md5 sums; point it at the generated files' sums."""
    for attribute, value in checksums.items():
        monkeypatch.setattr(dataset_cls, attribute, value)
