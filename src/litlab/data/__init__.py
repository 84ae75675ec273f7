"""The LightningDataModules and what they share.

`base` (in-memory image datamodules: the whole dataset as uint8 tensors, batches by indexing), `digits`, `mnist`,
`cifar`, `unpaired` (two image domains), `text` (word2vec corpora); `pixels` (the pixel convention: every
normalisation), `augment` (crop and flip on the device); `inputs` (predict.py's images and tensors);
`synthetic` (small datasets with a learnable signal, for tests and benchmarks).
"""

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
