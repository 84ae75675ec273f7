"""The recipe of a training run: `python train.py experiment=NAME [key=value ...]`."""

from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from litlab import CONFIG_DIR
from litlab.callbacks import trial_callbacks
from litlab.utils import (
    RankedLogger,
    drop_logger_callbacks,
    extras,
    get_metric_value,
    instantiate_callbacks,
    instantiate_loggers,
    log_hyperparameters,
    task_wrapper,
)
from litlab.utils.checkpoint import Checkpoint
from litlab.utils.cli import accept_null_groups
from litlab.utils.errors import report_errors
from litlab.utils.resume import resolve_last_checkpoint
from litlab.utils.summary import print_run_summary
from litlab.utils.whitelist import EXECUTION_WHITELIST

log = RankedLogger(__name__)


@task_wrapper
def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the model, then tests the best checkpoint; returns the metrics and the objects it built."""
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
    callbacks += trial_callbacks(cfg)  # reports to the Optuna trial when a sweep launched this run
    logger: list[Logger] = instantiate_loggers(cfg.get("logger"))
    callbacks = drop_logger_callbacks(callbacks, logger)

    log.info(f"Instantiating trainer <{cfg.trainer._target_}>")
    trainer: Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger or False)

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


@accept_null_groups
@hydra.main(config_path=str(CONFIG_DIR), config_name="train.yaml", execution_whitelist=EXECUTION_WHITELIST)
@report_errors
def main(cfg: DictConfig) -> float | None:
    """Hydra's entry point; returns `optimized_metric` so that a sweeper can optimise it."""
    extras(cfg)
    metric_dict, _ = train(cfg)
    return get_metric_value(metric_dict, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
