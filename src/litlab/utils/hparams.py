from collections.abc import Iterable, Mapping
from typing import Any

from lightning.fabric.utilities.logger import _convert_params, _flatten_dict, _sanitize_params
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import DictConfig
from torch.utils.tensorboard.summary import hparams as hparams_summary

from litlab.masking import masked_container
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

# Keys that say where files are, how fast data loads or what gets drawn, not what is trained: a comparison
# of runs leaves them out.
MODEL_SKIPPED = frozenset(
    {
        "_recursive_",
        "_partial_",
        "class_names",
        "compile",
        "analogy_path",
        "similarity_path",
        "vectors_file",
        "grid_images",
        "projector_words",
        "samples_per_class",
    }
)
DATA_SKIPPED = frozenset({"data_dir", "root", "download", "num_workers", "pin_memory", "eval_batch_size"})
TRAINER_KEPT = ("max_epochs", "precision")
# The metrics every run's HParams row shows, beside the run's optimized_metric (those a model never logs
# stay empty).
HEADLINE_METRICS = ("val/loss", "val/acc", "test/loss", "test/acc")


def _without(section: Mapping[str, Any] | None, skipped: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in (section or {}).items() if key not in skipped}


def comparable_hparams(cfg: DictConfig, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The hyperparameters runs are compared by, flattened to `model/net/dropout`-style names.

    The model (its network, optimizer and scheduler included), the data, the trainer's epochs and precision,
    the seed and what the run's callbacks add (`extra`: in an Optuna sweep, the trial's number and sampled
    parameters as `optuna/<name>`); callbacks, loggers, paths and worker counts stay in the run folder's
    `.hydra/config.yaml`. Values from the environment show as their `${oc.env:NAME}` (`litlab.masking`).
    """
    config, _ = masked_container(cfg)
    hparams = {
        "model": _without(config.get("model"), MODEL_SKIPPED),
        "data": _without(config.get("data"), DATA_SKIPPED),
        "trainer": {key: config.get("trainer", {}).get(key) for key in TRAINER_KEPT},
        "seed": config.get("seed"),
    }
    hparams.update(extra or {})
    return _sanitize_params(_flatten_dict(_convert_params(hparams)))


@rank_zero_only
def log_hyperparameters(object_dict: dict[str, Any]) -> None:
    """Sends the run's comparable hyperparameters (`comparable_hparams`) to every logger.

    TensorBoard shows them in its HParams tab beside the headline metrics, so runs and the trials of a
    sweep can be compared side by side.
    """
    cfg = object_dict["cfg"]
    trainer = object_dict["trainer"]
    if not trainer.logger:
        log.warning("No logger is configured: hyperparameters are not logged.")
        return
    extra, metric_names = {}, [cfg.get("optimized_metric"), *HEADLINE_METRICS]
    for callback in object_dict.get("callbacks", ()):
        # A callback that knows what sets this run apart (a sweep's trial callback: its trial's parameters)
        # contributes those, and the metrics they are judged by, without this generic code naming it.
        contribute = getattr(callback, "comparable_hparams", None)
        if callable(contribute):
            params, metrics = contribute()
            extra.update(params)
            metric_names += metrics
    hparams = comparable_hparams(cfg, extra)
    for logger in trainer.loggers:
        logger.log_hyperparams(hparams)
        if isinstance(logger, TensorBoardLogger):
            write_hparams_summary(logger, hparams, dict.fromkeys(name for name in metric_names if name), extra)


def write_hparams_summary(
    logger: TensorBoardLogger, params: dict[str, Any], metric_names: Iterable[str], leading: Iterable[str] = ()
) -> None:
    """Writes the summary behind TensorBoard's HParams tab: these parameters, beside these logged metrics
    (the first of them in the first column).

    Lightning writes it only together with metric values logged at step 0, which would put false points
    on the curves; written directly, it only names the metrics whose scalars the tab then shows. The tab
    orders its columns by whether a parameter differs between runs, then by name, and shows the first few:
    the `leading` parameters (a sweep's searched ones) are marked as the ones that differ, so that they come
    first, ahead of the settings every trial shares.
    """
    flat = _sanitize_params(_flatten_dict(_convert_params(params)))  # the summary takes scalars and strings only
    experiment, *session = hparams_summary(flat, dict.fromkeys(metric_names, 0.0))
    _lead_with(experiment, set(leading))
    writer = logger.experiment._get_file_writer()
    for summary in (experiment, *session):
        writer.add_summary(summary)


def _lead_with(experiment: Any, leading: set[str]) -> None:
    """Puts the `leading` parameters first in an HParams experiment summary, marked as differing between runs."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    metadata = experiment.value[0].metadata
    data = HParamsPluginData.FromString(metadata.plugin_data.content)
    infos = []
    for info in sorted(data.experiment.hparam_infos, key=lambda info: info.name not in leading):
        infos.append(type(info)())
        infos[-1].CopyFrom(info)
        infos[-1].differs = info.name in leading
    del data.experiment.hparam_infos[:]
    data.experiment.hparam_infos.extend(infos)
    metadata.plugin_data.content = data.SerializeToString()
