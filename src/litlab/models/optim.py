"""Optimizers and learning-rate schedules from `_target_` mappings: any class, from torch.optim or any package.

`model.optimizer` and `model.scheduler` are written as Hydra writes any object (lightning-hydra-template's
`_partial_: true` is accepted), but a LightningModule keeps them as plain dicts in its hyperparameters and builds
the objects in `configure_optimizers`, with the parameter groups: a kept `functools.partial` cannot be pickled
(DDP spawn and checkpoints break), and a plain dict is read back with `torch.load(weights_only=True)`.
`check_optimization` validates both mappings once, when the module is built, so that a typo fails before any
data is read; `configure` builds them.

The keys of a mapping go to the class, all but these, which litlab reads (a key the class itself takes is the
class's):
- optimizer: `decay_norm_bias` (false: biases and norm layers' parameters get no weight decay; `decay_groups`);
- scheduler: Lightning's `interval` (step or epoch, Lightning's default epoch), `frequency`, `monitor`, `strict`
  and `name`; `warmup_steps` or `warmup_fraction`, a linear warm-up in front of the schedule (or of a constant
  rate when the mapping has no `_target_`);
- both: `_partial_` (the class is always called in `configure_optimizers`, with the parameters).

A schedule's length and peak follow the run unless the mapping sets them: an argument named in RUN_LENGTH
(`T_max`, `total_steps`, `total_iters`) gets the run's count of the schedule's intervals (optimizer steps for
`interval: step`, `trainer.max_epochs` for `interval: epoch`, divided by `frequency`, less the warm-up), and
`max_lr` gets the optimizer's learning rate (a list when the parameter groups' rates differ).

Classes are named by `_target_` under an execution whitelist (OPTIMIZER_WHITELIST in litlab's whitelist module),
since a checkpoint's hyperparameters name them too; add a package there to use its classes.
"""

import copy
import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import execution_whitelist, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import optim
from torch.optim.lr_scheduler import LinearLR, LRScheduler, OneCycleLR, ReduceLROnPlateau, SequentialLR

from litlab.whitelist import OPTIMIZER_WHITELIST

ADAM: dict[str, Any] = {"_target_": "torch.optim.Adam", "lr": 1e-3}
# Both GANs' players: Adam at 2e-4 with beta1 0.5, the DCGAN paper's recipe that pix2pix and CycleGAN keep.
GAN_ADAM: dict[str, Any] = {"_target_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.5, 0.999]}

OPTIMIZER_KEYS = ("_target_", "_partial_", "decay_norm_bias")
LIGHTNING_KEYS = ("interval", "frequency", "monitor", "strict", "name")
WARMUP_KEYS = ("warmup_steps", "warmup_fraction")
SCHEDULER_KEYS = ("_target_", "_partial_", *LIGHTNING_KEYS, *WARMUP_KEYS)
# A mapping without _target_ is a constant rate, after a warm-up if any ("name: cosine" there is a mistake).
CONSTANT_KEYS = ("_partial_", "interval", *WARMUP_KEYS)
# Arguments that measure a whole schedule: filled with the run's length when the config leaves them unset.
RUN_LENGTH = ("T_max", "total_steps", "total_iters")
PEAK = "max_lr"
INTERVALS = ("step", "epoch")
# What each key's class must derive from (Lightning steps no other kind of scheduler by itself).
KINDS: dict[str, tuple[type, ...]] = {
    "model.optimizer": (optim.Optimizer,),
    "model.scheduler": (LRScheduler, ReduceLROnPlateau),
}


def _mapping(spec: Any, key: str) -> dict[str, Any]:
    if isinstance(spec, DictConfig):
        return OmegaConf.to_container(spec, resolve=True)
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"{key} must be a mapping with a _target_, got a {type(spec).__name__}: set `_recursive_: false` in "
            "the model's config so that Hydra passes it on as written."
        )
    return copy.deepcopy(dict(spec))  # a default such as GAN_ADAM is never shared with a module's hyperparameters


def _class(spec: Mapping[str, Any], key: str) -> type:
    """The optimizer (key model.optimizer) or scheduler class `spec["_target_"]` names, if the whitelist admits it."""
    target = str(spec["_target_"])
    # Checked before anything is imported: importing a module runs its code, and checkpoints name these classes.
    if not any(target.startswith(pattern.removesuffix("*")) for pattern in OPTIMIZER_WHITELIST):
        raise ValueError(
            f"{key}._target_={target} is outside the packages configs and checkpoints may name "
            f"({', '.join(OPTIMIZER_WHITELIST)}): add its package to TRUSTED_PACKAGES in litlab's whitelist module."
        )
    try:
        # Hydra's own check, on the name and then on the class it finds, which also refuses aliases of other code.
        factory = instantiate(
            {"_target_": target, "_partial_": True},
            _execution_whitelist_=execution_whitelist(OPTIMIZER_WHITELIST, reset=True),
        )
    except InstantiationException as err:
        if isinstance(err.__cause__, ImportError):
            raise ValueError(
                f"{key}._target_={target} names no class that can be imported: fix the name, or install its package."
            ) from None
        # The name is admitted but leads elsewhere (an alias of a class outside the whitelist): Hydra says where.
        raise ValueError(f"{key}._target_={target} is refused: {str(err).splitlines()[0]}") from None
    cls, bases = factory.func, KINDS[key]
    if not (isinstance(cls, type) and issubclass(cls, bases)):
        names = " or ".join(f"{base.__module__}.{base.__name__}" for base in bases)
        raise ValueError(f"{key}._target_={target} is not a subclass of {names}: name a class that is.")
    return cls


def _arguments(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """The class's named arguments after the first (the parameters or the optimizer), and whether it takes **kwargs."""
    parameters = list(inspect.signature(cls).parameters.values())[1:]
    named = {p.name: p for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return named, any(p.kind is p.VAR_KEYWORD for p in parameters)


def _class_arguments(cls: type | None, spec: Mapping[str, Any], own: tuple[str, ...]) -> dict[str, Any]:
    """The keys of `spec` that go to the class: those it takes, and all but litlab's when it takes **kwargs."""
    if cls is None:
        return {}
    named, open_ended = _arguments(cls)
    # YAML has no tuples, and torch's signatures want them (betas, etas): lists become tuples.
    return {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in spec.items()
        if name in named or (open_ended and name not in own)
    }


def _check_arguments(cls: type, spec: Mapping[str, Any], key: str, own: tuple[str, ...], filled: tuple) -> None:
    named, _ = _arguments(cls)
    taken = _class_arguments(cls, spec, own)
    unknown = sorted(set(spec) - set(taken) - set(own))
    if unknown:
        raise ValueError(
            f"{spec['_target_']} takes no argument {', '.join(unknown)} ({key}): its arguments are "
            f"{', '.join(named)}, and litlab reads {', '.join(k for k in own if k != '_target_')} "
            f"(drop a setting with ~{key}.KEY)."
        )
    missing = [
        name for name, p in named.items() if p.default is p.empty and spec.get(name) is None and name not in filled
    ]
    if missing:
        raise ValueError(f"{spec['_target_']} needs {', '.join(f'{key}.{name}' for name in missing)}: set it.")


def warmup_length(total_steps: int, warmup_steps: int = 0, warmup_fraction: float = 0.0) -> int:
    """The warm-up in steps: `warmup_steps`, or `warmup_fraction` of the run's steps."""
    return int(warmup_steps) if warmup_steps else round(warmup_fraction * total_steps)


def _check_scheduler(spec: Mapping[str, Any], key: str) -> None:
    cls = _class(spec, key) if "_target_" in spec else None
    if cls is not None:
        _check_arguments(cls, spec, key, SCHEDULER_KEYS, (*RUN_LENGTH, PEAK))
    else:
        unknown = sorted(set(spec) - set(CONSTANT_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {', '.join(f'{key}.{name}' for name in unknown)} of a schedule without "
                f"_target_ (a constant rate): name a scheduler class with {key}._target_, or use only "
                f"{', '.join(CONSTANT_KEYS[1:])}."
            )
    own = {name: value for name, value in spec.items() if name not in _class_arguments(cls, spec, SCHEDULER_KEYS)}
    interval = own.get("interval", "epoch" if cls else "step")
    if interval not in INTERVALS:
        raise ValueError(f"{key}.interval must be step or epoch (when the rate changes), got {interval!r}.")
    steps, fraction = own.get("warmup_steps") or 0, own.get("warmup_fraction") or 0.0
    if steps < 0 or not 0.0 <= fraction < 1.0:
        raise ValueError(f"{key}.warmup_steps must be >= 0 and warmup_fraction in [0, 1), got {steps} and {fraction}.")
    if steps and fraction:
        raise ValueError(f"Set one of {key}.warmup_steps and {key}.warmup_fraction, not both.")
    if (steps or fraction) and interval != "step":
        raise ValueError(f"A warm-up counts optimizer steps: set {key}.interval=step, or drop the warm-up.")
    if (steps or fraction) and cls is not None and issubclass(cls, OneCycleLR | ReduceLROnPlateau):
        why = "it warms up by itself (pct_start)" if issubclass(cls, OneCycleLR) else "it follows a metric"
        raise ValueError(
            f"{cls.__name__} takes no linear warm-up in front of it ({why}): drop {key}.warmup_steps/warmup_fraction."
        )
    if cls is not None and issubclass(cls, ReduceLROnPlateau):
        if not own.get("monitor"):
            raise ValueError(f"{cls.__name__} follows a metric: set {key}.monitor (such as val/loss).")
        if spec.get("mode", "min") not in ("min", "max"):
            raise ValueError(
                f"{key}.mode must be min (the monitored metric should fall) or max (it should rise), "
                f"got {spec['mode']!r}."
            )


def check_optimization(
    optimizer: Mapping[str, Any] | None,
    scheduler: Mapping[str, Any] | None = None,
    default: Mapping[str, Any] = ADAM,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Plain copies of the optimizer and scheduler mappings, or one sentence naming the key that is wrong.

    Refused: a mapping without `_target_` (an optimizer) or with one outside the whitelist, a class that does
    not load or is no optimizer or scheduler, an argument the class does not take or a required one left out,
    a learning rate <= 0, a bad interval, plateau mode or warm-up. `optimizer` None is `default`.
    """
    key = "model.optimizer"
    spec = _mapping(default if optimizer is None else optimizer, key)
    if "_target_" not in spec:
        raise ValueError(
            f"{key} needs a _target_, an optimizer class such as torch.optim.AdamW (or a preset: model/optimizer="
            "adam, adamw, rmsprop or sgd)."
        )
    lr = spec.get("lr")
    if isinstance(lr, int | float) and lr <= 0:
        raise ValueError(f"The learning rate must be positive, got {key}.lr={lr}.")
    _check_arguments(_class(spec, key), spec, key, OPTIMIZER_KEYS, ())
    if scheduler is None:
        return spec, None
    schedule = _mapping(scheduler, "model.scheduler")
    _check_scheduler(schedule, "model.scheduler")
    return spec, schedule


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


def run_length(trainer: Any, interval: str, frequency: int = 1) -> int:
    """How many times a schedule steps in the run: optimizer steps or epochs, divided by `frequency`."""
    total = trainer.estimated_stepping_batches if interval == "step" else trainer.max_epochs
    if total is None or total < 0 or math.isinf(total):
        raise ValueError(
            "The run has no set length for the schedule to span: set trainer.max_epochs (or trainer.max_steps), "
            "or the schedule's own length in model.scheduler."
        )
    return math.ceil(total / frequency)


def configure(
    params: Iterable,
    optimizer: Mapping[str, Any],
    scheduler: Mapping[str, Any] | None = None,
    trainer: Any = None,
) -> dict[str, Any]:
    """The return value of `configure_optimizers`: the optimizer over `params`, and its schedule if any.

    `optimizer` and `scheduler` are mappings that `check_optimization` accepted. `params` are parameters or
    parameter groups; a group's `lr_scale` multiplies the optimizer's learning rate. With a weight decay > 0
    (given, or the class's default), biases and norm parameters are not decayed (`decay_groups`) unless
    `decay_norm_bias` is true. A warm-up of w steps gives step k (from 0) the rate lr * (k + 1) / (w + 1) for
    k < w, nanoGPT's linear warm-up, then the schedule runs over the remaining steps. `trainer` gives the run's
    length (see the module's docstring); it is needed only for a schedule.
    """
    cls = _class(optimizer, "model.optimizer")
    arguments = _class_arguments(cls, optimizer, OPTIMIZER_KEYS)
    # The class's own default counts too: AdamW decays at 0.01 unless told otherwise.
    default_decay = getattr(_arguments(cls)[0].get("weight_decay"), "default", 0)
    decay = arguments.get("weight_decay", default_decay)
    if decay and not optimizer.get("decay_norm_bias", False):
        params = decay_groups(params)
    opt = cls(params, **arguments)
    for group in opt.param_groups:
        group["lr"] = group["lr"] * group.get("lr_scale", 1)
    if not scheduler:
        return {"optimizer": opt}

    sched_cls = _class(scheduler, "model.scheduler") if "_target_" in scheduler else None
    arguments = _class_arguments(sched_cls, scheduler, SCHEDULER_KEYS)
    own = {name: value for name, value in scheduler.items() if name not in arguments}
    interval = own.get("interval", "epoch" if sched_cls else "step")
    named = _arguments(sched_cls)[0] if sched_cls else {}
    unset = [name for name in RUN_LENGTH if name in named and arguments.get(name) is None]
    steps, fraction = own.get("warmup_steps") or 0, own.get("warmup_fraction") or 0.0
    total = run_length(trainer, interval, own.get("frequency", 1)) if unset or steps or fraction else 0
    # At least one step is left to the schedule; a run without steps (limit_train_batches=0) warms nothing up.
    warmup = min(warmup_length(total, steps, fraction), max(total - 1, 0))
    rates = [group["lr"] for group in opt.param_groups]
    schedules = [LinearLR(opt, 1.0 / (warmup + 1), 1.0, total_iters=warmup)] if warmup else []
    if sched_cls is not None:
        fill = dict.fromkeys(unset, max(total - warmup, 1))
        if PEAK in named and arguments.get(PEAK) is None:
            fill[PEAK] = rates[0] if len(set(rates)) == 1 else rates
        schedules.append(sched_cls(opt, **{**arguments, **fill}))
    if not schedules:
        return {"optimizer": opt}
    schedule = schedules[0] if len(schedules) == 1 else SequentialLR(opt, schedules, milestones=[warmup])
    lightning = {name: own[name] for name in LIGHTNING_KEYS if name in own}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, **lightning, "interval": interval}}


def check_resumed_schedules(trainer: Any) -> None:
    """Refuses a resume whose one-cycle schedule is shorter than the run now asks for.

    OneCycleLR restores its planned total of steps from the checkpoint, so resuming with a larger
    `trainer.max_epochs` would train on until the schedule runs out, then fail with torch's "Tried to
    step ... times".
    """
    needed = trainer.estimated_stepping_batches
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if isinstance(scheduler, OneCycleLR) and scheduler.total_steps < needed:
            raise ValueError(
                f"The resumed one-cycle schedule was planned for {scheduler.total_steps} steps, but "
                f"trainer.max_epochs={trainer.max_epochs} needs {needed}: resume with the original "
                "trainer.max_epochs, or start a new run (without ckpt_path) for a longer schedule."
            )
