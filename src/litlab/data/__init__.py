from litlab.data.base import DatasetNotFoundError, InMemoryImageDataModule, TensorBatchDataset
from litlab.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from litlab.data.digits import DigitsDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.text import TextCorpusDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "InMemoryImageDataModule",
    "MNISTDataModule",
    "TensorBatchDataset",
    "TextCorpusDataModule",
]
