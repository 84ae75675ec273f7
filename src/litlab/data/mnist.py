from pathlib import Path

from torch import Tensor
from torchvision.datasets import MNIST

from litlab.data.base import DatasetNotFoundError, InMemoryImageDataModule
from litlab.data.pixels import PixelConvention


class MNISTDataModule(InMemoryImageDataModule):
    """MNIST read once through torchvision's `MNIST` class (the idx files, the real download code)."""

    num_classes = 10
    pixels = PixelConvention(mean=(0.1307,), std=(0.3081,), background=(0,))  # light digits on black
    class_names = tuple(MNIST.classes)
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def __init__(self, augment: bool = False, hflip: bool = False, crop_padding: int = 2, **kwargs):
        super().__init__(augment=augment, hflip=hflip, crop_padding=crop_padding, **kwargs)

    def load_split(self, train: bool, download: bool) -> tuple[Tensor, Tensor]:
        try:
            dataset = MNIST(self.hparams.data_dir, train=train, download=download)
        except (RuntimeError, OSError) as err:
            raw = Path(self.hparams.data_dir, "MNIST", "raw").resolve()
            action = "could not be downloaded" if download else "is missing and data.download=false"
            raise DatasetNotFoundError(
                f"MNIST {action} ({type(err).__name__}): place {', '.join(self.files)} (or their .gz) in {raw}, "
                "or set paths.data_dir to a folder whose MNIST/raw holds them."
            ) from None
        return dataset.data.unsqueeze(1), dataset.targets

    def source_files(self) -> list[Path]:
        """The idx files torchvision's MNIST reads (recorded with their hashes in the run record)."""
        return [Path(self.hparams.data_dir, "MNIST", "raw", name) for name in self.files]
