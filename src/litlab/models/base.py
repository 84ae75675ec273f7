from typing import Any

from lightning import LightningModule
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from litlab.checkpoints.record import hide_environment, litlab_record
from litlab.data.pixels import PixelConvention, checkpoint_pixels
from litlab.models.optim import check_resumed_schedules
from litlab.speed import FastHookNames


def plain(value: Any) -> Any:
    """OmegaConf containers to plain dicts and lists, so hyperparameters load with `weights_only=True`."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


class LitlabModule(FastHookNames, LightningModule):
    """Base of litlab's LightningModules: records in each checkpoint which classes rebuild the run.

    `eval.py`, `predict.py` and `export.py` read this record (`litlab.checkpoints.load`), so they need no
    other configuration. The record also keeps the pixel convention of the training data (`pixels`), so that a
    checkpoint alone says how to turn images into the model's inputs and back.
    """

    _recorded_pixels: PixelConvention | None = None

    @property
    def pixels(self) -> PixelConvention | None:
        """The pixel convention of the input batches: the datamodule's, else the one the checkpoint recorded."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return getattr(datamodule, "pixels", None) or self._recorded_pixels

    def share_pixels(self) -> None:
        """Tells every submodule that re-normalises its input (a `set_input_pixels` method) the convention."""
        pixels = self.pixels
        if pixels is None:
            return
        for module in self.modules():
            if module is not self and hasattr(module, "set_input_pixels"):
                module.set_input_pixels(pixels.mean, pixels.std)

    def on_train_start(self) -> None:
        # Here, not in configure_optimizers: a resumed scheduler's state is restored only after that.
        check_resumed_schedules(self.trainer)

    def save_settings(self, **settings: Any) -> None:
        """Saves `settings` (a module's constructor arguments, named by the caller) as plain hyperparameters.

        Values become plain containers, so `weights_only=True` reads them. A network given as a module cannot be
        saved: it is left out of the hyperparameters (pass it again when loading).
        """
        saved = {name: plain(value) for name, value in settings.items() if not isinstance(value, nn.Module)}
        self.save_hyperparameters(saved, logger=False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        checkpoint["litlab"] = litlab_record(self, datamodule)
        hide_environment(checkpoint, self._trainer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._recorded_pixels = checkpoint_pixels(checkpoint)
        self.share_pixels()
