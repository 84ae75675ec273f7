"""torchvision's ResNet18 and ResNet50 with a new head, an optional CIFAR stem and optional pretrained weights."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision import models
from torchvision.models import get_weight

from litlab.models.nets.cnn import choose

ARCHS = {"resnet18": models.resnet18, "resnet50": models.resnet50}
STEMS = ("auto", "cifar", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights that are neither on disk nor downloadable; the message says where to put them."""


def is_weights_name(weights: str) -> bool:
    """A torchvision weights name (IMAGENET1K_V1, ...) rather than a file path."""
    if Path(weights).expanduser().is_file():
        return False
    return "/" not in weights and "\\" not in weights and not Path(weights).suffix


def load_pretrained_state(arch: str, weights: str) -> dict[str, Tensor]:
    """The state dict of `weights`: a torchvision weights name (downloaded by torchvision) or a local file."""
    if is_weights_name(weights):
        enum_name = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}[arch]
        try:
            entry = get_weight(f"{enum_name}.{weights.upper()}")
        except (ValueError, KeyError, AttributeError):
            raise ValueError(
                f"model.net.weights='{weights}' is not a {enum_name} name nor a file path: use IMAGENET1K_V1, "
                "IMAGENET1K_V2 (resnet50 only), null, or the path of a .pth state dict."
            ) from None
        filename = Path(urlparse(entry.url).path).name
        try:
            return entry.get_state_dict(progress=False, check_hash=True)
        except (OSError, RuntimeError) as err:  # URLError is an OSError; a bad hash is a RuntimeError
            folder = Path(torch.hub.get_dir(), "checkpoints")
            raise WeightsNotFoundError(
                f"torchvision could not download the {arch} {weights.upper()} weights ({type(err).__name__}): "
                f"place {filename} (from {entry.url}) in {folder} (that is $TORCH_HOME/hub/checkpoints), or pass "
                f"its path with model.net.weights=/path/to/{filename}."
            ) from None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"The weights file '{path}' does not exist: point model.net.weights at a torchvision {arch} state dict "
            "(.pth), or use a weights name such as IMAGENET1K_V1, or null to train from scratch."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    return dict(state)


class ResNet(nn.Module):
    """A torchvision ResNet18 or ResNet50 for `num_classes` classes, from scratch or from pretrained weights.

    Args:
        arch: "resnet18" or "resnet50".
        in_channels, image_size, num_classes: the data's shape and classes.
        weights: None (train from scratch), a torchvision weights name (IMAGENET1K_V1, IMAGENET1K_V2), fetched
            by torchvision into $TORCH_HOME/hub/checkpoints, or the path of a local state dict file.
        stem: "cifar" (3x3 stride-1 first conv, no max-pool: for training from scratch on small images),
            "imagenet" (torchvision's 7x7 stride-2 conv and max-pool), or "auto" (imagenet with weights, else cifar).
            The CIFAR stem replaces the pretrained first conv, so with weights it starts from random values there.
        imagenet_input: resize inputs on the device to `resolution` and normalise them with ImageNet statistics,
            as pretrained weights expect; None means "when weights are given".
        resolution: the side inputs are resized to when `imagenet_input` is on.
        data_mean, data_std: the pixel convention of the input, x = (pixels / 255 - data_mean) / data_std, undone
            before ImageNet's statistics are applied (default: [0, 1] inputs). A LitlabModule replaces them with
            its datamodule's convention (`set_input_pixels`), so configs need not repeat a dataset's statistics.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        in_channels: int = 3,
        image_size: int = 32,
        num_classes: int = 10,
        weights: str | None = None,
        stem: str = "auto",
        imagenet_input: bool | None = None,
        resolution: int = 224,
        data_mean: tuple[float, ...] | None = None,
        data_std: tuple[float, ...] | None = None,
    ):
        super().__init__()
        builder = choose(ARCHS, arch, "ResNet architecture (model.net.arch)")
        if stem not in STEMS:
            raise ValueError(f"Unknown stem '{stem}' (model.net.stem): choose one of {', '.join(STEMS)}.")
        weights = weights if weights and str(weights).lower() != "none" else None
        self.pretrained = weights is not None
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.imagenet_input = self.pretrained if imagenet_input is None else imagenet_input
        self.resolution = resolution

        self.model = builder()
        if weights is not None:
            state = {k: v for k, v in load_pretrained_state(arch, str(weights)).items() if not k.startswith("fc.")}
            try:
                missing, unexpected = self.model.load_state_dict(state, strict=False)
            except RuntimeError:  # a tensor of the wrong shape
                missing, unexpected = ["(shapes differ)"], []
            if unexpected or set(missing) != {"fc.weight", "fc.bias"}:
                raise ValueError(
                    f"The weights '{weights}' do not fit a torchvision {arch} (missing {missing[:3]}, unexpected "
                    f"{unexpected[:3]}): give a state dict saved from torchvision.models.{arch}."
                )
        use_cifar_stem = stem == "cifar" or (stem == "auto" and not self.pretrained)
        if use_cifar_stem:
            self.model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            self.model.maxpool = nn.Identity()
        elif in_channels != 3:
            self.model.conv1 = self._adapt_conv1(self.model.conv1, in_channels)
        self.model.fc = nn.Linear(self.model.fc.in_features, num_classes)

        if self.imagenet_input:
            # Buffers, not constants: they follow the module to the device and into its dtype.
            self.register_buffer("scale", torch.ones(in_channels), persistent=False)
            self.register_buffer("shift", torch.zeros(in_channels), persistent=False)
            self.set_input_pixels(data_mean or (0.0,), data_std or (1.0,))

    def set_input_pixels(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The input's pixel convention, x = (pixels / 255 - mean) / std, mapped to ImageNet's on the way in."""
        if not self.imagenet_input:
            return
        channels = self.input_shape[0]
        mean, std = _per_channel(mean, channels, "data_mean"), _per_channel(std, channels, "data_std")
        # One-channel input stands in for all three colour planes: the averaged statistics fit it best.
        net_mean = _per_channel(IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,), channels, "")
        net_std = _per_channel(IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,), channels, "")
        with torch.no_grad():
            self.scale.copy_(std / net_std)
            self.shift.copy_((mean - net_mean) / net_std)

    @staticmethod
    def _adapt_conv1(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
        # Pretrained RGB filters summed over colour respond to a grey image as they did to its colour original.
        new = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
        return new

    @property
    def head(self) -> nn.Module:
        """The new output layer (what a linear probe trains)."""
        return self.model.fc

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the head's."""
        head = {id(p) for p in self.head.parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def forward(self, x: Tensor) -> Tensor:
        if self.imagenet_input:
            x = x * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
            if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
                x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear")
        return self.model(x)


def _per_channel(values: Sequence[float], channels: int, name: str) -> Tensor:
    values = tuple(values)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(f"model.net.{name} has {len(values)} entries for {channels} input channels: give one each.")
    return torch.tensor(values, dtype=torch.float32)
