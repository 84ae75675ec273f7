import pytest
import torch
from torchvision.datasets import CIFAR10

from litlab.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DatasetNotFoundError,
    DigitsDataModule,
    MNISTDataModule,
)
from litlab.data.augment import random_crop, random_hflip
from litlab.data.base import TensorBatchSampler


def test_mnist_reads_idx_files(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=32, val_fraction=0.1, download=False)
    dm.setup()
    assert dm.dims == (1, 28, 28)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (540, 60, 200)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    # The official test split is kept whole and in order.
    assert len({*dm.data_test.labels.tolist()}) == 10


@pytest.mark.parametrize(
    ("cls", "fixture", "classes", "n_train"),
    [(CIFAR10DataModule, "cifar10_root", 10, 500), (CIFAR100DataModule, "cifar100_root", 100, 2000)],
)
def test_cifar_reads_pickled_batches(cls, fixture, classes, n_train, request):
    root = request.getfixturevalue(fixture)
    dm = cls(data_dir=str(root), batch_size=50, download=False)
    dm.setup()
    assert dm.dims == (3, 32, 32)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8
    assert y.max() < classes
    assert len(dm.data_train) + len(dm.data_val) == n_train


def test_cifar_channels_are_planes_in_order(cifar10_root):
    # CIFAR stores red, green and blue planes one after another: the datamodule must give them back as C, H, W.
    raw = CIFAR10(str(cifar10_root), train=False)
    dm = CIFAR10DataModule(data_dir=str(cifar10_root), download=False, val_fraction=0.0)
    dm.setup()
    assert torch.equal(dm.data_test.images[3], torch.from_numpy(raw.data[3]).permute(2, 0, 1))


def test_split_is_reproducible_and_disjoint():
    a, b = DigitsDataModule(split_seed=7), DigitsDataModule(split_seed=7)
    a.setup(), b.setup()
    assert torch.equal(a.data_val.images, b.data_val.images)
    assert len(a.data_train) + len(a.data_val) + len(a.data_test) == 1797
    c = DigitsDataModule(split_seed=8)
    c.setup()
    assert not torch.equal(a.data_val.labels, c.data_val.labels)


def test_test_fraction_pools_and_carves(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root), test_fraction=0.3, val_fraction=0.0, download=False)
    dm.setup()
    assert len(dm.data_test) == 240 and len(dm.data_train) == 560


def test_missing_dataset_offline_says_where_to_put_it(tmp_path):
    dm = MNISTDataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError, match=r"place train-images-idx3-ubyte.*paths.data_dir"):
        dm.setup()
    dm = CIFAR10DataModule(data_dir=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError, match=r"data_batch_1.*cifar-10-batches-py"):
        dm.setup()


def test_bad_split_fractions_are_refused():
    with pytest.raises(ValueError, match="val_fraction"):
        MNISTDataModule(val_fraction=1.5)
    with pytest.raises(ValueError, match="test_fraction"):
        DigitsDataModule(test_fraction=None)


def test_normalisation_and_augmentation_run_on_the_batch(cifar10_root):
    dm = CIFAR10DataModule(data_dir=str(cifar10_root), download=False)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))

    class _Trainer:
        training = False

    dm.trainer = _Trainer()
    eval_x, _ = dm.on_after_batch_transfer((x, y), 0)
    assert eval_x.dtype == torch.float32 and abs(eval_x.mean().item()) < 1.0
    assert torch.allclose(eval_x, dm.normalize(x))  # no augmentation outside training
    dm.trainer.training = True
    train_x, _ = dm.on_after_batch_transfer((x, y), 0)
    assert train_x.shape == eval_x.shape and not torch.allclose(train_x, eval_x)


def test_normalisation_standardises_with_the_channel_statistics(cifar10_root):
    dm = CIFAR10DataModule(data_dir=str(cifar10_root), download=False)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    mean, std = torch.tensor(dm.pixels.mean).view(1, 3, 1, 1), torch.tensor(dm.pixels.std).view(1, 3, 1, 1)
    expected = (x.float() / 255.0 - mean) / std
    assert torch.allclose(dm.normalize(x), expected, atol=1e-5)
    assert torch.allclose(dm.normalize(x), expected, atol=1e-5)  # again, from the per-device cache


def test_batches_are_index_tensors_covering_the_split_once(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=64, val_fraction=0.1, download=False)
    dm.setup()
    loader = dm.train_dataloader()
    indices = list(loader.batch_sampler)
    assert all(isinstance(i, torch.Tensor) and i.dtype == torch.int64 for i in indices)
    # 540 training images: 8 full batches, the last 28 dropped; every image at most once, in a new order.
    assert [len(i) for i in indices] == [64] * 8 and len(loader) == 8
    seen = torch.cat(indices)
    assert len(seen.unique()) == len(seen) and not torch.equal(seen, torch.arange(len(seen)))
    assert not torch.equal(torch.cat(list(loader.batch_sampler)), seen)  # reshuffled every epoch
    x, y = next(iter(dm.test_dataloader()))
    assert torch.equal(x, dm.data_test.images[:64]) and torch.equal(y, dm.data_test.labels[:64])


def test_ddp_shards_the_batches_through_a_distributed_sampler(mnist_root):
    # What Lightning does under DDP: rebuild the batch sampler around a DistributedSampler per rank.
    dm = MNISTDataModule(data_dir=str(mnist_root), batch_size=32, val_fraction=0.0, download=False)
    dm.setup()
    shards = []
    for rank in range(2):
        sampler = torch.utils.data.DistributedSampler(dm.data_train, num_replicas=2, rank=rank, shuffle=True, seed=3)
        shards.append(torch.cat(list(TensorBatchSampler(sampler, batch_size=32, drop_last=False))))
    assert len(shards[0]) == len(shards[1]) == 300
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_random_crop_shifts_within_padding():
    x = torch.arange(2 * 16).float().view(2, 1, 4, 4)
    out = random_crop(x, padding=1, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for image, cropped in zip(x, out, strict=True):
        # Every kept pixel is an original pixel moved by at most one place; the rest is zero padding.
        kept = cropped[cropped != 0]
        assert set(kept.tolist()) <= set(image.flatten().tolist())
        assert len(kept) >= 9


def test_random_hflip_flips_about_half():
    x = torch.arange(1000 * 4).float().view(1000, 1, 1, 4)
    out = random_hflip(x, generator=torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == x[:, 0, 0, 3]).float().mean().item()
    assert 0.4 < flipped < 0.6
