"""The recipe of a training run: `python train.py experiment=NAME [key=value ...]`.

The `@hydra.main` lives in the root train.py, which imports this module only once the run starts.
"""

from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from litlab import speed
from litlab.utils.checkpoint import Checkpoint
from litlab.utils.errors import report_errors
from litlab.utils.instantiators import drop_logger_callbacks, instantiate_callbacks, instantiate_loggers
from litlab.utils.logging_utils import log_hyperparameters
from litlab.utils.pylogger import RankedLogger
from litlab.utils.resume import resolve_last_checkpoint
from litlab.utils.summary import print_run_summary
from litlab.utils.utils import extras, get_metric_value, task_wrapper

log = RankedLogger(__name__)


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the model, then tests the best checkpoint; returns the metrics and the objects it built."""
    speed.apply(cfg.get("speedups", True))
    resolve_last_checkpoint(cfg)  # ckpt_path=last: the newest last.ckpt of this task and experiment
    if cfg.get("train") and cfg.get("ckpt_path"):
        Checkpoint.open(cfg.ckpt_path)  # a missing or corrupt file fails now, in one sentence, before any work
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    log.info(f"Instantiating datamodule <{cfg.data._target_}>")
    datamodule: LightningDataModule = instantiate(cfg.data)

    log.info(f"Instantiating model <{cfg.model._target_}>")
    model: LightningModule = instantiate(cfg.model)

    callbacks: list[Callback] = instantiate_callbacks(cfg.get("callbacks"))
    logger: list[Logger] = instantiate_loggers(cfg.get("logger"))
    callbacks = drop_logger_callbacks(callbacks, logger)

    log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
    trainer: Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=logger or False, **speed.trainer_kwargs(cfg)
    )

    object_dict = {
        "cfg": cfg,
        "datamodule": datamodule,
        "model": model,
        "callbacks": callbacks,
        "logger": logger,
        "trainer": trainer,
    }
    if logger:
        log_hyperparameters(object_dict)

    if cfg.get("train"):
        log.info("Starting training!")
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_metrics = dict(trainer.callback_metrics)

    if cfg.get("test"):
        ckpt_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not ckpt_path:
            log.warning("No best checkpoint was saved: testing the weights as they are now.")
            ckpt_path = None
        log.info(f"Starting testing! Checkpoint: {ckpt_path}")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    test_metrics = dict(trainer.callback_metrics)

    metric_dict = {**train_metrics, **test_metrics}
    print_run_summary(metric_dict, trainer, cfg)
    return metric_dict, object_dict


@report_errors
def run(cfg: DictConfig) -> float | None:
    """What `python train.py` runs: extras, then `train`; returns `optimized_metric` for a sweeper to optimise.

    An error ends a single run with one sentence on the terminal (litlab.utils.errors).
    """
    extras(cfg)
    metric_dict, _ = train(cfg)
    return get_metric_value(metric_dict, cfg.get("optimized_metric"))
