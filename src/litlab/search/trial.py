"""The Optuna trial a training job runs for, handed from the sweeper to the job in the same process.

hydra-optuna-sweeper keeps its trials to itself; litlab's sweeper (`hydra/sweeper=litlab_optuna`) registers
each trial here while its job runs and tells the job its number through the `optuna_trial` config key.
The job then reports its validation metric to that trial every epoch, so the study's pruner can stop it.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig

from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

# The config key through which the sweeper tells a job which trial it runs for.
TRIAL_KEY = "optuna_trial"


@dataclass
class LiveTrial:
    """A trial being run, the metric its job reports (None: the run's `optimized_metric`) and its fate."""

    trial: optuna.Trial
    monitor: str | None = None
    pruned_at_epoch: int | None = None


_LIVE: dict[int, LiveTrial] = {}


@contextmanager
def live_trials(trials: Sequence[optuna.Trial], monitor: str | None = None) -> Iterator[dict[int, LiveTrial]]:
    """Makes `trials` visible to the jobs launched inside the block, keyed by trial number."""
    entries = {trial.number: LiveTrial(trial, monitor) for trial in trials}
    _LIVE.update(entries)
    try:
        yield entries
    finally:
        for number in entries:
            _LIVE.pop(number, None)


def current_trial(cfg: DictConfig) -> LiveTrial | None:
    """The live trial this run belongs to, or None outside an Optuna sweep."""
    number = cfg.get(TRIAL_KEY)
    if number is None:
        return None
    live = _LIVE.get(int(number))
    if live is None:
        log.warning(
            f"Trial {number} does not live in this process (an out-of-process launcher?): "
            "it is neither reported to nor pruned by the study; use the default launcher to prune."
        )
    return live
