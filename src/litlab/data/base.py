"""In-memory image datamodules: the whole dataset as uint8 tensors, batches served by indexing."""

from abc import abstractmethod
from collections.abc import Iterator, Sequence

import torch
from lightning import LightningDataModule
from sklearn.model_selection import StratifiedKFold
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from litlab.data.augment import random_crop, random_hflip
from litlab.data.pixels import PixelConvention


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is neither on disk nor downloadable; the message says which files to place where."""


def require_positive_ints(**settings: object) -> None:
    """Refuses `data.*` settings that are not positive integers (for example `data.batch_size=abc`), by key."""
    for name, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"data.{name} must be a positive integer, got {value!r}: set for example data.{name}=64.")


def check_folds(folds: int | None, fold: int | None) -> None:
    """Refuses `data.folds` / `data.fold` settings that name no fold, in one sentence naming the key to fix."""
    if folds is None:
        if fold is not None:
            raise ValueError(
                f"data.fold={fold} needs data.folds, the number of folds: set data.folds=5 (for example) as well, "
                "or drop data.fold for a single validation split."
            )
        return
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(
            f"data.folds must be an integer of at least 2, got {folds!r}: set for example data.folds=5, "
            "or data.folds=null for a single validation split."
        )
    if fold is None:
        raise ValueError(
            f"data.folds={folds} needs data.fold, the fold held out for validation: set data.fold to one of "
            f"0..{folds - 1}, or sweep them all with -m 'data.fold=range(0,{folds})'."
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(
            f"data.fold must be one of 0..{folds - 1} with data.folds={folds}, got {fold!r}: "
            f"set data.fold=0 up to data.fold={folds - 1}."
        )


def fold_split(labels: Tensor, folds: int, fold: int, seed: int) -> tuple[Tensor, Tensor]:
    """The training and validation indices of fold `fold` of `folds` stratified folds, shuffled with `seed`.

    scikit-learn's StratifiedKFold deals each class's images out to the folds in turns, so every fold holds
    each class in the proportion of the whole; the folds are disjoint and together cover every image.
    """
    counts = torch.bincount(labels)
    present = counts.nonzero().flatten()
    smallest = int(present[counts[present].argmin()])
    if counts[smallest] < folds:
        raise ValueError(
            f"data.folds={folds} is more than the {int(counts[smallest])} training images of class {smallest}, so "
            f"some folds would not hold that class: set data.folds to at most {int(counts[smallest])}."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    train_idx, val_idx = list(splitter.split(labels.numpy()[:, None], labels.numpy()))[fold]
    return torch.from_numpy(train_idx), torch.from_numpy(val_idx)


class TensorBatchDataset(Dataset):
    """Images (N, C, H, W) uint8 and labels (N,) int64, fetched a whole batch at a time.

    `__getitems__` lets the DataLoader ask for a batch's indices in one call, so a batch is one
    tensor index instead of N Python-level lookups and a collate. The DataLoader keeps its usual
    samplers, so Lightning can still swap in a DistributedSampler under DDP.
    """

    def __init__(self, images: Tensor, labels: Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"Images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}.")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: the two must pair up one to one.")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Tensor | list[int]) -> tuple[Tensor, Tensor]:
        # index_select: a fifth of the time of advanced indexing (`images[index]`) for a batch of 64.
        index = torch.as_tensor(indices)
        return self.images.index_select(0, index), self.labels.index_select(0, index)


class TensorBatchSampler(BatchSampler):
    """A BatchSampler that hands out each batch's indices as one tensor instead of a list of ints.

    The wrapped sampler's order is read once per epoch and split into batches, so each step skips
    building a Python list and converting it back into a tensor. It keeps BatchSampler's constructor,
    which is how Lightning rebuilds it around a DistributedSampler under DDP.
    """

    def __iter__(self) -> Iterator[Tensor]:
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        batches = order.split(self.batch_size)
        if self.drop_last and len(order) % self.batch_size:
            batches = batches[:-1]
        return iter(batches)


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The collate function for `TensorBatchDataset`, whose batches come out already stacked."""
    return batch


class InMemoryImageDataModule(LightningDataModule):
    """Base of the image-classification datamodules.

    Subclasses say how to read one split as uint8 tensors (`load_split`) and declare their batches' pixel
    convention (`pixels`: standardised with the dataset's channel statistics); the base does the rest.
    Normalisation and augmentation run on the batch after it reaches the device (`on_after_batch_transfer`),
    so on a GPU the input pipeline costs almost nothing.

    Args:
        data_dir: folder that holds (or receives) the dataset.
        batch_size: training batch size; evaluation uses `eval_batch_size` (default: the same).
        val_fraction: share of the training split held out for validation.
        test_fraction: None keeps the official test split; a number pools train and test and carves
            that share out as the test split (for example 0.3 for a 70/30 split).
        split_seed: seed of the validation and test carving (and of the folds), fixed so that runs compare on the
            same images.
        folds: k-fold cross-validation: the training split is cut into `folds` stratified folds (each class
            shared out evenly), and fold `fold` is held out for validation in place of `val_fraction`'s share.
            None: one validation split of `val_fraction`. The test split is the same either way.
        fold: which of the `folds` folds is validated on, 0 to folds - 1.
        download: fetch the dataset when it is not in `data_dir`.
        augment: random crop with padding and horizontal flip on training batches.
        crop_padding: padding of the random crop, in pixels (0 turns the crop off).
        hflip: random horizontal flips (off for digits, whose mirror images are other symbols).
    """

    num_classes: int
    pixels: PixelConvention
    # the classes' names, in label order (None: their numbers); recorded in checkpoints for predict.py
    class_names: Sequence[str] | None = None

    def __init__(
        self,
        data_dir: str = "data/",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float | None = None,
        split_seed: int = 42,
        download: bool = True,
        augment: bool = False,
        crop_padding: int = 4,
        hflip: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        folds: int | None = None,
        fold: int | None = None,
    ):
        super().__init__()
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"data.{name} must be in [0, 1), got {value}.")
        require_positive_ints(batch_size=batch_size, eval_batch_size=eval_batch_size)
        check_folds(folds, fold)
        self.save_hyperparameters(logger=False)
        self.data_train: TensorBatchDataset | None = None
        self.data_val: TensorBatchDataset | None = None
        self.data_test: TensorBatchDataset | None = None
        self._affine: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @abstractmethod
    def load_split(self, train: bool, download: bool) -> tuple[Tensor, Tensor]:
        """Returns the official train or test split as uint8 images (N, C, H, W) and int64 labels (N,)."""

    @property
    def dims(self) -> tuple[int, int, int]:
        """The shape (C, H, W) of one image."""
        if self.data_train is None:
            self.setup("fit")
        return tuple(self.data_train.images.shape[1:])

    def prepare_data(self) -> None:
        # Downloads happen here, once per node; setup() then only reads.
        if self.hparams.download:
            self.load_split(train=True, download=True)
            self.load_split(train=False, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        images, labels = self.load_split(train=True, download=False)
        test_images, test_labels = self.load_split(train=False, download=False)
        generator = torch.Generator().manual_seed(self.hparams.split_seed)
        if self.hparams.test_fraction is not None:
            images, labels = torch.cat([images, test_images]), torch.cat([labels, test_labels])
            order = torch.randperm(len(images), generator=generator)
            n_test = round(self.hparams.test_fraction * len(images))
            test_idx, order = order[:n_test], order[n_test:]
            test_images, test_labels = images[test_idx], labels[test_idx]
            images, labels = images[order], labels[order]
        if self.hparams.folds is None:
            order = torch.randperm(len(images), generator=generator)
            n_val = round(self.hparams.val_fraction * len(images))
            val_idx, train_idx = order[:n_val], order[n_val:]
        else:
            train_idx, val_idx = fold_split(labels, self.hparams.folds, self.hparams.fold, self.hparams.split_seed)
        self.data_train = TensorBatchDataset(images[train_idx], labels[train_idx])
        self.data_val = TensorBatchDataset(images[val_idx], labels[val_idx])
        self.data_test = TensorBatchDataset(test_images, test_labels)

    def _loader(self, dataset: TensorBatchDataset | None, split: str) -> DataLoader:
        if dataset is None or len(dataset) == 0:
            raise ValueError(
                f"The {split} split is empty: check data.val_fraction and data.test_fraction, or turn the "
                f"{split} loop off (trainer.limit_val_batches=0 for validation, test=false for testing)."
            )
        train = split == "train"
        batch_size = self.hparams.batch_size if train else (self.hparams.eval_batch_size or self.hparams.batch_size)
        sampler = RandomSampler(dataset) if train else SequentialSampler(dataset)
        return DataLoader(
            dataset,
            # A last training batch of one image would break batch norm; evaluation keeps every image.
            batch_sampler=TensorBatchSampler(sampler, batch_size, drop_last=train and len(dataset) > batch_size),
            collate_fn=keep_batch,
            num_workers=self.hparams.num_workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, "train")

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, "validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, "test")

    def normalize(self, images: Tensor) -> Tensor:
        """uint8 images to float in the datamodule's pixel convention (`pixels`): standardised [0, 1] values."""
        if images.device not in self._affine:
            # built once per device: a new small tensor per batch would be a host-to-device copy each step
            self._affine[images.device] = self.pixels.uint8_affine(images.device)
        scale, shift = self._affine[images.device]
        return images.float().mul_(scale).add_(shift)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        images, labels = batch
        images = self.normalize(images)
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            images = random_crop(images, self.hparams.crop_padding)
            if self.hparams.hflip:
                images = random_hflip(images)
        return images, labels
