from collections.abc import Mapping
from typing import Any

import optuna
import torch.distributed as dist
from omegaconf import DictConfig, open_dict
from optuna_integration import PyTorchLightningPruningCallback

from litlab.search.storage import build_storage, study_and_trial_ids
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

# Trial system attributes of a trial trained on several DDP processes: what each rank trained with (its model's
# and data's values of the trial's parameters), and why rank 0's pruner stopped every rank.
RANKS_ATTR = "litlab:ranks"
PRUNED_ATTR = "litlab:pruned"
# DDP's script launcher and its variants, and the spawn launcher's name for each
SPAWNED = {
    "ddp": "ddp_spawn",
    "ddp_find_unused_parameters_false": "ddp_spawn_find_unused_parameters_false",
    "ddp_find_unused_parameters_true": "ddp_spawn_find_unused_parameters_true",
}


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

    On several DDP processes the trial is one trial: the worker asked the study for its parameters and every
    rank trains the model built with them (`spawn_ranks`; each rank's values are checked alike and kept in the
    trial's `litlab:ranks`). Rank 0 alone reports and asks the pruner; its answer reaches every rank, which all
    stop at the same epoch, and `litlab:pruned` tells the worker to record the trial PRUNED (`pruned_by_ranks`).
    Optuna's own DDP support wants a database storage; this works with any storage of a sweep.

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

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.is_ddp_backend = trainer.world_size > 1
        if self.is_ddp_backend:
            self._check_ranks_agree(trainer, pl_module)

    def _check_ranks_agree(self, trainer: Any, pl_module: Any) -> None:
        """Gathers each rank's values of the trial's parameters, keeps them in the trial, and refuses a difference."""
        sources = {"model": pl_module.hparams, "data": getattr(trainer.datamodule, "hparams", None)}
        seen = {name: _lookup(sources, name) for name in sorted(self.trial.params)}
        ranks: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(ranks, seen)
        if trainer.is_global_zero:
            self.trial.storage.set_trial_system_attr(self.trial._trial_id, RANKS_ATTR, ranks)
        if any(rank != ranks[0] for rank in ranks):
            raise RuntimeError(
                f"The {len(ranks)} DDP ranks of trial {self.trial.number} train with different parameters ({ranks}): "
                "start them with trainer.strategy=ddp_spawn, which gives each the same model."
            )

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.is_ddp_backend:
            self._report_from_rank_zero(trainer, pl_module)
            return
        try:
            super().on_validation_end(trainer, pl_module)
        except optuna.TrialPruned as pruned:
            # No error: the sweep records the trial PRUNED; the run's log says why it stopped early.
            log.info(f"Optuna pruned this trial: {pruned}")
            raise

    def _report_from_rank_zero(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        epoch = pl_module.current_epoch
        prune = False
        if trainer.is_global_zero:
            self.trial.report(trainer.callback_metrics[self.monitor].item(), step=epoch)
            prune = self.trial.should_prune()
        # Every rank stops at the same epoch, so none waits for the others at the next collective.
        if not trainer.strategy.broadcast(prune):
            return
        trainer.should_stop = True
        if trainer.is_global_zero:
            reason = f"Trial was pruned at epoch {epoch}."
            self.trial.storage.set_trial_system_attr(self.trial._trial_id, PRUNED_ATTR, reason)
            log.info(f"Optuna pruned this trial: {reason} All {trainer.world_size} ranks stop.")

    def comparable_hparams(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """What `log_hyperparameters` shows in the HParams tab for this run: the trial's number and
        parameters (`optuna/<name>`), and the metrics beside them."""
        params = {"trial": self.trial.number, **self.trial.params}
        return {f"optuna/{name}": value for name, value in params.items()}, self.hparam_metrics


def _lookup(sources: Mapping[str, Any], name: str) -> Any:
    """The value of a parameter (`model.optimizer.lr`) in the hyperparameters of its part, None if it has none."""
    part, *path = name.split(".")
    value = sources.get(part)
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def pruned_by_ranks(storage: optuna.storages.BaseStorage, trial_id: int) -> str | None:
    """Why the ranks of a DDP trial stopped (the reason rank 0 recorded), or None if they were not pruned."""
    return storage.get_trial_system_attrs(trial_id).get(PRUNED_ATTR)


def spawn_ranks(config: DictConfig) -> None:
    """Makes a trial's job that trains with DDP's script launcher (`trainer.strategy=ddp`) use the spawn launcher.

    The script launcher starts each further rank as `python <this command's arguments>`: in a sweep, a sweep of
    its own that asks the study for parameters of its own (and, in a launcher's worker process, not even that
    command). The spawn launcher hands every rank the model this process built with the trial's parameters.
    """
    trainer = config.get("trainer") or {}
    strategy = trainer.get("strategy")
    if isinstance(strategy, str) and strategy in SPAWNED:
        log.info(f"A trial's ranks get its parameters from this worker: trainer.strategy={SPAWNED[strategy]}.")
        with open_dict(config):
            config.trainer.strategy = SPAWNED[strategy]
