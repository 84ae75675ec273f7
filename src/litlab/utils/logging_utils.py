from collections.abc import Iterable
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict, _sanitize_params
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import OmegaConf
from torch.utils.tensorboard.summary import hparams as hparams_summary

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
    metric_names = [name for name in (cfg.get("optimized_metric"), "val/loss", "test/acc", "test/loss") if name]
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)
        # A callback may write this summary itself with its own parameters (an Optuna trial's, in a sweep):
        # TensorBoard shows only the first summary of a run.
        owned = any(getattr(callback, "writes_hparams_summary", False) for callback in trainer.callbacks)
        if isinstance(logger, TensorBoardLogger) and not owned:
            write_hparams_summary(logger, hparams, metric_names)


def write_hparams_summary(logger: TensorBoardLogger, params: dict[str, Any], metric_names: Iterable[str]) -> None:
    """Writes the summary behind TensorBoard's HParams tab: these parameters, beside these logged metrics.

    Lightning writes it only together with metric values logged at step 0, which would put false points
    on the curves; written directly, it only names the metrics whose scalars the tab then shows.
    """
    flat = _sanitize_params(_flatten_dict(_convert_params(params)))  # the summary takes scalars and strings only
    writer = logger.experiment._get_file_writer()
    for summary in hparams_summary(flat, dict.fromkeys(metric_names, 0.0)):
        writer.add_summary(summary)
