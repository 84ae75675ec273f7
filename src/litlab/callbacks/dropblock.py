from lightning import Callback, LightningModule, Trainer
from torchvision.ops import DropBlock2d


class DropBlockSchedule(Callback):
    """Raises the drop probability of every `DropBlock2d` linearly from 0 to its target, as the DropBlock paper does.

    The target is each block's `p` when training starts (the network's `dropblock` argument); it is reached
    after `ramp_fraction` of the training steps and kept from then on. The blocks get their targets back when
    training ends, so the schedule leaves the network as it found it.

    Args:
        ramp_fraction: share of the training steps over which p rises (1.0: the whole run, as in the paper).
    """

    def __init__(self, ramp_fraction: float = 1.0):
        if not 0.0 < ramp_fraction <= 1.0:
            raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction}.")
        self.ramp_fraction = ramp_fraction
        self.targets: dict[DropBlock2d, float] = {}

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.targets = {m: m.p for m in pl_module.modules() if isinstance(m, DropBlock2d)}

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int) -> None:
        if not self.targets:
            return
        ramp_steps = max(self.ramp_fraction * trainer.estimated_stepping_batches, 1.0)
        progress = min(trainer.global_step / ramp_steps, 1.0)
        for block, target in self.targets.items():
            block.p = target * progress
        pl_module.log("train/dropblock_scale", progress, on_step=False, on_epoch=True)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for block, target in self.targets.items():
            block.p = target
