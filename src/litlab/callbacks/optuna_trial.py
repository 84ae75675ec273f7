from typing import Any

import optuna
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig
from optuna_integration import PyTorchLightningPruningCallback

from litlab.search.trial import LiveTrial, current_trial
from litlab.utils.logging_utils import write_hparams_summary


class OptunaTrialCallback(PyTorchLightningPruningCallback):
    """Reports `monitor` to the run's Optuna trial after every validation epoch and stops a pruned run at once.

    Optuna's own callback does the reporting and raises `optuna.TrialPruned`; this one also notes the
    epoch of pruning for the sweeper and tags the TensorBoard run with the trial's number and parameters,
    so that TensorBoard's HParams tab compares all trials of a sweep.
    """

    def __init__(self, live: LiveTrial, monitor: str, hparam_metrics: tuple[str, ...] = ()):
        super().__init__(live.trial, monitor)
        self.live = live
        # The scalars the HParams tab shows beside each trial's parameters.
        self.hparam_metrics = tuple(dict.fromkeys((monitor, *hparam_metrics)))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if trainer.is_global_zero:
            self._tag_tensorboard(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned:
            self.live.pruned_at_epoch = pl_module.current_epoch
            raise

    def _tag_tensorboard(self, trainer: Trainer) -> None:
        trial = self.live.trial
        params: dict[str, Any] = {"optuna/trial": trial.number, "optuna/study": trial.study.study_name}
        params.update({f"optuna/{name}": value for name, value in trial.params.items()})
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_hyperparams(params)
                write_hparams_summary(logger, params, self.hparam_metrics)


def trial_callbacks(cfg: DictConfig) -> list[Callback]:
    """The callbacks a run needs when an Optuna sweep launched it (none otherwise)."""
    live = current_trial(cfg)
    if live is None:
        return []
    monitor = live.monitor or cfg.get("optimized_metric")
    if not monitor:
        raise ValueError("An Optuna trial needs a metric to report: set optimized_metric (or hydra.sweeper.monitor).")
    return [OptunaTrialCallback(live, monitor, hparam_metrics=("val/loss", "val/acc"))]
