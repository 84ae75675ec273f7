from litlab.utils.instantiators import drop_logger_callbacks, instantiate_callbacks, instantiate_loggers
from litlab.utils.logging_utils import log_hyperparameters
from litlab.utils.pylogger import RankedLogger
from litlab.utils.rich_utils import enforce_tags, print_config_tree
from litlab.utils.utils import extras, get_metric_value, task_wrapper

__all__ = [
    "RankedLogger",
    "drop_logger_callbacks",
    "enforce_tags",
    "extras",
    "get_metric_value",
    "instantiate_callbacks",
    "instantiate_loggers",
    "log_hyperparameters",
    "print_config_tree",
    "task_wrapper",
]
