"""Define-by-run search spaces for hydra-optuna-sweeper's `custom_search_space` hook.

A function here receives the sweep's config and the trial, suggests its parameters, and returns the
overrides they become. Returning overrides (litlab's sweeper accepts them) lets a conditional space
fill the list arguments of a network: the width of layer 3 is only searched when layer 3 exists.
"""

from typing import Any

import optuna
from omegaconf import DictConfig


def cnn_layers(
    config: DictConfig,
    trial: optuna.Trial,
    max_conv_layers: int = 4,
    max_dense_layers: int = 3,
    max_filters: int = 64,
    max_units: int = 64,
    min_filters: int = 8,
    min_units: int = 8,
) -> dict[str, Any]:
    """Searches a `litlab.models.nets.CNN`: 1..max conv layers and 1..max hidden dense layers, each its width.

    Widths are searched on a log scale, per existing layer only. Dense layers are the hidden ones: the
    output layer is always added by the CNN and is not counted.
    """
    n_conv = trial.suggest_int("conv_layers", 1, max_conv_layers)
    conv = [trial.suggest_int(f"conv{i}_filters", min_filters, max_filters, log=True) for i in range(1, n_conv + 1)]
    n_dense = trial.suggest_int("dense_layers", 1, max_dense_layers)
    dense = [trial.suggest_int(f"dense{i}_units", min_units, max_units, log=True) for i in range(1, n_dense + 1)]
    return {"model.net.conv_channels": conv, "model.net.dense_units": dense}
