from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class LitlabOptunaSweeperConf(OptunaSweeperConf):
    """hydra-optuna-sweeper's settings, and:

    pruner: any `optuna.pruners.*` as a `_target_` mapping; null never prunes. Each trial reports
        `monitor` (default: the run's `optimized_metric`) after every validation epoch either way.
    timeout: seconds after which no new trial is launched (null: no time budget).
    n_trials: trials this sweep process launches (null: no cap, stop on `timeout` or an exhausted grid).
    storage: a database URL (`sqlite:///sweep.db`), or an `optuna.storages.*` `_target_` mapping such as
        a JournalStorage; with a `study_name`, a rerun continues the study and processes can share it.
    max_failure_rate: the share of this sweep's trials (of n_trials, or of those launched so far when n_trials
        is null) that may fail, by a crash or a NaN value, before the sweep stops.
    custom_search_space_kwargs: keyword arguments for the `custom_search_space` function.
    """

    _target_: str = "hydra_plugins.litlab_optuna_sweeper.sweeper.LitlabOptunaSweeper"
    pruner: Any = None
    timeout: float | None = None
    n_trials: int | None = 20
    n_jobs: int = 1
    monitor: str | None = None
    custom_search_space_kwargs: dict[str, Any] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="litlab_optuna", node=LitlabOptunaSweeperConf, provider="litlab"
)
