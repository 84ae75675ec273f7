import optuna
from lightning import Callback, LightningModule, Trainer
from omegaconf import DictConfig
from optuna_integration import PyTorchLightningPruningCallback

from litlab.search.trial import LiveTrial, current_trial


class OptunaTrialCallback(PyTorchLightningPruningCallback):
    """Reports `monitor` to the run's Optuna trial after every validation epoch and stops a pruned run at once.

    Optuna's own callback does the reporting and raises `optuna.TrialPruned`; this one also notes the
    epoch of pruning for the sweeper. `log_hyperparameters` puts the trial's number and parameters, and
    `hparam_metrics`, in TensorBoard's HParams tab, so that it compares all trials of a sweep.
    """

    def __init__(self, live: LiveTrial, monitor: str, hparam_metrics: tuple[str, ...] = ()):
        super().__init__(live.trial, monitor)
        self.live = live
        # The scalars the HParams tab shows beside each trial's parameters.
        self.hparam_metrics = tuple(dict.fromkeys((monitor, *hparam_metrics)))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned:
            self.live.pruned_at_epoch = pl_module.current_epoch
            raise


def trial_callbacks(cfg: DictConfig) -> list[Callback]:
    """The callbacks a run needs when an Optuna sweep launched it (none otherwise)."""
    live = current_trial(cfg)
    if live is None:
        return []
    monitor = live.monitor or cfg.get("optimized_metric")
    if not monitor:
        raise ValueError("An Optuna trial needs a metric to report: set optimized_metric (or hydra.sweeper.monitor).")
    return [OptunaTrialCallback(live, monitor, hparam_metrics=("val/loss", "val/acc"))]
