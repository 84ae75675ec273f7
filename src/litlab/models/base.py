from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from litlab.speed import FastHookNames
from litlab.utils.whitelist import NET_WHITELIST


def plain(value: Any) -> Any:
    """OmegaConf containers to plain dicts and lists, so hyperparameters load with `weights_only=True`."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def build_net(spec: nn.Module | Mapping[str, Any]) -> nn.Module:
    """A network given as a module is used as is; given as a `_target_` mapping it is built here.

    Building from the mapping is what lets a checkpoint alone rebuild its model: the mapping is saved with
    the hyperparameters. Only network classes may be named (NET_WHITELIST), since checkpoints travel.
    """
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ValueError(
            "A network must be an nn.Module or a mapping with a _target_ (for example model.net._target_)."
        )
    return instantiate(dict(spec), _execution_whitelist_=NET_WHITELIST)


class LitlabModule(FastHookNames, LightningModule):
    """Base of litlab's LightningModules: records in each checkpoint which classes rebuild the run.

    `eval.py` reads this record, so `python eval.py ckpt_path=...` needs no other configuration.
    """

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        checkpoint["litlab"] = {
            "module": f"{type(self).__module__}.{type(self).__qualname__}",
            "datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}" if datamodule else None,
        }
