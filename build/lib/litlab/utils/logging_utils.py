from typing import Any

from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import OmegaConf

from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


@rank_zero_only
def log_hyperparameters(object_dict: dict[str, Any]) -> None:
    """Sends the run's config and the model's parameter counts to every logger.

    TensorBoard shows them in its HParams tab, so runs of a sweep can be compared side by side.
    """
    cfg = OmegaConf.to_container(object_dict["cfg"], resolve=True)
    model = object_dict["model"]
    trainer = object_dict["trainer"]
    if not trainer.logger:
        log.warning("No logger is configured: hyperparameters are not logged.")
        return

    hparams = {key: cfg.get(key) for key in ("model", "data", "trainer", "callbacks", "task_name", "tags")}
    hparams["model/params/total"] = sum(p.numel() for p in model.parameters())
    hparams["model/params/trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    hparams["model/params/non_trainable"] = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    hparams["seed"] = cfg.get("seed")
    hparams["ckpt_path"] = cfg.get("ckpt_path")
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)
