from litlab.data.base import DatasetNotFoundError, InMemoryImageDataModule, TensorBatchDataset
from litlab.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from litlab.data.digits import DigitsDataModule
from litlab.data.mnist import MNISTDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "InMemoryImageDataModule",
    "MNISTDataModule",
    "TensorBatchDataset",
]
