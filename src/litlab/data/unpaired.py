"""Unpaired image domains for CycleGAN: a folder layout trainA/ trainB/ testA/ testB/, or digits -> MNIST.

Both domains live in memory as uint8 tensors; batches are dicts {"A", "B", "label_A", "label_B", "valid_A",
"valid_B"} and reach the model in [-1, 1] (`pixels = TANH`, the generators' Tanh range), cropped and flipped on the
device.
"""

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2.functional import resize

from litlab.data.augment import random_hflip
from litlab.data.base import DatasetNotFoundError, keep_batch, require_positive_ints
from litlab.data.digits import DigitsDataModule
from litlab.data.mnist import MNISTDataModule
from litlab.data.pixels import TANH

Domain = tuple[Tensor, Tensor]  # uint8 images (N, C, H, W) and int64 labels (N,), -1 where unknown
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class UnpairedDataset(Dataset):
    """Two unaligned domains, served a whole batch at a time.

    Training (`shuffle_b`): item i pairs A[i mod |A|] with a random B, as the reference implementation does,
    over max(|A|, |B|) items. Evaluation: item i pairs A[i mod |A|] with B[i mod |B|], and `valid_X` marks
    the items that show each image for the first time, so metrics count every test image exactly once.
    """

    def __init__(self, domain_a: Domain, domain_b: Domain, shuffle_b: bool):
        (self.images_a, self.labels_a), (self.images_b, self.labels_b) = domain_a, domain_b
        if len(self.images_a) == 0 or len(self.images_b) == 0:
            raise ValueError("Both domains need at least one image: check the folders (or sizes) of domain A and B.")
        self.shuffle_b = shuffle_b

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(indices)
        n_a, n_b = len(self.images_a), len(self.images_b)
        index_a = index % n_a
        index_b = torch.randint(0, n_b, (len(index),)) if self.shuffle_b else index % n_b
        return {
            "A": self.images_a[index_a],
            "B": self.images_b[index_b],
            "label_A": self.labels_a[index_a],
            "label_B": self.labels_b[index_b],
            "valid_A": index < n_a,
            "valid_B": torch.ones_like(index, dtype=torch.bool) if self.shuffle_b else index < n_b,
        }


def random_crop_to(images: Tensor, size: int) -> Tensor:
    """One random size x size window per image of a batch (the images are at least that large)."""
    n, _, h, w = images.shape
    if h == size and w == size:
        return images
    tops = torch.randint(0, h - size + 1, (n,)).tolist()
    lefts = torch.randint(0, w - size + 1, (n,)).tolist()
    return torch.stack([img[:, t : t + size, s : s + size] for img, t, s in zip(images, tops, lefts, strict=True)])


def center_crop_to(images: Tensor, size: int) -> Tensor:
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


class UnpairedImageDataModule(LightningDataModule):
    """Base of the unpaired datamodules: subclasses load the four splits as uint8 tensors (`load_domains`).

    Args:
        crop_size: side of the square the model sees: a random crop in training, the centre crop in testing.
        hflip: random horizontal flips of training images (off for digits).
        max_images: keep at most this many images of each domain and split (a fixed random subset; None: all).
        batch_size, eval_batch_size, num_workers, pin_memory: the usual loader settings.
    """

    pixels = TANH

    def __init__(
        self,
        crop_size: int = 256,
        hflip: bool = True,
        max_images: int | None = None,
        batch_size: int = 1,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__()
        require_positive_ints(batch_size=batch_size, eval_batch_size=eval_batch_size)
        self.save_hyperparameters(logger=False)
        self.data_train: UnpairedDataset | None = None
        self.data_test: UnpairedDataset | None = None

    @abstractmethod
    def load_domains(self) -> dict[str, Domain]:
        """The splits "trainA", "trainB", "testA", "testB" as uint8 images and int64 labels (-1: unknown)."""

    def _limit(self, domain: Domain) -> Domain:
        images, labels = domain
        limit = self.hparams.max_images
        if limit is None or len(images) <= limit:
            return images, labels
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:limit]
        return images[keep], labels[keep]

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        splits = {name: self._limit(domain) for name, domain in self.load_domains().items()}
        for name, (images, _) in splits.items():
            if min(images.shape[-2:]) < self.hparams.crop_size:
                raise ValueError(
                    f"The {name} images are {tuple(images.shape[-2:])}, smaller than data.crop_size="
                    f"{self.hparams.crop_size}: lower crop_size or raise load_size."
                )
        self.data_train = UnpairedDataset(splits["trainA"], splits["trainB"], shuffle_b=True)
        self.data_test = UnpairedDataset(splits["testA"], splits["testB"], shuffle_b=False)

    def _loader(self, dataset: UnpairedDataset, train: bool) -> DataLoader:
        batch_size = self.hparams.batch_size if train else (self.hparams.eval_batch_size or self.hparams.batch_size)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            collate_fn=keep_batch,
            num_workers=self.hparams.num_workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, train=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, train=False)

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        training = self.trainer is not None and self.trainer.training
        size = self.hparams.crop_size
        for key in ("A", "B"):
            images = batch[key]
            if training:
                images = random_crop_to(images, size)
                if self.hparams.hflip:
                    images = random_hflip(images)
            else:
                images = center_crop_to(images, size)
            batch[key] = self.pixels.from_unit(images.float().div(255.0))
        return batch


# the folders under `data.root` of ImageFolderUnpairedDataModule, as the CycleGAN repository's datasets hold them
FOLDER_SPLITS = ("trainA", "trainB", "testA", "testB")


def image_files(folder: Path) -> list[Path]:
    """The image files of a folder, in name order (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def read_folder(folder: Path, channels: int, load_size: int) -> Domain:
    """Every image file in a folder, decoded to `channels` and resized to load_size x load_size."""
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"Folder {folder} is missing: an unpaired dataset needs trainA/, trainB/, testA/ and testB/ of image "
            "files under data.root (for example datasets/horse2zebra from the CycleGAN repository)."
        )
    files = image_files(folder)
    if not files:
        raise DatasetNotFoundError(f"Folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}): add some there.")
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    images = [resize(decode_image(str(path), mode=mode), [load_size, load_size], antialias=True) for path in files]
    return torch.stack(images), torch.full((len(files),), -1, dtype=torch.long)


class ImageFolderUnpairedDataModule(UnpairedImageDataModule):
    """Unpaired domains from image files in root/trainA, root/trainB, root/testA and root/testB (any size).

    Images are resized to `load_size` squares when read, then cropped to `crop_size` per batch (the reference
    recipe: 286 then 256). They are kept in memory as uint8 tensors.

    Args:
        root: the folder that holds trainA/ trainB/ testA/ testB/.
        channels: 3 (RGB) or 1 (grey) for both domains, or a pair [A, B] for domains that differ (e.g. [1, 3]).
        load_size: side of the squares images are resized to when read.
    """

    def __init__(
        self, root: str, channels: int | Sequence[int] = 3, load_size: int = 286, crop_size: int = 256, **kwargs
    ):
        if not isinstance(channels, int):
            channels = list(channels)  # saved as a plain list, which checkpoints read with weights_only can hold
        pair = [channels] * 2 if isinstance(channels, int) else channels
        if len(pair) != 2 or any(count not in (1, 3) for count in pair):
            raise ValueError(
                f"data.channels must be 1 (grey), 3 (RGB) or a pair of them for domains A and B (e.g. [1, 3]), "
                f"got {channels}."
            )
        if crop_size > load_size:
            raise ValueError(f"data.crop_size ({crop_size}) must not exceed data.load_size ({load_size}).")
        super().__init__(crop_size=crop_size, **kwargs)

    def source_files(self) -> list[Path]:
        """The image files of the four folders (recorded with their hashes in the run record)."""
        root = Path(self.hparams.root).expanduser()
        return [file for split in ("trainA", "trainB", "testA", "testB") for file in image_files(root / split)]

    def load_domains(self) -> dict[str, Domain]:
        root = Path(self.hparams.root).expanduser()
        channels = self.hparams.channels
        channels_a, channels_b = (channels, channels) if isinstance(channels, int) else channels
        return {
            split: read_folder(root / split, channels_a if split.endswith("A") else channels_b, self.hparams.load_size)
            for split in FOLDER_SPLITS
        }


def upscale_digits(images: Tensor, digit_size: int, image_size: int) -> Tensor:
    """8x8 digits resized to digit_size and centred on an image_size canvas, as MNIST centres its 20x20 digits."""
    resized = F.interpolate(images.float(), size=(digit_size, digit_size), mode="bilinear", antialias=True)
    pad = image_size - digit_size
    canvas = F.pad(resized, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return canvas.round().clamp(0, 255).to(torch.uint8)


class DigitsMNISTDataModule(UnpairedImageDataModule):
    """The offline default pair of real data: scikit-learn's 8x8 digits (domain A) and MNIST (domain B).

    Both are read through litlab's own datamodules (`DigitsDataModule`, whose fixed 20% test carve-out is the
    test split of A, and `MNISTDataModule`, train and official test split), and both keep their labels, so
    label preservation of A -> B can be measured with an MNIST classifier.

    Args:
        data_dir, download: where MNIST is (see `MNISTDataModule`).
        digit_size: side the 8x8 digits are upscaled to before being centred on a 28x28 canvas.
    """

    pixels = replace(TANH, background=(0,))  # light digits on black in both domains

    def __init__(
        self, data_dir: str = "data/", download: bool = True, digit_size: int = 20, crop_size: int = 28, **kwargs
    ):
        kwargs.setdefault("hflip", False)
        super().__init__(crop_size=crop_size, **kwargs)

    def prepare_data(self) -> None:
        if self.hparams.download:
            MNISTDataModule(data_dir=self.hparams.data_dir, download=True).prepare_data()

    def source_files(self) -> list[Path]:
        """scikit-learn's digits file and the MNIST idx files (recorded with their hashes in the run record)."""
        return DigitsDataModule().source_files() + MNISTDataModule(data_dir=self.hparams.data_dir).source_files()

    def load_domains(self) -> dict[str, Domain]:
        digits = DigitsDataModule(val_fraction=0.0)
        mnist = MNISTDataModule(data_dir=self.hparams.data_dir, download=False, val_fraction=0.0)
        digits.setup()
        mnist.setup()

        def scaled(images: Tensor) -> Tensor:
            return upscale_digits(images, self.hparams.digit_size, 28)

        return {
            "trainA": (scaled(digits.data_train.images), digits.data_train.labels),
            "trainB": (mnist.data_train.images, mnist.data_train.labels),
            "testA": (scaled(digits.data_test.images), digits.data_test.labels),
            "testB": (mnist.data_test.images, mnist.data_test.labels),
        }
