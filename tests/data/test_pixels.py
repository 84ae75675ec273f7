"""Pixel conventions: datamodules declare theirs, checkpoints record it, the GANs and the judge undo it."""

import pytest
import torch
from lightning import Trainer

from litlab.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    DigitsMNISTDataModule,
    ImageFolderUnpairedDataModule,
    MNISTDataModule,
)
from litlab.data.pixels import TANH, UNIT, PixelConvention, checkpoint_pixels, standardise
from litlab.models import ConditionalGAN, ImageClassifier
from litlab.models.gan_eval import load_judge

QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


def first_batch(datamodule):
    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()))
    raw = {key: value.clone() for key, value in batch.items()} if isinstance(batch, dict) else batch[0].clone()
    return raw, datamodule.on_after_batch_transfer(batch, 0)


def test_every_image_datamodule_serves_the_convention_it_declares(mnist_root, cifar10_root):
    for datamodule in (
        MNISTDataModule(data_dir=str(mnist_root), download=False),
        CIFAR10DataModule(data_dir=str(cifar10_root), download=False),
        DigitsDataModule(),
    ):
        raw, (images, _) = first_batch(datamodule)
        assert torch.allclose(datamodule.pixels.to_unit(images), raw.float() / 255, atol=1e-6)
        assert not torch.allclose(images, raw.float() / 255, atol=0.01)  # standardised, not [0, 1]
    unpaired = DigitsMNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=16)
    assert unpaired.pixels == ImageFolderUnpairedDataModule.pixels == TANH
    raw, batch = first_batch(unpaired)
    for key in ("A", "B"):
        assert torch.allclose(TANH.to_unit(batch[key]), raw[key].float() / 255, atol=1e-6)


def test_conversions_keep_the_arithmetic_the_gans_were_measured_with():
    """Bit for bit what the cGAN, the judge and the unpaired data computed before the conventions had one owner."""
    mnist = MNISTDataModule.pixels
    mean, std = torch.tensor(mnist.mean).view(1, -1, 1, 1), torch.tensor(mnist.std).view(1, -1, 1, 1)
    standardised = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 3
    assert torch.equal(mnist.convert(standardised, TANH), (standardised * std + mean) * 2.0 - 1.0)
    generated = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert torch.equal(TANH.convert(generated, mnist), ((generated + 1.0) / 2.0 - mean) / std)
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(TANH.from_unit(pixels.float().div(255.0)), pixels.float().div(127.5).sub(1.0))
    assert UNIT.convert(generated, UNIT) is generated


def test_a_convention_needs_one_positive_std_per_mean():
    with pytest.raises(ValueError, match="one mean and one positive std per channel"):
        PixelConvention((0.5, 0.5), (0.5,))


def test_a_background_is_an_8_bit_colour_kept_through_the_record_and_left_out_of_comparisons():
    with pytest.raises(ValueError, match=r"8-bit colour \(0 to 255 per channel\), got \(0, 256\)"):
        PixelConvention((0.5,), (0.5,), background=(0, 256))
    black = PixelConvention((0.5,), (0.5,), background=(0,))
    assert PixelConvention.from_record(black.record()).background == (0,) and black == TANH
    assert PixelConvention.from_record(TANH.record()).background is None
    assert PixelConvention.from_record({"mean": [0.5], "std": [0.5]}).background is None  # a record without one


def test_checkpoints_record_the_convention_the_judge_and_the_cgan_undo(tmp_path, mnist_root):
    data = MNISTDataModule(data_dir=str(mnist_root), download=False, batch_size=32)
    net = {"_target_": "litlab.models.nets.CNN", "image_size": 28, "conv_channels": [4], "dense_units": [8]}
    trainer = Trainer(accelerator="cpu", max_steps=2, limit_val_batches=0, **QUIET)
    trainer.fit(ImageClassifier(net), datamodule=data)
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    checkpoint = torch.load(tmp_path / "classifier.ckpt", weights_only=True)
    assert checkpoint["litlab"]["pixels"] == {"mean": [0.1307], "std": [0.3081], "background": [0]}
    assert checkpoint_pixels(checkpoint) == MNISTDataModule.pixels and checkpoint_pixels(checkpoint).background == (0,)

    # The judge takes [-1, 1] images and gives the logits the classifier gives the datamodule's own batch.
    raw, (images, _) = first_batch(data)
    judge = load_judge(tmp_path / "classifier.ckpt")
    classifier = ImageClassifier.load_from_checkpoint(tmp_path / "classifier.ckpt", weights_only=True).eval()
    assert classifier.pixels == MNISTDataModule.pixels  # from the record, without a trainer
    with torch.no_grad():
        assert torch.allclose(judge(raw.float() / 127.5 - 1.0), classifier(images), atol=1e-5)

    # A checkpoint from before the record: the datamodule class it names still says.
    del checkpoint["litlab"]["pixels"]
    assert checkpoint_pixels(checkpoint) == MNISTDataModule.pixels
    assert checkpoint_pixels(checkpoint).background is None  # predict.py keeps white for it
    checkpoint["litlab"]["datamodule"] = None
    assert checkpoint_pixels(checkpoint) is None

    gan = ConditionalGAN(
        {"_target_": "litlab.models.nets.ConditionalGenerator", "latent_dim": 8, "base_channels": 4},
        {"_target_": "litlab.models.nets.ConditionalDiscriminator", "base_channels": 4},
    )
    trainer = Trainer(accelerator="cpu", max_steps=1, **QUIET)
    trainer.fit(gan, datamodule=data)
    trainer.save_checkpoint(tmp_path / "cgan.ckpt")
    gan = ConditionalGAN.load_from_checkpoint(tmp_path / "cgan.ckpt", weights_only=True)
    assert torch.allclose(gan.real_images(images), raw.float() / 127.5 - 1.0, atol=1e-6)


RGB = PixelConvention((0.25, 0.5, 0.75), (0.5, 0.25, 2.0))


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 4, 5), (2, 3, 2, 4, 5)])
def test_each_channel_is_converted_with_its_own_statistics_whatever_the_batch_shape(shape):
    """(N, C), sequences (N, C, L), images (N, C, H, W), volumes (N, C, D, H, W)."""
    unit = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    standardised = RGB.from_unit(unit)
    assert standardised.shape == unit.shape
    for channel, (mean, std) in enumerate(zip(RGB.mean, RGB.std, strict=True)):
        expected = (unit[:, channel] - mean) / std
        assert torch.allclose(standardised[:, channel], expected, atol=1e-6)
        assert torch.allclose(RGB.to_unit(standardised)[:, channel], unit[:, channel], atol=1e-6)


def test_unit_is_the_identity_and_tanh_the_range_minus_one_to_one():
    unit = torch.tensor([0.0, 0.25, 1.0]).view(1, 1, 3)
    assert torch.equal(UNIT.from_unit(unit), unit) and torch.equal(UNIT.to_unit(unit), unit)
    assert torch.equal(TANH.from_unit(unit), torch.tensor([-1.0, -0.5, 1.0]).view(1, 1, 3))
    assert torch.equal(
        TANH.to_unit(torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 3)), torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3)
    )


def test_converting_between_equal_conventions_changes_no_bit():
    images = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    same = PixelConvention([0.25, 0.5, 0.75], [0.5, 0.25, 2.0])  # read back from a checkpoint: equal, not the same
    assert RGB.convert(images, same) is images
    assert torch.allclose(RGB.convert(images, TANH), TANH.from_unit(RGB.to_unit(images)))


def test_a_convention_is_plain_floats_and_goes_through_a_checkpoint_record_unchanged():
    convention = PixelConvention([0, 1], (1, 2))
    assert (convention.mean, convention.std) == ((0.0, 1.0), (1.0, 2.0))
    assert all(type(value) is float for value in convention.mean + convention.std)
    assert convention.record() == {"mean": [0.0, 1.0], "std": [1.0, 2.0]}
    assert PixelConvention.from_record(RGB.record()) == RGB
    assert {RGB: "hashable"}[PixelConvention.from_record(RGB.record())] == "hashable"  # frozen: usable as a key


@pytest.mark.parametrize(
    ("mean", "std"),
    [((0.5, 0.5), (0.5,)), ((0.5,), (0.5, 0.5)), ((), ()), ((0.5,), (0.0,)), ((0.5, 0.5), (0.5, -0.5))],
)
def test_a_convention_needs_one_positive_std_per_channel(mean, std):
    with pytest.raises(ValueError) as raised:
        PixelConvention(mean, std)
    assert str(raised.value) == (
        f"A pixel convention needs one mean and one positive std per channel, got {tuple(map(float, mean))} and "
        f"{tuple(map(float, std))}."
    )


def test_negative_means_small_stds_and_hyperspectral_channel_counts_are_valid():
    assert PixelConvention((-0.5,), (1e-6,)).std == (1e-6,)
    assert len(PixelConvention([0.5] * 300, [0.25] * 300).std) == 300  # counts beyond CPython's cached small ints


@pytest.mark.parametrize(
    ("checkpoint", "pixels"),
    [
        (
            {"litlab": {"pixels": {"mean": [0.25], "std": [0.5]}, "datamodule": "litlab.data.digits.DigitsDataModule"}},
            PixelConvention((0.25,), (0.5,)),
        ),  # the record wins over the datamodule's class
        ({"litlab": {"pixels": None, "datamodule": "litlab.data.digits.DigitsDataModule"}}, DigitsDataModule.pixels),
        ({"litlab": {"datamodule": "litlab.data.text.TextCorpusDataModule"}}, None),  # text: no pixels
        ({"litlab": {"pixels": None, "datamodule": None}}, None),
        ({"litlab": {"datamodule": "tests.test_pixels.ForeignData"}}, None),  # not litlab's: not trusted
        ({"litlab": None}, None),
        ({}, None),
    ],
)
def test_checkpoint_pixels_reads_the_record_then_the_named_datamodule(checkpoint, pixels):
    assert checkpoint_pixels(checkpoint) == pixels


class ForeignData:
    """A class outside litlab that a checkpoint may name: its claims are not read."""

    pixels = TANH


@pytest.mark.parametrize(
    "convention",
    [UNIT, TANH, PixelConvention((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), PixelConvention((-0.3,), (2.5,))],
)
def test_the_uint8_affine_is_the_convention_applied_to_8_bit_pixels(convention):
    """p * scale + shift equals (p / 255 - mean) / std for every 8-bit value and channel."""
    channels = len(convention.mean)
    pixels = torch.arange(256, dtype=torch.float64).repeat(channels, 1).view(1, channels, 16, 16)
    scale, shift = convention.uint8_affine(pixels.device)
    assert scale.shape == shift.shape == (1, channels, 1, 1)
    mean = torch.tensor(convention.mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(convention.std, dtype=torch.float64).view(1, -1, 1, 1)
    torch.testing.assert_close(pixels * scale.double() + shift.double(), (pixels / 255 - mean) / std)


def test_standardise_takes_unit_pixels_to_the_training_statistics():
    images = torch.tensor([0.0, 0.25, 1.0]).view(1, 3, 1, 1)
    expected = torch.tensor([(0.0 - 0.5) / 0.25, (0.25 - 0.2) / 0.5, (1.0 - 0.1) / 2.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(standardise(images, [0.5, 0.2, 0.1], [0.25, 0.5, 2.0]), expected)
