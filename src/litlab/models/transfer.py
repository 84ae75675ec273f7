from collections.abc import Mapping
from typing import Any

from torch import nn

from litlab.checkpoints.record import offline_net_spec
from litlab.models.classifier import ImageClassifier
from litlab.models.optim import configure
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

MODES = ("linear", "finetune")


class TransferClassifier(ImageClassifier):
    """An ImageClassifier that adapts a pretrained network: a linear probe or full fine-tuning.

    The network must expose `head` (the new output layer), `backbone_parameters()` and `pretrained`
    (litlab.models.nets.ResNet does).

    Args:
        mode: "linear" trains only the head; the frozen backbone stays in eval mode, so its batch-norm
            statistics do not drift towards the new data. "finetune" trains every layer, the backbone at
            `backbone_lr_scale` times the head's learning rate, so the pretrained features move slowly.
        backbone_lr_scale: the backbone's learning rate relative to model.optimizer.lr when fine-tuning.
        Other arguments: as ImageClassifier.

    Without pretrained weights there is nothing to probe or to protect: the whole network trains from scratch at
    one learning rate, and the log says so.
    """

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        mode: str = "linear",
        backbone_lr_scale: float = 0.1,
        **kwargs: Any,
    ):
        if mode not in MODES:
            raise ValueError(f"Unknown transfer mode '{mode}' (model.mode): choose one of {', '.join(MODES)}.")
        if not 0 < backbone_lr_scale <= 1:
            raise ValueError(f"model.backbone_lr_scale must be in (0, 1], got {backbone_lr_scale}.")
        super().__init__(net, **kwargs)
        self.hparams.update(mode=mode, backbone_lr_scale=backbone_lr_scale)
        for attribute in ("head", "backbone_parameters", "pretrained"):
            if not hasattr(self.net, attribute):
                raise ValueError(
                    f"The network {type(self.net).__name__} has no `{attribute}`: transfer learning needs a network "
                    "that names its head and backbone, such as litlab.models.nets.ResNet."
                )
        self.from_scratch = not self.net.pretrained
        self.linear_probe = mode == "linear" and not self.from_scratch
        if self.linear_probe:
            for param in self.net.backbone_parameters():
                param.requires_grad_(False)
            # Lightning keeps each submodule's mode as it finds it, so the frozen backbone must start in eval mode.
            self.train(self.training)

    def on_fit_start(self) -> None:
        if self.from_scratch:
            log.warning(
                f"No pretrained weights (model.net.weights is null): the {self.hparams.mode} teacher trains the "
                "whole network from scratch at one learning rate. Set model.net.weights=IMAGENET1K_V1 (or a local "
                "file) for the ImageNet-pretrained recipe."
            )
        elif self.linear_probe:
            log.info("Linear probe: only the head trains; the backbone is frozen and kept in eval mode.")
        else:
            log.info(f"Fine-tuning: the backbone trains at {self.hparams.backbone_lr_scale} x the head's rate.")

    def train(self, mode: bool = True) -> "TransferClassifier":
        super().train(mode)
        if self.linear_probe:
            # Lightning switches the whole module to train mode every epoch: put the frozen part back.
            self.net.train(False)
            self.net.head.train(mode)
        return self

    def configure_optimizers(self) -> dict[str, Any]:
        head = list(self.net.head.parameters())
        if self.linear_probe:
            groups: list[dict[str, Any]] = [{"params": head}]
        elif self.from_scratch:
            groups = [{"params": list(self.net.parameters())}]
        else:
            scale = self.hparams.backbone_lr_scale
            groups = [{"params": self.net.backbone_parameters(), "lr_scale": scale}, {"params": head}]
        return configure(groups, self.hparams.optimizer, self.hparams.scheduler, self.trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        hparams = checkpoint.get("hyper_parameters")
        if hparams and isinstance(hparams.get("net"), Mapping):
            # The checkpoint carries the trained weights: rebuilding it must not need the download again.
            checkpoint["hyper_parameters"] = {**hparams, "net": offline_net_spec(hparams["net"])}
