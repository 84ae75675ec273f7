"""k-fold cross-validation on the image datamodules: `data.folds=K data.fold=i`."""

from collections import Counter

import pytest
import torch

from litlab.data import InMemoryImageDataModule, MNISTDataModule
from litlab.data.base import check_folds
from litlab.data.pixels import PixelConvention

# Classes of unequal sizes (class c has 10 + 4c images), so that stratification shows in every fold.
SIZES = [10 + 4 * c for c in range(10)]


class NumberedImages(InMemoryImageDataModule):
    """Images that carry their own number (two pixels, base 256), so a split can be checked image by image."""

    num_classes = 10
    pixels = PixelConvention(mean=(0.5,), std=(0.25,))

    def __init__(self, n_test: int = 50, **kwargs):
        super().__init__(**kwargs)
        self.n_test = n_test

    def load_split(self, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if train:
            labels = torch.cat([torch.full((n,), c) for c, n in enumerate(SIZES)])
            labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
            ids = torch.arange(len(labels))
        else:
            ids = torch.arange(self.n_test) + 1000
            labels = ids % 10
        images = torch.stack([ids // 256, ids % 256], 1).to(torch.uint8).view(-1, 1, 1, 2)
        return images, labels


def numbers(dataset) -> list[int]:
    return ids(dataset.images)


def ids(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1]).tolist()


def split(**kwargs) -> NumberedImages:
    dm = NumberedImages(**kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize("test_fraction", [None, 0.2])
def test_validation_folds_are_disjoint_and_cover_the_training_split(test_fraction):
    dms = [split(folds=5, fold=i, split_seed=3, test_fraction=test_fraction) for i in range(5)]
    vals = [numbers(dm.data_val) for dm in dms]
    pool = set(numbers(dms[0].data_train)) | set(vals[0])
    label_of = {}
    for train in (True, False):
        images, labels = dms[0].load_split(train, False)
        label_of.update(zip(ids(images), labels.tolist(), strict=True))
    assert sum(len(v) for v in vals) == len(pool) and set().union(*vals) == pool  # disjoint, covering
    for dm, val in zip(dms, vals, strict=True):
        assert set(numbers(dm.data_train)) == pool - set(val)
        # labels stay paired with their images
        for data in (dm.data_train, dm.data_val):
            assert data.labels.tolist() == [label_of[i] for i in numbers(data)]
    assert len(pool) == (sum(SIZES) if test_fraction is None else sum(SIZES) + 50 - round(0.2 * (sum(SIZES) + 50)))


@pytest.mark.parametrize("test_fraction", [None, 0.2])
def test_the_test_split_is_the_one_without_folds(test_fraction):
    plain = split(split_seed=3, test_fraction=test_fraction)
    for fold in range(3):
        dm = split(folds=3, fold=fold, split_seed=3, test_fraction=test_fraction)
        assert numbers(dm.data_test) == numbers(plain.data_test)
        assert torch.equal(dm.data_test.labels, plain.data_test.labels)
    # the training pool the folds share out is the training + validation images of the plain split
    assert sorted(numbers(dm.data_train) + numbers(dm.data_val)) == sorted(
        numbers(plain.data_train) + numbers(plain.data_val)
    )


def test_every_fold_holds_each_class_in_proportion():
    for fold in range(4):
        dm = split(folds=4, fold=fold)
        counts = Counter(dm.data_val.labels.tolist())
        # class c's 10 + 4c images dealt out to 4 folds: each fold gets the floor or the ceiling of a quarter
        assert all(counts[c] in (n // 4, -(-n // 4)) for c, n in enumerate(SIZES)), counts


def test_folds_are_fixed_by_the_split_seed():
    a, b = split(folds=5, fold=2, split_seed=1), split(folds=5, fold=2, split_seed=1, batch_size=7)
    assert numbers(a.data_val) == numbers(b.data_val) and numbers(a.data_train) == numbers(b.data_train)
    other = split(folds=5, fold=2, split_seed=2)
    assert sorted(numbers(other.data_val)) != sorted(numbers(a.data_val))
    torch.manual_seed(99)  # the global generator plays no part
    assert numbers(split(folds=5, fold=2, split_seed=1).data_val) == numbers(a.data_val)


def test_without_folds_the_split_is_the_plain_one():
    # folds=None (the configs' default) keeps val_fraction's split, image for image.
    plain, unset = split(split_seed=5), split(split_seed=5, folds=None, fold=None)
    assert numbers(plain.data_val) == numbers(unset.data_val) and len(plain.data_val) == round(0.1 * sum(SIZES))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1, "fold": 0}, r"data\.folds must be an integer of at least 2, got 1: set for example"),
        ({"folds": True, "fold": 0}, r"data\.folds must be an integer of at least 2, got True"),
        ({"folds": 2.5, "fold": 0}, r"data\.folds must be an integer of at least 2, got 2\.5"),
        (
            {"folds": 5, "fold": 5},
            r"data\.fold must be one of 0\.\.4 with data\.folds=5, got 5: set data\.fold=0 up to data\.fold=4\.$",
        ),
        ({"folds": 5, "fold": 7}, r"data\.fold must be one of 0\.\.4 with data\.folds=5, got 7"),
        ({"folds": 5, "fold": -1}, r"data\.fold must be one of 0\.\.4 with data\.folds=5, got -1"),
        ({"folds": 5, "fold": True}, r"data\.fold must be one of 0\.\.4 with data\.folds=5, got True"),
        (
            {"folds": 5},
            r"data\.folds=5 needs data\.fold, .*: set data\.fold to one of 0\.\.4, or sweep them all with "
            r"-m 'data\.fold=range\(0,5\)'",
        ),
        ({"fold": 2}, r"data\.fold=2 needs data\.folds, the number of folds: set data\.folds="),
    ],
)
def test_bad_fold_settings_name_the_key_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NumberedImages(**kwargs)


@pytest.mark.parametrize("fold", [0, 1])
def test_two_folds_are_the_fewest_and_both_are_taken(fold):
    check_folds(2, fold)


def test_more_folds_than_the_smallest_class_is_refused():
    dm = NumberedImages(folds=11, fold=0)  # class 0 has 10 images
    message = r"data\.folds=11 is more than the 10 training images of class 0, .*set data\.folds to at most 10\.$"
    with pytest.raises(ValueError, match=message):
        dm.setup()
    split(folds=10, fold=9)  # exactly the smallest class: every fold gets one


def test_mnist_files_through_the_real_reader(mnist_root):
    # The real subclasses pass the fold settings through to the base, and checkpoints record them.
    dms = [MNISTDataModule(data_dir=str(mnist_root), download=False, folds=3, fold=i) for i in range(3)]
    for dm in dms:
        dm.setup()
    assert sum(len(dm.data_val) for dm in dms) == 600 and all(len(dm.data_test) == 200 for dm in dms)
    assert dms[1].hparams.folds == 3 and dms[1].hparams.fold == 1
