"""Stops a run whose training loss is no longer finite, with one sentence saying where and what to lower."""

from collections.abc import Mapping
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor


class DivergenceError(FloatingPointError):
    """The training loss became NaN or infinite: the run diverged."""


class DivergenceGuard(Callback):
    """Fails the run when the loss a `training_step` returns is NaN or infinite.

    Reading a GPU value on the host waits for the GPU, so checking every step would stall the pipeline.
    The guard instead keeps, on the loss's device, the step at which the loss first stopped being finite
    (a few tensor operations queued with the step's own), and reads it on the host every
    `check_every_n_steps` steps, at the end of each epoch and before validation: the run stops at most that
    many steps late, and the message still names the exact step. Modules that return no loss (manual
    optimisation, e.g. the GANs) are not watched.

    Args:
        check_every_n_steps: how often the host reads the flag.
    """

    def __init__(self, check_every_n_steps: int = 50) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be a positive integer, got {check_every_n_steps}.")
        self.check_every_n_steps = check_every_n_steps
        self._step: Tensor | None = None
        self._first_bad: Tensor | None = None
        self._value: Tensor | None = None
        self._start = 0
        self._unchecked = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._step = self._first_bad = self._value = None
        self._start = trainer.global_step
        self._unchecked = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, Tensor):
            return
        loss = loss.detach()
        if self._step is None:
            self._step = torch.full((), self._start, dtype=torch.long, device=loss.device)
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._value = torch.zeros((), dtype=loss.dtype, device=loss.device)
        self._step += 1
        newly_bad = (self._first_bad < 0) & ~torch.isfinite(loss).all()
        self._first_bad = torch.where(newly_bad, self._step, self._first_bad)
        self._value = torch.where(newly_bad, loss.sum(), self._value)
        self._unchecked += 1
        if self._unchecked >= self.check_every_n_steps:
            self._check(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, pl_module)

    def _check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._unchecked = 0
        if self._first_bad is None:
            return
        step = int(self._first_bad.item())  # the only host sync, once every check_every_n_steps steps
        if step < 0:
            return
        raise DivergenceError(
            f"The training loss became {float(self._value.item())} at step {step} (epoch {trainer.current_epoch}): "
            f"the run diverged; lower the learning rate ({_learning_rates(pl_module, trainer)}) or clip gradients "
            "(trainer.gradient_clip_val=1.0)."
        )


def _learning_rates(pl_module: LightningModule, trainer: Trainer) -> str:
    settings = getattr(pl_module, "hparams", {}).get("optimizer")
    if isinstance(settings, Mapping) and "lr" in settings:
        return f"model.optimizer.lr={settings['lr']}"
    rates = sorted({group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups})
    return "now " + ", ".join(f"{rate:g}" for rate in rates) if rates else "model.optimizer.lr"
