from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.ops import DropBlock2d

from litlab.models.nets.layers import ACTIVATIONS, choose, dense_layers

POOLS: dict[str, type[nn.Module] | None] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, "none": None}


def per_layer(value: int | Sequence[int], n: int, what: str) -> list[int]:
    """One value for every layer: a single number is repeated, a list must have one entry per layer."""
    if isinstance(value, int):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} entries but the network has {n} layers: give one per layer.")
    return values


def conv_layers(in_channels: int, out_channels: int, k: int, bias: bool, factorize: bool) -> list[nn.Module]:
    """A k x k convolution with same padding, or, factorized, a k x 1 convolution followed by a 1 x k one.

    The factorized pair passes through min(in, out) channels, which makes it cheaper than the k x k kernel
    for every k > 2 (k (in + out) min(in, out) < k^2 in out); widening it to `out` channels would make the
    first layer of a network on 1-channel images three times larger than the kernel it replaces.
    """
    if not factorize or k == 1:
        return [nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=bias)]
    middle = min(in_channels, out_channels)
    return [
        nn.Conv2d(in_channels, middle, (k, 1), padding=(k // 2, 0), bias=False),
        nn.Conv2d(middle, out_channels, (1, k), padding=(0, k // 2), bias=bias),
    ]


class CNN(nn.Module):
    """A configurable convolutional classifier: conv blocks, then dense layers, then the output layer.

    Each conv block is conv (same padding) -> batch norm -> activation -> 2x2 pooling -> dropout or DropBlock.
    Pooling
    follows every `pool_every`-th block and is skipped once the feature map is down to 1 pixel, so deep
    stacks work on 8x8, 28x28 and 32x32 inputs alike, and the flattened size is computed here, not by hand.

    Args:
        in_channels, image_size, num_classes: the data's shape and classes.
        conv_channels: filters of each conv layer; its length is the number of conv layers (0 allowed).
        kernel_size: one size for all conv layers, or one per layer.
        pool: "max", "avg" or "none".
        pool_every: pool after every n-th conv layer (2 gives VGG-style pairs of convs).
        batch_norm: batch norm after every conv and hidden dense layer.
        conv_dropout: dropout (channel-wise) after every conv block.
        dropblock: drop probability of a `torchvision.ops.DropBlock2d` after every conv block (0 leaves it out).
            This is its target: `litlab.callbacks.DropBlockSchedule` raises it from 0 during training.
        dropblock_size: side of the dropped blocks, reduced where a feature map is smaller (to an odd size,
            as DropBlock2d requires).
        factorize: replace every k x k convolution (k > 1) by a k x 1 followed by a 1 x k (`conv_layers`).
        dense_units: widths of the hidden dense layers; the output layer is always added and is not counted.
        dropout: dropout after every hidden dense layer.
        activation: "relu", "gelu", "silu" or "elu".
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        conv_channels: Sequence[int] = (32, 64),
        kernel_size: int | Sequence[int] = 3,
        pool: str = "max",
        pool_every: int = 1,
        batch_norm: bool = True,
        conv_dropout: float = 0.0,
        dropblock: float = 0.0,
        dropblock_size: int = 5,
        factorize: bool = False,
        dense_units: Sequence[int] = (128,),
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        act = choose(ACTIVATIONS, activation, "activation")
        pool_cls = choose(POOLS, pool, "pooling")
        kernels = per_layer(kernel_size, len(conv_channels), "kernel_size")
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes

        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        if pool_every < 1:
            raise ValueError(f"pool_every must be a positive integer, got {pool_every}.")
        if not 0.0 <= dropblock < 1.0 or dropblock_size < 1:
            raise ValueError(
                f"DropBlock needs a probability in [0, 1) and a positive block size, got dropblock={dropblock} "
                f"and dropblock_size={dropblock_size}."
            )
        for index, (width, k) in enumerate(zip(conv_channels, kernels, strict=True)):
            layers.extend(conv_layers(channels, width, k, bias=not batch_norm, factorize=factorize))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(act())
            if pool_cls is not None and size >= 2 and (index + 1) % pool_every == 0:
                layers.append(pool_cls(2))
                size //= 2
            if conv_dropout > 0:
                layers.append(nn.Dropout2d(conv_dropout))
            if dropblock > 0:
                odd_fit = size if size % 2 else size - 1
                layers.append(DropBlock2d(dropblock, min(dropblock_size, max(odd_fit, 1))))
            channels = width
        self.features = nn.Sequential(*layers)

        self.classifier = nn.Sequential(
            nn.Flatten(), *dense_layers(channels * size * size, dense_units, num_classes, batch_norm, dropout, act)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
