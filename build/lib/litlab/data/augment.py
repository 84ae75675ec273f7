"""Batch augmentation as a few tensor operations, run on whatever device the batch is on (airbench style)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def random_crop(images: Tensor, padding: int, generator: torch.Generator | None = None) -> Tensor:
    """Pads a batch (N, C, H, W) with zeros and takes one random H x W window per image."""
    if padding <= 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), device=images.device, generator=generator)
    rows = (dy + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    # Two gathers (rows, then columns) cut each image's own window without a Python loop over the batch.
    band = padded.gather(2, rows.expand(n, c, h, w + 2 * padding))
    return band.gather(3, cols.expand(n, c, h, w))


def random_hflip(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirrors each image left-right with probability one half."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
