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
from litlab.checkpoints.load import CheckpointFile
from litlab.checkpoints.resume import resolve_last_checkpoint
from litlab.run_record import RunRecorder, warn_if_code_changed
from litlab.utils.errors import report_errors
from litlab.utils.hparams import log_hyperparameters
from litlab.utils.instantiators import instantiate_callbacks, instantiate_loggers, instantiate_trainer
from litlab.utils.preflight import before_training
from litlab.utils.pylogger import RankedLogger
from litlab.utils.summary import print_run_summary
from litlab.utils.utils import extras, get_metric_value, task_context

log = RankedLogger(__name__)


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the model, then tests the best checkpoint; returns the metrics and the objects it built."""
    with task_context(cfg):
        speed.apply(cfg.get("speedups", True))
        # ckpt_path=last: the newest last.ckpt of this task and experiment; any checkpoint is checked now, in one
        # sentence, before any work (a memory-mapped read: Lightning reads its tensors once, when it resumes),
        # and one line says so when it was written by other code
        resolve_last_checkpoint(cfg)
        if cfg.get("train") and cfg.get("ckpt_path"):
            warn_if_code_changed(CheckpointFile.open(cfg.ckpt_path, mmap=True).record.get("run"))
        if cfg.get("seed") is not None:
            L.seed_everything(cfg.seed, workers=True)

        log.info(f"Instantiating datamodule <{cfg.data._target_}>")
        datamodule: LightningDataModule = instantiate(cfg.data)

        log.info(f"Instantiating model <{cfg.model._target_}>")
        model: LightningModule = instantiate(cfg.model)

        callbacks: list[Callback] = [*instantiate_callbacks(cfg.get("callbacks")), RunRecorder(cfg)]
        logger: list[Logger] = instantiate_loggers(cfg.get("logger"))
        trainer: Trainer = instantiate_trainer(cfg, callbacks, logger)

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
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
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


def run(cfg: DictConfig) -> float | None:
    """What `python train.py` runs: the checks of its inputs, extras, then `train`; returns `optimized_metric` for
    a sweeper to optimise.

    An error ends a single run with one sentence on the terminal (`litlab.utils.errors`).
    """
    with report_errors():
        before_training(cfg)
        extras(cfg)
        metric_dict, _ = train(cfg)
        return get_metric_value(metric_dict, cfg.get("optimized_metric"))
