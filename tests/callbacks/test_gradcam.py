"""Grad-CAM: localisation on images whose class is decided by one region, and the grid from eval.py."""

import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from litlab.callbacks.gradcam import gradcam, last_conv
from litlab.eval import evaluate
from litlab.models.nets import CNN
from litlab.train import train
from tests.helpers.config import eval_config, train_config

REGION = (slice(2, 8), slice(2, 8))  # rows and columns of the deciding region in a 16x16 image


def region_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images with a bar somewhere in the region: horizontal for class 0, vertical for class 1.

    Only the region carries a signal; everything outside it is noise of the same strength everywhere.
    """
    images = 0.3 * torch.randn(n, 1, 16, 16, generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    for i in range(n):
        r, c = torch.randint(2, 6, (2,), generator=generator).tolist()
        if labels[i] == 1:
            images[i, 0, r - 1 : r + 3, c + 1] += 3.0
        else:
            images[i, 0, r + 1, c - 1 : c + 3] += 3.0
    return images, labels


def test_gradcam_heat_lies_in_the_region_that_decides_the_class():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    # The output layer reads the last conv block directly, the kind of network Grad-CAM was made for.
    net = CNN(1, 16, 2, conv_channels=(8, 16), dense_units=())
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(100):
        images, labels = region_images(32, generator)
        loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    images, labels = region_images(100, generator)
    heat, preds = gradcam(net, images)
    assert (preds == labels).float().mean() > 0.9  # the net has learnt the classes
    # Scaled per image: each map's hottest pixel is exactly 1.
    assert heat.shape == (len(images), 16, 16) and torch.allclose(heat.amax(dim=(1, 2)), torch.ones(len(images)))
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[REGION] = True
    assert heat[:, inside].mean() > 2.5 * heat[:, ~inside].mean()
    # The hottest pixel lies in the region, give or take a pixel of the 8x8 map's upsampling, in most images.
    near = torch.zeros(16, 16, dtype=torch.bool)
    near[1:9, 1:9] = True
    peaks = heat.flatten(1).argmax(dim=1)
    assert near.flatten()[peaks].float().mean() > 0.75


def test_last_conv_is_the_factorized_pairs_second_kernel():
    net = CNN(1, 28, 10, conv_channels=(8, 16), factorize=True)
    assert last_conv(net).kernel_size == (1, 3)


def test_eval_draws_a_gradcam_grid_to_tensorboard_and_png(tmp_path, mnist_root):
    cfg = train_config(
        ["experiment=mnist_cnn", f"paths.data_dir={mnist_root}", "data.download=false", "trainer.max_epochs=1"],
        tmp_path / "train",
    )
    _, objects = train(cfg)
    best = objects["trainer"].checkpoint_callback.best_model_path
    evaluate(eval_config([f"ckpt_path={best}", "+callbacks=gradcam", "callbacks.gradcam.num_images=6"], tmp_path))
    png = tmp_path / "gradcam.png"
    assert png.is_file() and png.stat().st_size > 10_000
    events = EventAccumulator(str(next(tmp_path.glob("tensorboard/**/events.out.tfevents.*")).parent))
    events.Reload()
    assert "test/gradcam" in events.Tags()["images"]
