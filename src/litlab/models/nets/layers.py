"""Pieces the networks share: named activations and the stack of dense layers."""

from collections.abc import Sequence

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}


def choose(table: dict, name: str, what: str):
    """Looks a name up in a table of options, or says which names exist."""
    key = str(name).lower()
    if key not in table:
        raise ValueError(f"Unknown {what} '{name}': choose one of {', '.join(table)}.")
    return table[key]


def dense_layers(
    in_features: int,
    hidden: Sequence[int],
    num_classes: int,
    batch_norm: bool,
    dropout: float,
    activation: type[nn.Module],
) -> list[nn.Module]:
    """Hidden layers of linear -> batch norm -> activation -> dropout, then the output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden:
        # Batch norm's shift makes the linear layer's bias redundant.
        layers.append(nn.Linear(width, units, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(activation())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, num_classes))
    return layers
