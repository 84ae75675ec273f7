"""Optimizers and learning-rate schedules built from plain config values.

A LightningModule keeps these settings as plain dicts (saved with its hyperparameters, so checkpoints
stay readable with `weights_only=True` and picklable for DDP spawn) and builds the objects in
`configure_optimizers`.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from torch import optim

from litlab.models.nets.layers import choose

OPTIMIZERS: dict[str, type[optim.Optimizer]] = {
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "rmsprop": optim.RMSprop,
    "sgd": optim.SGD,
}


def build_optimizer(
    params: Iterable,
    name: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> optim.Optimizer:
    """Builds an optimizer by name. `momentum` applies to SGD and RMSprop, `betas` to Adam and AdamW."""
    cls = choose(OPTIMIZERS, name, "optimizer (model.optimizer.name)")
    if lr <= 0:
        raise ValueError(f"The learning rate must be positive, got model.optimizer.lr={lr}.")
    if cls is optim.SGD:
        return cls(params, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0, weight_decay=weight_decay)
    if cls is optim.RMSprop:
        return cls(params, lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps)
    return cls(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, eps=eps)


SCHEDULERS = ("none", "cosine", "onecycle", "plateau")


def _scheduler_key(name: str | None) -> str:
    key = str(name or "none").lower()
    if key not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler '{name}' (model.scheduler.name): choose one of {', '.join(SCHEDULERS)}.")
    return key


def check_names(optimizer: Mapping[str, Any] | None, scheduler: Mapping[str, Any] | None = None) -> None:
    """Refuses an unknown optimizer or scheduler name when the model is built, not after the data has loaded."""
    if optimizer:
        choose(OPTIMIZERS, optimizer.get("name", "adam"), "optimizer (model.optimizer.name)")
    if scheduler:
        _scheduler_key(scheduler.get("name"))


def build_scheduler(
    optimizer: optim.Optimizer,
    total_steps: int,
    name: str | None = "none",
    min_lr_ratio: float = 0.0,
    pct_start: float = 0.3,
    factor: float = 0.1,
    patience: int = 5,
    monitor: str = "val/loss",
) -> dict[str, Any] | None:
    """Builds a learning-rate schedule as Lightning's scheduler dict, or None for a constant rate.

    cosine and onecycle step every batch over `total_steps` (the trainer's estimate); plateau steps once an
    epoch on `monitor`.
    """
    key = _scheduler_key(name)
    if key == "none":
        return None
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    if key == "cosine":
        scheduler = optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(total_steps, 1), eta_min=min(base_lrs) * min_lr_ratio
        )
        return {"scheduler": scheduler, "interval": "step"}
    if key == "onecycle":
        scheduler = optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=base_lrs, total_steps=max(total_steps, 1), pct_start=pct_start
        )
        return {"scheduler": scheduler, "interval": "step"}
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}


def check_resumed_schedules(trainer: Any) -> None:
    """Refuses a resume whose one-cycle schedule is shorter than the run now asks for.

    OneCycleLR restores its planned total of steps from the checkpoint, so resuming with a larger
    `trainer.max_epochs` would train on until the schedule runs out, then fail with torch's "Tried to
    step ... times".
    """
    needed = trainer.estimated_stepping_batches
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if isinstance(scheduler, optim.lr_scheduler.OneCycleLR) and scheduler.total_steps < needed:
            raise ValueError(
                f"The resumed one-cycle schedule was planned for {scheduler.total_steps} steps, but "
                f"trainer.max_epochs={trainer.max_epochs} needs {needed}: resume with the original "
                "trainer.max_epochs, or start a new run (without ckpt_path) for a longer schedule."
            )


def configure(
    params: Iterable, optimizer: Mapping[str, Any], scheduler: Mapping[str, Any] | None, total_steps: int
) -> dict[str, Any]:
    """The return value of `configure_optimizers` for one optimizer and an optional schedule."""
    opt = build_optimizer(params, **optimizer)
    sched = build_scheduler(opt, total_steps, **(scheduler or {}))
    return {"optimizer": opt, "lr_scheduler": sched} if sched else {"optimizer": opt}
