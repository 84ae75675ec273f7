from litlab.data.base import DatasetNotFoundError, InMemoryImageDataModule, TensorBatchDataset
from litlab.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from litlab.data.digits import DigitsDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.text import TextCorpusDataModule
from litlab.data.unpaired import DigitsMNISTDataModule, ImageFolderUnpairedDataModule, UnpairedImageDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetNotFoundError",
    "DigitsDataModule",
    "DigitsMNISTDataModule",
    "ImageFolderUnpairedDataModule",
    "InMemoryImageDataModule",
    "MNISTDataModule",
    "TensorBatchDataset",
    "TextCorpusDataModule",
    "UnpairedImageDataModule",
]
