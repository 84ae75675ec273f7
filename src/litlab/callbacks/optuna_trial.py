from typing import Any

import optuna
from optuna_integration import PyTorchLightningPruningCallback

from litlab.search.storage import build_storage, study_and_trial_ids
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


def sweep_storage() -> Any:
    """The storage of the sweep that launched this run, as its config gives it (resolved in this process only)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hydra_cfg = HydraConfig.get()
    spec = hydra_cfg.sweeper.get("storage")
    spec = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else spec
    return build_storage(spec, hydra_cfg.sweep.dir)


class OptunaTrialCallback(PyTorchLightningPruningCallback):
    """Reports `monitor` to an Optuna trial after every validation epoch and stops the run when it is pruned.

    An Optuna sweep (`hydra/sweeper=litlab_optuna`) adds this callback to each trial's config as
    `callbacks.optuna_trial` with the study's name and the trial's number, so the trial is found through the
    study's storage from whatever process or machine runs the job. Optuna's own callback does the reporting
    and raises `optuna.TrialPruned`, which the sweep records as PRUNED. `log_hyperparameters` puts the trial's
    number and parameters, and `hparam_metrics`, in TensorBoard's HParams tab (`comparable_hparams`), so
    that it compares all trials.

    storage: a storage URL, `optuna.storages` object or None for the storage of the sweep that launched this run
        (read from Hydra's runtime config, so a password in it never enters the run's own config).
    pruner: the study's pruner (None: never prune); pruners are not stored with a study, so each run gets it.
    """

    def __init__(
        self,
        study_name: str,
        trial_number: int,
        monitor: str,
        storage: Any = None,
        pruner: optuna.pruners.BasePruner | None = None,
        hparam_metrics: tuple[str, ...] = ("val/loss", "val/acc"),
    ) -> None:
        if not monitor:
            raise ValueError(
                "An Optuna trial needs a metric to report: set optimized_metric (or hydra.sweeper.monitor)."
            )
        storage = sweep_storage() if storage is None else build_storage(storage, ".")
        # This run only reports and asks whether to stop; its sampler never samples.
        study = optuna.load_study(
            study_name=study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),
            pruner=pruner or optuna.pruners.NopPruner(),
        )
        _, trial_id = study_and_trial_ids(storage, study_name, trial_number)
        super().__init__(optuna.trial.Trial(study, trial_id), monitor)
        # The scalars the HParams tab shows beside each trial's parameters.
        self.hparam_metrics = tuple(dict.fromkeys((monitor, *hparam_metrics)))

    @property
    def trial(self) -> optuna.trial.Trial:
        return self._trial

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            # No error: the sweep records the trial PRUNED; the run's log says why it stopped early.
            log.info(f"Optuna pruned this trial: {pruned}")
            raise

    def comparable_hparams(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """What `log_hyperparameters` shows in the HParams tab for this run: the trial's number and
        parameters (`optuna/<name>`), and the metrics beside them."""
        params = {"trial": self.trial.number, **self.trial.params}
        return {f"optuna/{name}": value for name, value in params.items()}, self.hparam_metrics
