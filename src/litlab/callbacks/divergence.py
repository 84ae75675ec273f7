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
    The guard instead keeps two numbers on the loss's device, updated by three tensor operations queued
    with the step's own: whether every loss so far was finite, and how many steps were finite before the
    first one that was not. The host reads them every `check_every_n_steps` steps, at the end of each epoch
    and before validation: the run stops at most that many steps late, and the message still names the
    exact step. Modules that return no loss (manual optimisation, e.g. the GANs) are not watched.

    Args:
        check_every_n_steps: how often the host reads the flag.
    """

    def __init__(self, check_every_n_steps: int = 50) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be a positive integer, got {check_every_n_steps}.")
        self.check_every_n_steps = check_every_n_steps
        self._all_finite: Tensor | None = None
        self._finite_steps: Tensor | None = None
        self._start = 0
        self._unchecked = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._all_finite = self._finite_steps = None
        self._start = trainer.global_step
        self._unchecked = 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, Tensor):
            return
        finite = torch.isfinite(loss) if loss.ndim == 0 else torch.isfinite(loss).all()
        if self._all_finite is None:
            self._all_finite = torch.ones((), dtype=torch.bool, device=loss.device)
            self._finite_steps = torch.zeros((), dtype=torch.long, device=loss.device)
        self._all_finite.logical_and_(finite)
        self._finite_steps.add_(self._all_finite)
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
        if self._all_finite is None:
            return
        diverged = not self._all_finite.item()  # the only host sync, every few steps
        # Under DDP every process must stop together, or the others would wait for it forever.
        if not trainer.strategy.reduce_boolean_decision(diverged, all=False):
            return
        where = f"at step {self._start + int(self._finite_steps.item()) + 1}" if diverged else "in another process"
        raise DivergenceError(
            f"The training loss became NaN or infinite {where} (epoch {trainer.current_epoch}): the run "
            f"diverged; lower the learning rate ({_learning_rates(pl_module, trainer)}) or clip gradients "
            "(trainer.gradient_clip_val=1.0)."
        )


def _learning_rates(pl_module: LightningModule, trainer: Trainer) -> str:
    settings = getattr(pl_module, "hparams", {}).get("optimizer")
    if isinstance(settings, Mapping) and "lr" in settings:
        return f"model.optimizer.lr={settings['lr']}"
    rates = sorted({group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups})
    return "now " + ", ".join(f"{rate:g}" for rate in rates) if rates else "model.optimizer.lr"
