"""Building a network from its `_target_` mapping, as checkpoints and LightningModules keep it."""

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn

from litlab.whitelist import NET_WHITELIST, NetworkTargetError, is_network


def build_net(spec: nn.Module | Mapping[str, Any], key: str = "net") -> nn.Module:
    """A network given as a module is used as is; given as a `_target_` mapping it is built here.

    Building from the mapping is what lets a checkpoint alone rebuild its model: the mapping is saved with
    the hyperparameters. Only network classes may be named (NET_WHITELIST), since checkpoints travel; a refusal
    names `key`, the model's argument that holds the mapping.
    """
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ValueError(
            f"A network must be an nn.Module or a mapping with a _target_ (for example model.{key}._target_)."
        )
    if not is_network(str(spec["_target_"])):
        raise NetworkTargetError(key, str(spec["_target_"]))
    return instantiate(dict(spec), _execution_whitelist_=NET_WHITELIST)
