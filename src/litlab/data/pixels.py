"""The pixel convention of image batches: how the floats a model sees relate to the stored 8-bit pixels.

Every normalisation of litlab happens through it: the datamodules turn uint8 batches into model inputs on the
device (`uint8_affine`), predict and export standardise [0, 1] images as training did (`standardise`).

A datamodule declares its convention (`pixels`); every LitlabModule checkpoint records it; whatever has to
undo it (the GANs' Tanh range, the judge classifier, ResNet's ImageNet re-normalisation, Grad-CAM grids,
prediction overlays) reads it from there instead of knowing which datamodule produced the batch.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from hydra.utils import get_class
from torch import Tensor


@dataclass(frozen=True)
class PixelConvention:
    """Batches hold x = (p / 255 - mean) / std per channel, p the 8-bit pixel value.

    mean 0 and std 1 is [0, 1] (`UNIT`); mean 0.5 and std 0.5 is [-1, 1] (`TANH`, the GANs' range);
    a dataset's channel statistics give standardised inputs. One value stands for every channel.

    `background` is the 8-bit colour behind the images' content (0 for MNIST's light digits on black), one value
    per channel or one for all; None where the images share no background (photographs). predict.py composites
    transparent inputs on it. It says nothing about the mapping, so conventions compare without it.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    background: tuple[int, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if self.background is not None:
            object.__setattr__(self, "background", tuple(int(v) for v in self.background))
            if not all(0 <= v <= 255 for v in self.background):
                raise ValueError(f"A background is an 8-bit colour (0 to 255 per channel), got {self.background}.")
        if len(self.mean) != len(self.std) or not self.mean or min(self.std) <= 0:
            raise ValueError(
                f"A pixel convention needs one mean and one positive std per channel, got {self.mean} and {self.std}."
            )

    def _channels(self, values: tuple[float, ...], like: Tensor) -> Tensor:
        return like.new_tensor(values).view(1, -1, *([1] * (like.ndim - 2)))

    def to_unit(self, images: Tensor) -> Tensor:
        """Batches (N, C, ...) in this convention to [0, 1]."""
        return images * self._channels(self.std, images) + self._channels(self.mean, images)

    def from_unit(self, images: Tensor) -> Tensor:
        """Batches (N, C, ...) in [0, 1] to this convention."""
        return (images - self._channels(self.mean, images)) / self._channels(self.std, images)

    def uint8_affine(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(scale, shift) with x = p * scale + shift for 8-bit pixels p: the convention as one multiply-add."""
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        return 1.0 / (255.0 * std), -mean / std

    def convert(self, images: Tensor, to: "PixelConvention") -> Tensor:
        """Batches in this convention to the convention `to`."""
        return images if to == self else to.from_unit(self.to_unit(images))

    def record(self) -> dict[str, list[float] | list[int]]:
        """Plain lists, as checkpoints keep them (readable with `weights_only=True`); no background, no key."""
        record = {"mean": list(self.mean), "std": list(self.std)}
        return record if self.background is None else {**record, "background": list(self.background)}

    @classmethod
    def from_record(cls, record: Mapping[str, Sequence[float]]) -> "PixelConvention":
        background = record.get("background")
        return cls(tuple(record["mean"]), tuple(record["std"]), tuple(background) if background else None)


UNIT = PixelConvention((0.0,), (1.0,))
TANH = PixelConvention((0.5,), (0.5,))


def checkpoint_pixels(checkpoint: Mapping[str, Any]) -> PixelConvention | None:
    """The pixel convention of the data a litlab checkpoint was trained on, None when it has none (text).

    Read from the record LitlabModule writes (`checkpoint["litlab"]["pixels"]`); checkpoints written before
    that record existed fall back to the `pixels` of the datamodule class they name, without its background:
    predictions from a checkpoint that recorded none keep compositing on predict.py's white.
    """
    record = checkpoint.get("litlab") or {}
    if record.get("pixels"):
        return PixelConvention.from_record(record["pixels"])
    name = record.get("datamodule") or ""
    if not name.startswith("litlab."):
        return None
    pixels = getattr(get_class(name), "pixels", None)
    return replace(pixels, background=None) if pixels is not None else None


def standardise(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Pixels in [0, 1] standardised with the training data's statistics (one value per channel, or one for all)."""
    return PixelConvention(tuple(mean), tuple(std)).from_unit(images)
