"""The recipe of an evaluation: `python eval.py ckpt_path=PATH [data=NAME ...]`."""

from typing import Any

import hydra
from hydra.utils import instantiate
from lightning import LightningDataModule, LightningModule, Trainer
from omegaconf import DictConfig

from litlab import CONFIG_DIR
from litlab.utils import (
    RankedLogger,
    drop_logger_callbacks,
    extras,
    instantiate_callbacks,
    instantiate_loggers,
    log_hyperparameters,
    task_wrapper,
)
from litlab.utils.checkpoint import Checkpoint, CheckpointError
from litlab.utils.cli import accept_null_groups
from litlab.utils.errors import report_errors
from litlab.utils.whitelist import EXECUTION_WHITELIST

log = RankedLogger(__name__)


@task_wrapper
def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tests a checkpoint on the test split; the model (and, unless `data=` is given, the data) come from it."""
    if not cfg.get("ckpt_path"):
        raise CheckpointError("No checkpoint given: pass ckpt_path=<run dir>/checkpoints/<file>.ckpt.")
    checkpoint = Checkpoint.open(cfg.ckpt_path)
    log.info(f"Rebuilding <{checkpoint.module_name}> from {cfg.ckpt_path}")
    model: LightningModule = checkpoint.module()

    if cfg.get("data"):
        log.info(f"Instantiating datamodule <{cfg.data._target_}>")
        datamodule: LightningDataModule = instantiate(cfg.data)
    else:
        log.info("Rebuilding the datamodule from the checkpoint's data settings")
        datamodule = checkpoint.datamodule()

    # Callbacks that act on the test run, e.g. Grad-CAM: `python eval.py ckpt_path=... +callbacks=gradcam`.
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    logger = instantiate_loggers(cfg.get("logger"))
    callbacks = drop_logger_callbacks(callbacks, logger)
    trainer: Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger or False)
    object_dict = {"cfg": cfg, "datamodule": datamodule, "model": model, "logger": logger, "trainer": trainer}
    if logger:
        log_hyperparameters(object_dict)

    log.info("Starting testing!")
    trainer.test(model=model, datamodule=datamodule)
    return dict(trainer.callback_metrics), object_dict


@accept_null_groups
@hydra.main(config_path=str(CONFIG_DIR), config_name="eval.yaml", execution_whitelist=EXECUTION_WHITELIST)
@report_errors
def main(cfg: DictConfig) -> None:
    extras(cfg)
    evaluate(cfg)


if __name__ == "__main__":
    main()
