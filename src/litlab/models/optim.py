"""Optimizers and learning-rate schedules built from plain config values.

A LightningModule keeps these settings as plain dicts (saved with its hyperparameters, so checkpoints
stay readable with `weights_only=True` and picklable for DDP spawn) and builds the objects in
`configure_optimizers`. `check_optimizer` and `check_scheduler` validate the same dicts when the model is
built, so a typo fails before any data is read.
"""

import inspect
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
# Both GANs' players: Adam at 2e-4 with beta1 0.5, the DCGAN paper's recipe that pix2pix and CycleGAN keep.
GAN_ADAM: dict[str, Any] = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
TORCH_OPTIM = "torch.optim."
# The keys of the four built-in names; a torch.optim class gets any of them that are set, and `kwargs`.
CLASS_KEYS = ("momentum", "nesterov", "betas", "eps")


def optimizer_class(name: str) -> type[optim.Optimizer]:
    """One of the built-in names (adam, adamw, rmsprop, sgd) or any `torch.optim.<Class>`."""
    if str(name).startswith(TORCH_OPTIM):
        cls = getattr(optim, str(name).removeprefix(TORCH_OPTIM), None)
        if not (isinstance(cls, type) and issubclass(cls, optim.Optimizer)):
            raise ValueError(
                f"Unknown optimizer (model.optimizer.name) '{name}': torch.optim has no optimizer class of that "
                "name; use one such as torch.optim.NAdam, or one of adam, adamw, rmsprop, sgd."
            )
        return cls
    try:
        return choose(OPTIMIZERS, name, "optimizer (model.optimizer.name)")
    except ValueError as err:
        raise ValueError(f"{str(err).rstrip('.')}, or any torch.optim.<Class> (such as torch.optim.NAdam).") from None


def decay_groups(params: Iterable) -> list[dict[str, Any]]:
    """The parameter groups with each split in two: the decayed part, and biases and norm layers' parameters.

    The rule is nanoGPT's: tensors of two or more dimensions (the weights of linear, conv and embedding layers)
    decay, the others (biases, the scales and shifts of batch, layer, group and RMS norms) get weight_decay 0,
    as torchvision's recipes (`norm_weight_decay=0`) and most trusted ones do. These few values set the level
    and scale of activations rather than fitting the data through many weights: pulling them to 0 regularises
    nothing and only shrinks the signal (a batch norm's scale at 0 silences its channel). Group keys (a
    group's own `lr`) are kept on both halves; empty halves are dropped.
    """
    params = list(params)
    groups = params if params and isinstance(params[0], Mapping) else [{"params": params}]
    split = []
    for group in groups:
        members = list(group["params"])
        decayed = [p for p in members if p.ndim >= 2]
        exempt = [p for p in members if p.ndim < 2]
        if decayed:
            split.append({**group, "params": decayed})
        if exempt:
            split.append({**group, "params": exempt, "weight_decay": 0.0})
    return split


def build_optimizer(
    params: Iterable,
    name: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    decay_norm_bias: bool = False,
    momentum: float | None = None,
    nesterov: bool | None = None,
    betas: tuple[float, float] | None = None,
    eps: float | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> optim.Optimizer:
    """Builds an optimizer by name over parameters or parameter groups.

    `name`: adam, adamw, rmsprop, sgd, or any `torch.optim.<Class>`. `momentum` (default 0.9) and `nesterov`
    apply to SGD and RMSprop, `betas` and `eps` to Adam and AdamW; a torch.optim class gets `lr`,
    `weight_decay`, whichever of those four are set, and `kwargs`. With `weight_decay` > 0, biases and norm
    parameters are not decayed (`decay_groups`) unless `decay_norm_bias` is true, the old behaviour.
    """
    optional = dict(zip(CLASS_KEYS, (momentum, nesterov, betas, eps), strict=True))
    check_optimizer({"name": name, "lr": lr, "weight_decay": weight_decay, "kwargs": kwargs, **optional})
    cls = optimizer_class(name)
    if weight_decay > 0 and not decay_norm_bias:
        params = decay_groups(params)
    if str(name).startswith(TORCH_OPTIM):
        extra = {key: value for key, value in optional.items() if value is not None}
        if weight_decay:
            extra["weight_decay"] = weight_decay
        return cls(params, lr=lr, **extra, **(kwargs or {}))
    momentum = 0.9 if momentum is None else momentum
    eps = 1e-8 if eps is None else eps
    if cls is optim.SGD:
        return cls(
            params, lr=lr, momentum=momentum, nesterov=bool(nesterov) and momentum > 0, weight_decay=weight_decay
        )
    if cls is optim.RMSprop:
        return cls(params, lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps)
    return cls(params, lr=lr, betas=tuple(betas or (0.9, 0.999)), weight_decay=weight_decay, eps=eps)


def check_optimizer(settings: Mapping[str, Any]) -> None:
    """Fails with one sentence on settings `build_optimizer` would refuse: an unknown name, key or argument."""
    known = set(inspect.signature(build_optimizer).parameters) - {"params"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"Unknown optimizer setting(s) {', '.join(f'model.optimizer.{key}' for key in unknown)}: the settings "
            f"are {', '.join(sorted(known))} (arguments of a torch.optim class go in model.optimizer.kwargs)."
        )
    name = settings.get("name", "adam")
    cls = optimizer_class(name)
    if settings.get("lr", 1e-3) <= 0:
        raise ValueError(f"The learning rate must be positive, got model.optimizer.lr={settings['lr']}.")
    if not str(name).startswith(TORCH_OPTIM):
        if settings.get("kwargs"):
            raise ValueError(
                f"model.optimizer.kwargs applies to torch.optim classes only: set model.optimizer.name="
                f"torch.optim.{cls.__name__} to pass {', '.join(settings['kwargs'])}."
            )
        return
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    passed = {"lr", *(settings.get("kwargs") or {})}
    if settings.get("weight_decay"):
        passed.add("weight_decay")
    passed |= {key for key in CLASS_KEYS if settings.get(key) is not None}
    refused = sorted(passed - accepted)
    if refused:
        raise ValueError(
            f"{name} takes no argument {', '.join(refused)} (model.optimizer): its arguments are "
            f"{', '.join(sorted(accepted))} (drop a setting with ~model.optimizer.KEY)."
        )


SCHEDULERS = ("none", "cosine", "onecycle", "plateau")
WARMUP_SCHEDULERS = ("none", "cosine")


def warmup_length(total_steps: int, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> int:
    """The warm-up in steps: `warmup_steps`, or `warmup_fraction` of the run's steps."""
    if warmup_steps and warmup_fraction:
        raise ValueError("Set one of model.scheduler.warmup_steps and model.scheduler.warmup_fraction, not both.")
    return int(warmup_steps) if warmup_steps else round(warmup_fraction * total_steps)


def check_scheduler(settings: Mapping[str, Any] | None) -> None:
    """Fails with one sentence on a schedule `build_scheduler` would refuse."""
    settings = settings or {}
    known = set(inspect.signature(build_scheduler).parameters) - {"optimizer", "total_steps"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"Unknown scheduler setting(s) {', '.join(f'model.scheduler.{key}' for key in unknown)}: the settings "
            f"are {', '.join(sorted(known))}."
        )
    key = str(settings.get("name") or "none").lower()
    if key not in SCHEDULERS:
        raise ValueError(
            f"Unknown scheduler '{settings.get('name')}' (model.scheduler.name): choose one of {', '.join(SCHEDULERS)}."
        )
    steps, fraction = settings.get("warmup_steps") or 0, settings.get("warmup_fraction") or 0.0
    if steps < 0 or not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"model.scheduler.warmup_steps must be >= 0 and warmup_fraction in [0, 1), got {steps} and {fraction}."
        )
    warmup_length(1, steps, fraction)
    if settings.get("mode", "min") not in ("min", "max"):
        raise ValueError(
            f"model.scheduler.mode must be min (the monitored metric should fall) or max (it should rise), "
            f"got {settings['mode']!r}."
        )
    if (steps or fraction) and key not in WARMUP_SCHEDULERS:
        raise ValueError(
            f"Linear warm-up applies to the cosine and constant (none) schedules, not '{key}': onecycle warms up "
            "by itself (model.scheduler.pct_start); drop model.scheduler.warmup_steps/warmup_fraction."
        )


def build_scheduler(
    optimizer: optim.Optimizer,
    total_steps: int,
    name: str | None = "none",
    min_lr_ratio: float = 0.0,
    pct_start: float = 0.3,
    factor: float = 0.1,
    patience: int = 5,
    monitor: str = "val/loss",
    mode: str = "min",
    warmup_steps: int = 0,
    warmup_fraction: float = 0.0,
) -> dict[str, Any] | None:
    """Builds a learning-rate schedule as Lightning's scheduler dict, or None for a constant rate.

    cosine and onecycle step every batch over `total_steps` (the trainer's estimate); plateau steps once an
    epoch on `monitor`, which should fall (`mode` min) or rise (`mode` max). A warm-up of w steps
    (`warmup_steps`, or `warmup_fraction` of `total_steps`) in front of cosine or none gives step k (from 0)
    the rate lr * (k + 1) / (w + 1) for k < w, nanoGPT's linear warm-up; the cosine then runs over the
    remaining total_steps - w steps.
    """
    check_scheduler({"name": name, "warmup_steps": warmup_steps, "warmup_fraction": warmup_fraction, "mode": mode})
    key = str(name or "none").lower()
    warmup = min(warmup_length(total_steps, warmup_steps, warmup_fraction), max(total_steps - 1, 0))
    if key == "none" and not warmup:
        return None
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    if key in WARMUP_SCHEDULERS:
        schedules = []
        if warmup:
            schedules.append(optim.lr_scheduler.LinearLR(optimizer, 1.0 / (warmup + 1), 1.0, total_iters=warmup))
        if key == "cosine":
            schedules.append(
                optim.lr_scheduler.CosineAnnealingLR(
                    optimizer, T_max=max(total_steps - warmup, 1), eta_min=min(base_lrs) * min_lr_ratio
                )
            )
        scheduler = (
            schedules[0]
            if len(schedules) == 1
            else optim.lr_scheduler.SequentialLR(optimizer, schedules, milestones=[warmup])
        )
        return {"scheduler": scheduler, "interval": "step"}
    if key == "onecycle":
        scheduler = optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=base_lrs, total_steps=max(total_steps, 1), pct_start=pct_start
        )
        return {"scheduler": scheduler, "interval": "step"}
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
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
