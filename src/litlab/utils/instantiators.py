"""Instantiating what the config names: callbacks, loggers and the Trainer (one function for every task)."""

from hydra.utils import instantiate
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import DeviceStatsMonitor, LearningRateMonitor
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


def _instantiate_group(cfg: DictConfig | None, kind: str) -> list:
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"The {kind} config must be a mapping of name to config, got {type(cfg).__name__}.")
    objects = []
    for name, conf in cfg.items():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            log.info(f"Instantiating {kind} <{conf._target_}>")
            objects.append(instantiate(conf))
        elif conf is not None:
            raise ValueError(f"The {kind} entry '{name}' has no _target_: give it one or set it to null.")
    return objects


def instantiate_callbacks(callbacks_cfg: DictConfig | None) -> list[Callback]:
    """Instantiates every callback of the `callbacks` group (entries set to null are skipped)."""
    return _instantiate_group(callbacks_cfg, "callback")


def instantiate_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """Instantiates every logger of the `logger` group (entries set to null are skipped)."""
    return _instantiate_group(logger_cfg, "logger")


# Callbacks that only feed a logger, and that Lightning refuses to run without one.
LOGGER_ONLY_CALLBACKS: tuple[type[Callback], ...] = (LearningRateMonitor, DeviceStatsMonitor)


def drop_logger_callbacks(callbacks: list[Callback], loggers: list[Logger]) -> list[Callback]:
    """Without a logger (`logger=null`, `~logger`), drops the callbacks that would only feed one, and says so."""
    if loggers:
        return callbacks
    dropped = [type(c).__name__ for c in callbacks if isinstance(c, LOGGER_ONLY_CALLBACKS)]
    if dropped:
        log.info(f"No logger configured: dropping the callbacks that need one ({', '.join(dropped)}).")
    return [c for c in callbacks if not isinstance(c, LOGGER_ONLY_CALLBACKS)]


def instantiate_trainer(
    cfg: DictConfig, callbacks: list[Callback] | None = None, loggers: list[Logger] | None = None
) -> Trainer:
    """The Trainer of `cfg.trainer` with these callbacks and loggers; train, eval and predict all build it here.

    Without a logger, the callbacks that would only feed one are dropped (`drop_logger_callbacks`).
    """
    loggers = loggers or []
    callbacks = drop_logger_callbacks(callbacks or [], loggers)
    log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
