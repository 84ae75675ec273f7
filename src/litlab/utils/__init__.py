"""Small helpers of the task functions: instantiation, logging, config printing, the task wrapper.

The names below are imported from their submodules on first use, not with the package: the entry files and
Hydra's plugin scan import `litlab.utils.whitelist` and the logger at start-up, and `--help` must not pay for
Lightning, which the other submodules import.
"""

import importlib
from typing import Any

_SUBMODULE_OF = {
    "drop_logger_callbacks": "instantiators",
    "instantiate_callbacks": "instantiators",
    "instantiate_loggers": "instantiators",
    "log_hyperparameters": "logging_utils",
    "RankedLogger": "pylogger",
    "enforce_tags": "rich_utils",
    "print_config_tree": "rich_utils",
    "extras": "utils",
    "get_metric_value": "utils",
    "task_wrapper": "utils",
}

__all__ = sorted(_SUBMODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _SUBMODULE_OF:
        raise AttributeError(f"module 'litlab.utils' has no attribute {name!r}")
    return getattr(importlib.import_module(f"litlab.utils.{_SUBMODULE_OF[name]}"), name)
