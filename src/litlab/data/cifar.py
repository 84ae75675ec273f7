from pathlib import Path

import torch
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100

from litlab.data.base import DatasetNotFoundError, InMemoryImageDataModule
from litlab.data.pixels import PixelConvention


class _CIFARDataModule(InMemoryImageDataModule):
    """CIFAR read once through torchvision's own class (the pickled batches, the real download code)."""

    dataset_cls: type[CIFAR10]

    def __init__(self, augment: bool = True, hflip: bool = True, crop_padding: int = 4, **kwargs):
        super().__init__(augment=augment, hflip=hflip, crop_padding=crop_padding, **kwargs)

    def load_split(self, train: bool, download: bool) -> tuple[Tensor, Tensor]:
        cls = self.dataset_cls
        try:
            dataset = cls(self.hparams.data_dir, train=train, download=download)
        except (RuntimeError, OSError) as err:
            folder = Path(self.hparams.data_dir, cls.base_folder).resolve()
            names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
            action = "could not be downloaded" if download else "is missing or corrupt and data.download=false"
            raise DatasetNotFoundError(
                f"{cls.__name__} {action} ({type(err).__name__}): place {', '.join(names)} from {cls.filename} "
                f"in {folder}, or set paths.data_dir to the folder that holds {cls.base_folder}/."
            ) from None
        self.class_names = tuple(dataset.classes)  # read from the dataset's own meta file
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(dataset.targets, dtype=torch.long)

    def source_files(self) -> list[Path]:
        """The pickled batches and the meta file torchvision reads (recorded with their hashes in the run record)."""
        cls = self.dataset_cls
        folder = Path(self.hparams.data_dir, cls.base_folder)
        return [folder / name for name, _ in cls.train_list + cls.test_list] + [folder / cls.meta["filename"]]


class CIFAR10DataModule(_CIFARDataModule):
    dataset_cls = CIFAR10
    num_classes = 10
    pixels = PixelConvention(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))


class CIFAR100DataModule(_CIFARDataModule):
    dataset_cls = CIFAR100
    num_classes = 100
    pixels = PixelConvention(mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
