from collections.abc import Sequence

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
POOLS: dict[str, type[nn.Module] | None] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d, "none": None}


def choose(table: dict, name: str, what: str):
    """Looks a name up in a table of options, or says which names exist."""
    key = str(name).lower()
    if key not in table:
        raise ValueError(f"Unknown {what} '{name}': choose one of {', '.join(table)}.")
    return table[key]


def per_layer(value: int | Sequence[int], n: int, what: str) -> list[int]:
    """One value for every layer: a single number is repeated, a list must have one entry per layer."""
    if isinstance(value, int):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} entries but the network has {n} layers: give one per layer.")
    return values


class CNN(nn.Module):
    """A configurable convolutional classifier: conv blocks, then dense layers, then the output layer.

    Each conv block is conv (same padding) -> batch norm -> activation -> 2x2 pooling -> dropout. Pooling
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
        for index, (width, k) in enumerate(zip(conv_channels, kernels, strict=True)):
            layers.append(nn.Conv2d(channels, width, k, padding=k // 2, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(act())
            if pool_cls is not None and size >= 2 and (index + 1) % pool_every == 0:
                layers.append(pool_cls(2))
                size //= 2
            if conv_dropout > 0:
                layers.append(nn.Dropout2d(conv_dropout))
            channels = width
        self.features = nn.Sequential(*layers)

        head: list[nn.Module] = [nn.Flatten()]
        width = channels * size * size
        for units in dense_units:
            head.append(nn.Linear(width, units, bias=not batch_norm))
            if batch_norm:
                head.append(nn.BatchNorm1d(units))
            head.append(act())
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            width = units
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
