from importlib.resources import files
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import Tensor

from litlab.data.base import InMemoryImageDataModule
from litlab.data.pixels import PixelConvention


class DigitsDataModule(InMemoryImageDataModule):
    """The 1,797 handwritten 8x8 digits bundled with scikit-learn: real data, no download, runs anywhere.

    The set has no official test split, so `test_fraction` (default 0.2) carves one at random with the fixed
    `split_seed`. Pixel values 0..16 are rescaled to 0..255 to share the uint8 pipeline.
    """

    num_classes = 10
    pixels = PixelConvention(mean=(0.3054,), std=(0.3760,), background=(0,))  # light digits on black
    class_names = tuple(str(digit) for digit in range(10))

    def __init__(self, test_fraction: float = 0.2, augment: bool = False, hflip: bool = False, **kwargs):
        if not test_fraction:
            raise ValueError(
                f"The digits dataset has no official test split, so data.test_fraction must be in (0, 1), "
                f"got {test_fraction}."
            )
        super().__init__(test_fraction=test_fraction, augment=augment, hflip=hflip, **kwargs)

    def prepare_data(self) -> None:
        """Nothing to download: the digits ship inside scikit-learn."""

    def load_split(self, train: bool, download: bool) -> tuple[Tensor, Tensor]:
        if not train:
            # The base pools train and test before carving its own test split.
            return torch.empty(0, 1, 8, 8, dtype=torch.uint8), torch.empty(0, dtype=torch.long)
        digits = load_digits()
        images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
        return images, torch.from_numpy(digits.target).long()

    def source_files(self) -> list[Path]:
        """The file inside scikit-learn that `load_digits` reads (recorded with its hash in the run record)."""
        return [Path(str(files("sklearn.datasets.data") / "digits.csv.gz"))]
