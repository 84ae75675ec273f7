"""Image grids for TensorBoard's Images tab."""

from collections.abc import Sequence

from torch import Tensor
from torchvision.utils import make_grid


def image_grid(images: Tensor, nrow: int) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] as one (3, H', W') grid in [0, 1], `nrow` images per row."""
    return make_grid(images.detach().cpu().clamp(-1, 1), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))


def log_image(loggers: Sequence, tag: str, image: Tensor, step: int) -> None:
    """Sends an image (C, H, W) in [0, 1] to every logger that shows images (TensorBoard)."""
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            experiment.add_image(tag, image, global_step=step)
