"""The targets that configs may instantiate (Hydra 1.4's execution whitelist).

The list lives in trusted code, never in a config, so that a config (or the hyperparameters inside a
downloaded checkpoint) cannot authorise its own code. It names what configs need (the Trainer,
callbacks, loggers, profilers, strategies, plugins, optimizers, Optuna's samplers, pruners and
storages, litlab's own data, models and callbacks) and not whole libraries: `lightning.pytorch.*`
let a config call `LightningModule.load_from_checkpoint(weights_only=False)`, which runs any pickle.

Your own packages (networks, LightningModules, datamodules, callbacks, optimizers and schedulers outside
litlab), and any third-party package whose classes configs and checkpoints should name, go in TRUSTED_PACKAGES
below: that one tuple extends every list here (docs/extending.md).
"""

import fnmatch
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

# The one place to add a package: its name, e.g. ("mylab",) admits every class under mylab.*.
TRUSTED_PACKAGES: tuple[str, ...] = ()
_TRUSTED = tuple(f"{package}.*" for package in TRUSTED_PACKAGES)

# Optimizer and scheduler classes that `model.optimizer` and `model.scheduler` (and so checkpoints) may name.
OPTIMIZER_WHITELIST: tuple[str, ...] = ("torch.optim.*", "lion_pytorch.*", "pytorch_optimizer.*", *_TRUSTED)

EXECUTION_WHITELIST: tuple[str, ...] = (
    "litlab.data.*",
    "litlab.models.*",
    "litlab.callbacks.*",
    "litlab.speed.NoProfiler",
    "litlab.loggers.*",
    # Hydra's callback that reports what fails outside a task in one sentence (configs/hydra/default.yaml)
    "litlab.utils.errors.OneSentenceErrors",
    # exact names: the rest of litlab.checkpoints reads files, which configs must not reach
    "litlab.checkpoints.AtomicCheckpointIO",
    "litlab.checkpoints.LastEveryEpochCheckpoint",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.trainer.Trainer",
    "lightning.pytorch.trainer.trainer.Trainer",
    "lightning.pytorch.callbacks.*",
    "lightning.pytorch.loggers.*",
    "lightning.pytorch.profilers.*",
    "lightning.pytorch.strategies.*",
    "lightning.pytorch.plugins.*",
    "lightning.pytorch.accelerators.*",
    "optuna.samplers.*",
    "optuna.pruners.*",
    "optuna.storages.*",
    *OPTIMIZER_WHITELIST,
)

# Networks named inside a LightningModule's hyperparameters: narrower, since checkpoints travel.
NET_WHITELIST: tuple[str, ...] = ("litlab.models.nets.*", "torchvision.models.*", *_TRUSTED)


def is_network(target: str) -> bool:
    """Whether a `_target_` names a network class that models and checkpoints may build (NET_WHITELIST)."""
    return any(fnmatch.fnmatchcase(target, pattern) for pattern in NET_WHITELIST)


class NetworkTargetError(ValueError):
    """A network setting names a `_target_` outside NET_WHITELIST.

    `key` is the setting as the model takes it (`net`, `generator`, ...): inside a config it is `model.<key>`,
    which `sentence` names.
    """

    def __init__(self, key: str, target: str):
        self.key, self.target = key, target
        super().__init__(self.sentence(key))

    def sentence(self, where: str) -> str:
        """The refusal, naming the config key `where` (e.g. `model.net`) that holds the target."""
        return (
            f"The config key `{where}._target_` names `{self.target}`, which is not a network: networks are classes "
            "of litlab.models.nets, torchvision.models or TRUSTED_PACKAGES (src/litlab/whitelist.py); name one of "
            "those."
        )


class ForbiddenTargetError(ValueError):
    """A config names a target that loads files (and so may run a pickle's code)."""


def _targets(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for name, child in node.items():
            path = f"{key}.{name}" if key else str(name)
            if name == "_target_" and isinstance(child, str):
                yield path, child
            else:
                yield from _targets(child, path)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _targets(child, f"{key}[{index}]")


def refuse_loading_targets(cfg: DictConfig) -> None:
    """Refuses any `_target_` whose name loads (`load`, `loads`, `load_from_checkpoint`, `pl_load`, downloads...).

    The whitelist admits packages; inside them, loading functions (a checkpoint's pickle runs code
    unless `weights_only=True`) must still stay out of configs' reach. Checkpoints enter a run
    through `ckpt_path`, which litlab reads with `weights_only=True`.
    """
    for path, target in _targets(OmegaConf.to_container(cfg, resolve=False)):
        if "load" in target.rsplit(".", 1)[-1].lower():
            raise ForbiddenTargetError(
                f"The config key `{path}` names `{target}`, a loading function, which configs may not call (it can "
                "run a pickle's code): remove it, and pass checkpoints with ckpt_path= instead."
            )
