"""Small datasets written in the real on-disk formats, with a learnable signal, for offline checks.

Each class has its own fixed random template; an image is its class template plus noise, so a model can
learn the classes (accuracy well above chance). The tests write their data with these functions, and
scripts/benchmark_data.py falls back on them when the real MNIST is not at hand.
"""

import struct
from pathlib import Path

import numpy as np


def class_images(n: int, shape: tuple[int, ...], num_classes: int, seed: int, noise: float = 40.0):
    """n uint8 images of `shape` (H, W) or (H, W, C) and their labels: class template + Gaussian noise."""
    rng = np.random.default_rng(seed)
    templates = np.random.default_rng(1234).uniform(0, 255, size=(num_classes, *shape))
    labels = rng.integers(0, num_classes, size=n)
    images = templates[labels] + rng.normal(0, noise, size=(n, *shape))
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Writes an array in the idx format of MNIST (big-endian dimensions, unsigned bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Writes MNIST's four idx files under root/MNIST/raw, as torchvision.datasets.MNIST reads them."""
    raw = Path(root, "MNIST", "raw")
    for split, n, offset in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = class_images(n, (28, 28), 10, seed + offset)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return Path(root)
