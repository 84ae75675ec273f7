"""A user's own inputs for predict.py: image files of any size and mode, or a saved tensor, as model inputs.

Images are decoded with Pillow as a user's files come: EXIF orientation applied, 16-bit images scaled to
8 bits (Pillow would clip them), transparent pixels composited on a background colour (the training data's,
as the checkpoint records it), then converted to the model's channels and resized to its input size, as floats
in [0, 1]; once a batch reaches the device, `PredictionDataModule` standardises it as the training data were.
A file that Pillow cannot open is skipped when the inputs are gathered; one that fails later, while decoding,
becomes a marked item (`ok` false, `error` one sentence), so that one bad file never stops the others.
"""

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from lightning import LightningDataModule
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from litlab.data.pixels import standardise

TENSOR_SUFFIXES = (".pt", ".pth", ".npy")


class InputError(ValueError):
    """Inputs that cannot be used at all (a missing path, a folder without images); the message says why."""


def image_suffixes() -> set[str]:
    """The file suffixes Pillow can open."""
    return {suffix for suffix, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


class InputFiles(NamedTuple):
    """The files `find_inputs` found: those to predict for, and those of the folders that are no images."""

    files: list[Path]
    not_images: list[Path]


def find_inputs(paths: str | Sequence[str]) -> InputFiles:
    """The input files: each path a file, or a folder searched recursively for images (in name order)."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths or [])
    if not paths:
        raise InputError("No inputs given: pass inputs=<an image file, a folder of images, or a .pt/.npy tensor>.")
    suffixes = image_suffixes()
    found = InputFiles([], [])
    for path in map(lambda p: Path(p).expanduser(), paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file())
            images = [p for p in inside if p.suffix.lower() in suffixes]
            if not images:
                raise InputError(f"Folder '{path}' holds no image files: put images in it or pass another inputs=.")
            found.files.extend(images)
            found.not_images.extend(p for p in inside if p.suffix.lower() not in suffixes)
        elif path.is_file():
            found.files.append(path)
        else:
            raise InputError(f"Input '{path}' does not exist: pass inputs=<an image file, a folder or a tensor>.")
    return found


def input_names(files: Sequence[Path], paths: str | Sequence[str]) -> list[str]:
    """Each file's name as the user will recognise it: relative to the folder it was found in."""
    roots = [Path(p).expanduser() for p in ([paths] if isinstance(paths, str | Path) else paths)]
    names = []
    for file in files:
        root = next((r for r in roots if r.is_dir() and file.is_relative_to(r)), None)
        names.append(str(file.relative_to(root)) if root else str(file))
    return names


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale images scaled to 0..255 (Pillow's convert would clip them instead)."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0  # 65535 -> 255
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0  # floats in [0, 1]
        return Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), mode="L")
    return image


WHITE = (255, 255, 255)


def _flatten_alpha(image: Image.Image, background: Sequence[int]) -> Image.Image:
    """Transparent pixels composited on `background`, so that dropping alpha does not reveal hidden colours."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        colour = tuple(int(v) for v in background)
        canvas = Image.new("RGBA", rgba.size, (*(colour * 3 if len(colour) == 1 else colour), 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image


def read_image(path: str | Path, channels: int, size: Sequence[int], background: Sequence[int] = WHITE) -> Tensor:
    """An image file as a uint8 tensor (channels, H, W): oriented, 8-bit, alpha flattened, converted, resized.

    `background`: the 8-bit colour transparent pixels show, one value per channel (RGB) or one for all.
    """
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        image = _flatten_alpha(_to_8bit(image), background)
        image = image.convert("L" if channels == 1 else "RGB")
        height, width = size
        # Shrinking averages the pixels each output pixel covers (area, as cv2.INTER_AREA); enlarging interpolates.
        shrinking = height <= image.height and width <= image.width
        image = image.resize((width, height), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, -1)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def _convert_channels(images: Tensor, channels: int) -> Tensor:
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] == 3 and channels == 1:
        # ITU-R 601-2 luma, as Pillow's convert("L")
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"has {images.shape[1]} channels; the model takes {channels}")


def read_tensor_file(path: str | Path, channels: int, size: Sequence[int]) -> Tensor:
    """Images saved as a tensor (`.pt`/`.pth` with torch.save, `.npy`) as floats in [0, 1], (N, channels, H, W).

    Shapes: (H, W) one grey image; (C, H, W) one image when C is 1 or 3, else (N, H, W) grey images;
    (N, C, H, W) images. Values are raw pixels: uint8
    0..255 or floats in [0, 1]; the training normalisation is applied afterwards, as for image files.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    else:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(tensor, Tensor):
        raise ValueError(f"holds a {type(tensor).__name__}, not a tensor of images")
    if tensor.ndim not in (2, 3, 4):
        raise ValueError(f"has shape {tuple(tensor.shape)}; save (H, W), (C, H, W) or (N, C, H, W) images")
    if tensor.ndim == 2 or (tensor.ndim == 3 and tensor.shape[0] not in (1, 3)):
        tensor = tensor.unsqueeze(-3)  # one grey image (H, W), or grey images (N, H, W)
    images = tensor if tensor.ndim == 4 else tensor.unsqueeze(0)
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    elif images.is_floating_point():
        images = images.float()
        if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
            raise ValueError(
                "holds values outside [0, 1]: save raw pixels (uint8 0..255 or floats in [0, 1]), not normalised ones"
            )
    else:
        raise ValueError(f"has dtype {images.dtype}; save uint8 pixels or floats in [0, 1]")
    images = _convert_channels(images, channels)
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(0, 1)


# what Pillow raises for a file it cannot read: not an image, cut short, corrupt, or too large to be safe
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _unreadable(err: BaseException) -> str:
    return f"could not be read as an image ({type(err).__name__}); it is skipped"


class ImageInputs(Dataset):
    """Image files, or the images of tensor files, as dict items {"images", "index", "ok", "error"}.

    Files that Pillow cannot open, and tensor files that hold no images, are left out when the dataset is
    built (`failed`: each one's sentence). A file that fails later, while decoding, gives a blank image with
    `ok` false and `error` one sentence, so that a batch keeps its shape and every other input still runs.
    Tensor files are read when the dataset is built, so that each of their images is an item.
    """

    def __init__(
        self,
        files: Sequence[Path],
        names: Sequence[str],
        channels: int,
        size: Sequence[int],
        background: Sequence[int] = WHITE,
    ):
        self.channels, self.size, self.background = channels, tuple(size), tuple(background)
        self.items: list[tuple[Path, Tensor | None]] = []  # (file, image from a tensor file or None)
        self.names: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (name, sentence) of the files left out
        for file, name in zip(files, names, strict=True):
            if file.suffix.lower() in TENSOR_SUFFIXES:
                try:
                    images = read_tensor_file(file, channels, self.size)
                except ValueError as err:
                    self.failed.append((name, f"'{name}' {err}; it is skipped."))
                    continue
                except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as err:
                    self.failed.append(
                        (name, f"'{name}' could not be read as a tensor ({type(err).__name__}); skipped.")
                    )
                    continue
                for k, image in enumerate(images):
                    self.items.append((file, image))
                    self.names.append(f"{name}[{k}]")
            else:
                try:
                    # reads the header only: a file that is no image (an empty one, say) is known before the run
                    Image.open(file).close()
                except UNREADABLE as err:
                    self.failed.append((name, f"'{name}' {_unreadable(err)}"))
                    continue
                self.items.append((file, None))
                self.names.append(name)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor | int | bool | str]:
        file, image = self.items[index]
        if image is not None:
            return {"images": image, "index": index, "ok": True, "error": ""}
        try:
            pixels = read_image(file, self.channels, self.size, self.background).float() / 255.0
            return {"images": pixels, "index": index, "ok": True, "error": ""}
        except UNREADABLE as err:
            blank = torch.zeros(self.channels, *self.size)
            return {"images": blank, "index": index, "ok": False, "error": f"'{self.names[index]}' {_unreadable(err)}"}


class PredictionDataModule(LightningDataModule):
    """Serves a prediction dataset in batches and standardises its images on the device, as training did.

    Args:
        dataset: items {"images" in [0, 1], ...} (ImageInputs) or any dict items without images.
        mean, std: the training data's pixel statistics (None: the images pass unchanged).
        dims: the (C, H, W) of the images, for the model's shape check.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 64,
        num_workers: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        dims: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.mean, self.std, self.dims = mean, std, dims

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=False,
        )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        if "images" in batch and self.mean is not None:
            batch["images"] = standardise(batch["images"], self.mean, self.std)
        return batch


class ClassLabels(Dataset):
    """Class labels to generate images for, as dict items {"labels", "index", "ok", "error"}."""

    def __init__(self, labels: Sequence[int]):
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, int | bool | str]:
        return {"labels": self.labels[index], "index": index, "ok": True, "error": ""}
