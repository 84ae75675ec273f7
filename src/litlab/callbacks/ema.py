"""An exponential moving average of the weights: Lightning's EMAWeightAveraging, evaluated wherever a run evaluates."""

from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """Keeps an exponential moving average of the weights (and buffers) after each optimizer step:
    `ema = decay * ema + (1 - decay) * weights`, starting from the weights after the first step.

    Lightning's callback does the averaging, puts the average in place of the weights for validation and at
    the end of training, and saves checkpoints whose `state_dict` is the average (the raw weights under
    `current_model_state`, the averaging state under `averaging_state`), so `eval.py`, `predict.py`, `export.py`
    and the test after training read the averaged weights; a resumed fit (`ckpt_path=last`) restores both
    and continues the average where it stopped. Two things are changed here:

    - testing (or validating, predicting) a checkpoint with the Trainer that trained, as `train.py` tests the
      best checkpoint, evaluates its `state_dict`: Lightning would load `current_model_state`, the raw weights;
    - the averaged weights stay in place until validation has ended, so what runs at the end of the validation
      epoch (the module's own `on_validation_epoch_end`, callbacks such as `test_curves`) sees the average too,
      whatever the order of the callbacks; checkpoints, which Lightning saves after every other callback, still
      find the raw weights in the module.

    Args:
        decay: the weight of the average against the newest weights at each update.
        update_every_n_steps: update after every n-th optimizer step.
        update_starting_at_step: the first optimizer step (from 0) that updates the average (None: the first);
            until then the average holds the weights the run started with, and validation evaluates those.
        device: where the average lives (None: with the model; "cpu" saves accelerator memory).
        use_buffers: average the buffers too (batch norm statistics); False keeps the current ones.
    """

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Leaves the average in place: `on_validation_end` puts the raw weights back."""

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
