from collections.abc import Sequence

from torch import Tensor, nn

from litlab.models.nets.layers import ACTIVATIONS, choose, dense_layers


class MLP(nn.Module):
    """A multilayer perceptron on flattened images: hidden layers of linear -> batch norm -> activation -> dropout.

    Args:
        in_channels, image_size, num_classes: the data's shape and classes (the input size is their product).
        hidden_sizes: widths of the hidden layers; the output layer is always added.
        batch_norm: batch norm after every hidden linear layer.
        dropout: dropout after every hidden layer.
        activation: "relu", "gelu", "silu" or "elu".
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        hidden_sizes: Sequence[int] = (256, 128),
        batch_norm: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        act = choose(ACTIVATIONS, activation, "activation")
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.layers = nn.Sequential(
            nn.Flatten(),
            *dense_layers(in_channels * image_size * image_size, hidden_sizes, num_classes, batch_norm, dropout, act),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
