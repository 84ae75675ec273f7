"""The recipe of an evaluation: `python eval.py ckpt_path=PATH [data=NAME ...]`.

The `@hydra.main` lives in the root eval.py, which imports this module only once the run starts.
"""

from typing import Any

from hydra.utils import instantiate
from lightning import LightningDataModule, LightningModule, Trainer
from omegaconf import DictConfig

from litlab import speed
from litlab.utils.checkpoint import Checkpoint, CheckpointError
from litlab.utils.errors import report_errors
from litlab.utils.instantiators import drop_logger_callbacks, instantiate_callbacks, instantiate_loggers
from litlab.utils.logging_utils import log_hyperparameters
from litlab.utils.pylogger import RankedLogger
from litlab.utils.utils import extras, task_wrapper

log = RankedLogger(__name__)


@task_wrapper
def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tests a checkpoint on the test split; the model (and, unless `data=` is given, the data) come from it."""
    if not cfg.get("ckpt_path"):
        raise CheckpointError("No checkpoint given: pass ckpt_path=<run dir>/checkpoints/<file>.ckpt.")
    speed.apply(cfg.get("speedups", True))
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
    trainer: Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=logger or False, **speed.trainer_kwargs(cfg)
    )
    object_dict = {"cfg": cfg, "datamodule": datamodule, "model": model, "logger": logger, "trainer": trainer}
    if logger:
        log_hyperparameters(object_dict)

    log.info("Starting testing!")
    trainer.test(model=model, datamodule=datamodule)
    return dict(trainer.callback_metrics), object_dict


@report_errors
def run(cfg: DictConfig) -> None:
    """What `python eval.py` runs: extras, then `evaluate`; an error ends it with one sentence on the terminal."""
    extras(cfg)
    evaluate(cfg)
