"""litlab's Optuna sweeper: asynchronous workers on a shared study, pruning, a time budget, lost trials recovered."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class LitlabOptunaSweeperConf(OptunaSweeperConf):
    """hydra-optuna-sweeper's settings (sampler, direction, study_name, params, custom_search_space, ...), and:

    n_trials: the study's target of finished trials (complete, pruned, or failed by a crash or a NaN); a rerun
        of the same command continues to it. null: no cap, stop on `timeout` or an exhausted grid.
    n_jobs: worker jobs launched at once through hydra/launcher; each runs trials one after another. A worker
        whose job dies (killed, out of memory, preempted) is lost alone: the others go on.
    max_replacements: how many lost workers are replaced by new worker jobs, over the whole command (null: n_jobs),
        with joblib, submitit_local and submitit_slurm; the command ends when the study is done.
    storage: a database URL (`sqlite:///logs/optuna.db`, `${oc.env:LITLAB_STORAGE}`), or an `optuna.storages.*`
        `_target_` mapping such as a JournalStorage; null: a journal file in the sweep folder.
    pruner: any `optuna.pruners.*` as a `_target_` mapping; null never prunes. Each trial reports
        `monitor` (default: the run's `optimized_metric`) after every validation epoch either way.
    timeout: seconds after which no new trial starts (null: no time budget).
    heartbeat_interval: seconds between the heartbeats of a running trial; one silent for `grace_period`
        (null: twice the interval) counts as lost: FAIL, and queued again if `retry_failed` allows.
    retry_failed: how many times a lost trial (its worker killed) is queued again with the same parameters.
    threads_per_worker: torch threads of a CPU worker (null: OMP_NUM_THREADS, else the cores / n_jobs).
    max_failure_rate: the share of this command's trials that may fail before the sweep stops.
    custom_search_space_kwargs: keyword arguments for the `custom_search_space` function.
    folds: k-fold cross-validation: each trial runs `data.folds=K data.fold=i` for every fold i, one job after
        another in <trial>/fold_<i>, and its value is the mean over the folds; the pruner watches the first
        fold. null: one job per trial.
    """

    _target_: str = "hydra_plugins.litlab_optuna_sweeper.sweeper.LitlabOptunaSweeper"
    pruner: Any = None
    timeout: float | None = None
    n_trials: int | None = 20
    n_jobs: int = 1
    monitor: str | None = None
    heartbeat_interval: int = 60
    grace_period: int | None = None
    retry_failed: int = 0
    threads_per_worker: int | None = None
    max_replacements: int | None = None
    custom_search_space_kwargs: dict[str, Any] | None = None
    folds: int | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="litlab_optuna", node=LitlabOptunaSweeperConf, provider="litlab"
)
