"""The task functions' helpers from lightning-hydra-template: extras before a run, the task's context, the metric
a sweeper optimises."""

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import execution_whitelist
from omegaconf import DictConfig

from litlab.utils.pylogger import RankedLogger
from litlab.utils.rich_utils import enforce_tags, print_config_tree
from litlab.whitelist import EXECUTION_WHITELIST, refuse_loading_targets

log = RankedLogger(__name__)


def extras(cfg: DictConfig) -> None:
    """Applies the `extras` options before a task starts: silence warnings, require tags, print the config (on the
    terminal, or with `print_config: log` into the run's log file and config_tree.log only)."""
    if not cfg.get("extras"):
        return
    if cfg.extras.get("ignore_warnings"):
        log.info("Silencing Python warnings (extras.ignore_warnings=true).")
        warnings.filterwarnings("ignore")
    if cfg.extras.get("enforce_tags"):
        enforce_tags(cfg, save_to_file=True)
    if cfg.extras.get("print_config"):
        # `log`: only into the run's files, so that the terminal of eval.py and predict.py shows results and errors
        to_terminal = cfg.extras.print_config != "log"
        print_config_tree(cfg, resolve=True, save_to_file=True, to_terminal=to_terminal)


@contextlib.contextmanager
def task_context(cfg: DictConfig) -> Iterator[None]:
    """Around a task's body: the project's execution whitelist, then where its output went.

    A failure is not logged here: Hydra writes its traceback to the run's log file, and a single run
    prints it as one sentence (`litlab.utils.errors.report_errors`). The whitelist is applied here, not only in
    `@hydra.main`, so that tests and notebooks calling `train(cfg)` directly get the same protection. A context
    manager rather than lightning-hydra-template's decorator, so that it adds no frame to a run's stack.
    """
    try:
        refuse_loading_targets(cfg)
        with execution_whitelist(EXECUTION_WHITELIST):
            yield
    finally:
        log.info(f"Output dir: {cfg.paths.output_dir}")
        _finish_wandb_run()


def _finish_wandb_run() -> None:
    """Closes the run's W&B run, if one is open: W&B keeps it (and its offline file) open until the process
    ends, so the next job of a multirun would log into it, and an in-process caller could not read it yet."""
    wandb = sys.modules.get("wandb")  # never imported for the runs that do not use it
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def get_metric_value(metric_dict: dict[str, Any], metric_name: str | None) -> float | None:
    """Returns the metric a sweeper optimises; NaN is passed on so that the sweeper can mark the trial failed.

    A metric the run did not log fails a sweep's trial (the sweeper has nothing to optimise), but a single
    run that trained and tested has done its work: there it is a warning.
    """
    if not metric_name:
        log.info("No optimized_metric is set: returning no value to the sweeper.")
        return None
    if metric_name not in metric_dict:
        available = ", ".join(sorted(metric_dict)) or "none"
        message = f"The optimized_metric '{metric_name}' was not logged by this run (logged: {available})"
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise KeyError(f"{message}: set optimized_metric to one of them.")
        log.warning(f"{message}; a sweep would fail this trial: set optimized_metric to one of them.")
        return None
    value = float(metric_dict[metric_name])
    log.info(f"Retrieved metric value: {metric_name}={value}")
    return value
