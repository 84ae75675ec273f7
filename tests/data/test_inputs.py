"""Reading what predict.py is given (src/litlab/data/inputs.py): tensor files of every layout, channel conversion,
high-bit-depth images; tests/test_predict.py reads image files of every mode through the command."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litlab.data.inputs import ClassLabels, ImageInputs, PredictionDataModule, read_image, read_tensor_file


def saved(tmp_path, tensor: torch.Tensor, name: str = "x.pt"):
    torch.save(tensor, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize(
    ("shape", "read_as"),
    [
        ((8, 8), (1, 1, 8, 8)),  # one grey image
        ((1, 8, 8), (1, 1, 8, 8)),  # one grey image with its channel
        ((3, 8, 8), (1, 3, 8, 8)),  # one colour image
        ((5, 8, 8), (5, 1, 8, 8)),  # five grey images
        ((2, 3, 8, 8), (2, 3, 8, 8)),  # a batch
        ((0, 8, 8), (0, 1, 8, 8)),  # an empty stack of grey images: no images, not an error
    ],
)
def test_every_layout_of_a_tensor_file_is_read_as_a_batch(shape, read_as, tmp_path):
    images = torch.randint(0, 256, shape, dtype=torch.uint8)
    channels = read_as[1]
    read = read_tensor_file(saved(tmp_path, images), channels, (8, 8))
    assert read.shape == read_as and torch.allclose(read.flatten(), images.flatten().float() / 255)


def test_floats_in_0_1_are_kept_and_any_beyond_refused(tmp_path):
    images = torch.tensor([0.0, 0.25, 0.5, 1.0]).repeat(2, 1).view(1, 1, 2, 4)
    assert torch.equal(read_tensor_file(saved(tmp_path, images), 1, (2, 4)), images)
    edge = images.clone()
    edge[0, 0, 0, 0] = -1e-3  # within the tolerance of a rounded 0: clamped, not refused
    assert read_tensor_file(saved(tmp_path, edge), 1, (2, 4))[0, 0, 0, 0] == 0
    for outside in (1.5, -0.5):
        bad = images.clone()
        bad[0, 0, 0, 0] = outside
        with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
            read_tensor_file(saved(tmp_path, bad), 1, (2, 4))


def test_grey_images_become_colour_and_colour_becomes_luma(tmp_path):
    grey = torch.rand(4, 1, 6, 6)
    colour = read_tensor_file(saved(tmp_path, grey), 3, (6, 6))
    assert colour.shape == (4, 3, 6, 6) and all(torch.equal(colour[:, c : c + 1], grey) for c in range(3))
    primaries = torch.eye(3).view(3, 3, 1, 1).expand(3, 3, 2, 2).clone()  # pure red, green, blue
    luma = read_tensor_file(saved(tmp_path, primaries), 1, (2, 2))
    assert torch.allclose(luma[:, 0, 0, 0], torch.tensor([0.299, 0.587, 0.114]))  # ITU-R 601-2, as Pillow's "L"


@pytest.mark.parametrize("size", [(4, 4), (16, 16), (8, 16)])
def test_tensor_images_are_resized_to_the_models_input_whichever_way(size, tmp_path):
    images = torch.rand(2, 1, 8, 8)
    assert read_tensor_file(saved(tmp_path, images), 1, size).shape == (2, 1, *size)


def test_float_images_in_0_1_are_scaled_to_8_bits(tmp_path):
    values = np.array([[0.0, 0.5, 1.0, 0.25]], dtype=np.float32)
    Image.fromarray(values, mode="F").save(tmp_path / "floats.tiff")
    assert read_image(tmp_path / "floats.tiff", 1, (1, 4)).flatten().tolist() == [0, 128, 255, 64]


def test_two_grey_images_and_a_channel_count_the_model_does_not_take(tmp_path):
    two = torch.randint(0, 256, (2, 8, 8), dtype=torch.uint8)  # (N, H, W): two grey images, not two channels
    assert read_tensor_file(saved(tmp_path, two), 1, (8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="^has 2 channels; the model takes 1$"):
        read_tensor_file(saved(tmp_path, torch.rand(1, 2, 8, 8)), 1, (8, 8))
    with pytest.raises(ValueError, match="^has 1 channels; the model takes 2$"):
        read_tensor_file(saved(tmp_path, torch.rand(1, 1, 8, 8)), 2, (8, 8))


def test_values_just_over_1_within_the_tolerance_are_clamped_to_1(tmp_path):
    images = torch.full((1, 1, 2, 2), 1 + 5e-4)
    assert torch.equal(read_tensor_file(saved(tmp_path, images), 1, (2, 2)), torch.ones(1, 1, 2, 2))


def test_tensor_images_are_resized_with_antialiasing_and_pixel_centres(tmp_path):
    sparse = torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0]).repeat(8, 1).view(1, 1, 8, 8)  # every fourth column lit
    # antialiased, a quarter of the brightness survives the shrinking; plain bilinear sampling would miss it all
    assert read_tensor_file(saved(tmp_path, sparse), 1, (2, 2)).mean() == pytest.approx(0.232, abs=0.01)
    ramp = torch.tensor([0.0, 1.0]).repeat(2, 1).view(1, 1, 2, 2)
    enlarged = read_tensor_file(saved(tmp_path, ramp), 1, (2, 4))
    assert torch.allclose(enlarged[0, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))  # align_corners=False


def test_image_files_shrink_by_area_and_enlarge_by_interpolation(tmp_path):
    Image.fromarray(np.array([[0, 255, 0, 255]], dtype=np.uint8)).save(tmp_path / "stripes.png")
    assert read_image(tmp_path / "stripes.png", 1, (1, 2)).flatten().tolist() == [128, 128]  # each pair averaged
    Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).save(tmp_path / "two.png")
    assert read_image(tmp_path / "two.png", 1, (1, 4)).flatten().tolist() == [0, 64, 191, 255]


def test_32_bit_images_up_to_255_are_kept_and_dim_float_images_scaled(tmp_path):
    Image.fromarray(np.array([[0, 128, 255]], dtype=np.int32), mode="I").save(tmp_path / "int32.tiff")
    assert read_image(tmp_path / "int32.tiff", 1, (1, 3)).flatten().tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 0.25, 0.5]], dtype=np.float32), mode="F").save(tmp_path / "dim.tiff")
    assert read_image(tmp_path / "dim.tiff", 1, (1, 3)).flatten().tolist() == [0, 64, 128]


def test_image_inputs_are_floats_in_0_1(tmp_path):
    Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).save(tmp_path / "two.png")
    item = ImageInputs([tmp_path / "two.png"], ["two.png"], 1, (1, 2))[0]
    assert item["ok"] and item["images"].flatten().tolist() == [0.0, 1.0]


def test_a_prediction_batch_size_must_be_positive_and_batches_without_images_pass_unchanged():
    with pytest.raises(ValueError, match="^batch_size must be a positive integer, got 0"):
        PredictionDataModule(ClassLabels([1]), batch_size=0)
    module = PredictionDataModule(ClassLabels([1, 2]), batch_size=1, mean=[0.5], std=[0.25])
    batch = {"labels": torch.tensor([1]), "index": torch.tensor([0])}
    assert module.on_after_batch_transfer(batch, 0) is batch and set(batch) == {"labels", "index"}
    images = {"images": torch.full((1, 1, 2, 2), 0.75)}
    assert torch.allclose(module.on_after_batch_transfer(images, 0)["images"], torch.ones(1, 1, 2, 2))


def test_8_bit_values_in_integer_images_are_kept_whatever_their_range(tmp_path):
    Image.fromarray(np.array([[0, 1, 1]], dtype=np.int32), mode="I").save(tmp_path / "binary.tiff")
    assert read_image(tmp_path / "binary.tiff", 1, (1, 3)).flatten().tolist() == [0, 1, 1]  # not scaled as floats
    Image.fromarray(np.array([[0, 1.5]], dtype=np.float32), mode="F").save(tmp_path / "counts.tiff")
    assert read_image(tmp_path / "counts.tiff", 1, (1, 2)).flatten().tolist() == [0, 2]  # beyond 1: no scaling
    dark = np.array([[0, 128, 255]], dtype=np.uint16)  # a 16-bit image is scaled however dark it is
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert read_image(tmp_path / "dark16.png", 1, (1, 3)).flatten().tolist() == [0, 0, 1]


def test_a_single_background_value_is_grey_for_every_channel(tmp_path):
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 1] = (10, 20, 30, 255)  # the first pixel transparent, the second opaque
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    pixels = read_image(tmp_path / "rgba.png", 3, (1, 2), background=(40,))
    assert pixels[:, 0, 0].tolist() == [40, 40, 40] and pixels[:, 0, 1].tolist() == [10, 20, 30]


def test_a_half_transparent_pixel_is_blended_on_an_opaque_background(tmp_path):
    Image.new("RGBA", (1, 1), (77, 77, 77, 15)).save(tmp_path / "faint.png")
    assert read_image(tmp_path / "faint.png", 3, (1, 1)).flatten().tolist() == [245, 245, 245]


def test_float_images_round_and_clip_into_8_bits(tmp_path):
    Image.fromarray(np.array([[0.7, 0.0, 1.0]], dtype=np.float32), mode="F").save(tmp_path / "unit.tiff")
    assert read_image(tmp_path / "unit.tiff", 1, (1, 3)).flatten().tolist() == [178, 0, 255]  # x 255, rounded
    Image.fromarray(np.array([[-0.5, 0.5]], dtype=np.float32), mode="F").save(tmp_path / "below.tiff")
    assert read_image(tmp_path / "below.tiff", 1, (1, 2)).flatten().tolist() == [0, 128]  # clipped, not wrapped
    Image.fromarray(np.array([[0.0, 1e5]], dtype=np.float32), mode="F").save(tmp_path / "above.tiff")
    assert read_image(tmp_path / "above.tiff", 1, (1, 2)).flatten().tolist() == [0, 255]  # past 16 bits: clipped
    Image.fromarray(np.array([[0, 128, 256]], dtype=np.int32), mode="I").save(tmp_path / "wide.tiff")
    assert read_image(tmp_path / "wide.tiff", 1, (1, 3)).flatten().tolist() == [0, 0, 1]  # past 255: 16-bit scale


def test_images_shrink_by_area_in_height_too(tmp_path):
    Image.fromarray(np.array([[0], [255], [0], [255]], dtype=np.uint8)).save(tmp_path / "column.png")
    assert read_image(tmp_path / "column.png", 1, (2, 1)).flatten().tolist() == [128, 128]


def test_values_at_the_tolerance_are_kept_and_every_channel_mismatch_refused(tmp_path):
    edge = torch.full((1, 1, 2, 2), 1 + 1e-3)
    assert torch.equal(read_tensor_file(saved(tmp_path, edge), 1, (2, 2)), torch.ones(1, 1, 2, 2))
    for have, want in ((0, 3), (2, 3), (1, 4), (3, 2), (4, 1)):
        with pytest.raises(ValueError, match=f"^has {have} channels; the model takes {want}$"):
            read_tensor_file(saved(tmp_path, torch.rand(1, have, 4, 4)), want, (4, 4))


def test_pickled_files_are_refused_not_run(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        read_tensor_file(tmp_path / "objects.npy", 1, (4, 4))
    torch.save({"images": torch.rand(1, 1, 4, 4), "extra": Path("x")}, tmp_path / "objects.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_tensor_file(tmp_path / "objects.pt", 1, (4, 4))


def test_a_prediction_datamodules_defaults():
    module = PredictionDataModule(ClassLabels([1]))
    assert (module.batch_size, module.num_workers) == (64, 0)
