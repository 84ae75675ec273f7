"""The recipe of an evaluation: `python eval.py ckpt_path=PATH [data=NAME ...]`.

The `@hydra.main` lives in the root eval.py, which imports this module only once the run starts.
"""

from typing import Any

from hydra.utils import instantiate
from lightning import LightningDataModule, LightningModule, Trainer
from omegaconf import DictConfig

from litlab import speed
from litlab.checkpoints.load import CheckpointFile
from litlab.run_record import RunRecorder, warn_if_code_changed
from litlab.utils.errors import report_errors
from litlab.utils.hparams import log_hyperparameters
from litlab.utils.instantiators import instantiate_callbacks, instantiate_loggers, instantiate_trainer
from litlab.utils.preflight import before_evaluation, checkpoint_path
from litlab.utils.pylogger import RankedLogger
from litlab.utils.utils import extras, task_context

log = RankedLogger(__name__)


def evaluate(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tests a checkpoint on the test split; the model (and, unless `data=` is given, the data) come from it."""
    with task_context(cfg):
        ckpt_path = checkpoint_path(cfg, "eval.py")
        speed.apply(cfg.get("speedups", True))
        checkpoint = CheckpointFile.open(ckpt_path)
        warn_if_code_changed(checkpoint.record.get("run"))
        log.info(f"Rebuilding <{checkpoint.module_name}> from {cfg.ckpt_path}")
        model: LightningModule = checkpoint.module()

        if cfg.get("data"):
            log.info(f"Instantiating datamodule <{cfg.data._target_}>")
            datamodule: LightningDataModule = instantiate(cfg.data)
        else:
            log.info("Rebuilding the datamodule from the checkpoint's data settings")
            datamodule = checkpoint.datamodule()

        # Callbacks that act on the test run, e.g. Grad-CAM: `python eval.py ckpt_path=... +callbacks=gradcam`.
        callbacks = [*instantiate_callbacks(cfg.get("callbacks")), RunRecorder(cfg)]
        logger = instantiate_loggers(cfg.get("logger"))
        trainer: Trainer = instantiate_trainer(cfg, callbacks, logger)
        object_dict = {"cfg": cfg, "datamodule": datamodule, "model": model, "logger": logger, "trainer": trainer}
        if logger:
            log_hyperparameters(object_dict)

        log.info("Starting testing!")
        trainer.test(model=model, datamodule=datamodule)
        return dict(trainer.callback_metrics), object_dict


def run(cfg: DictConfig) -> None:
    """What `python eval.py` runs: the checks of its inputs, extras, then `evaluate`; an error ends it with one
    sentence on the terminal."""
    with report_errors():
        before_evaluation(cfg)
        extras(cfg)
        evaluate(cfg)
