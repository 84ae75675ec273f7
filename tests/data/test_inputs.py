"""Reading what predict.py is given (src/litlab/data/inputs.py): tensor files of every layout, channel conversion,
high-bit-depth images; tests/test_predict.py reads image files of every mode through the command."""

import numpy as np
import pytest
import torch
from PIL import Image

from litlab.data.inputs import read_image, read_tensor_file


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
