import logging
from collections.abc import Mapping
from types import TracebackType

from lightning_utilities.core.rank_zero import rank_prefixed_message, rank_zero_only


class RankedLogger(logging.LoggerAdapter):
    """A logger that prefixes messages with the process rank and, by default, logs on rank zero only."""

    def __init__(self, name: str = __name__, rank_zero_only: bool = True, extra: Mapping | None = None):
        super().__init__(logger=logging.getLogger(name), extra=extra)
        self.rank_zero_only = rank_zero_only

    def log(self, level: int, msg: str, *args, **kwargs) -> None:
        if not self.isEnabledFor(level):
            return
        msg, kwargs = self.process(msg, kwargs)
        rank = getattr(rank_zero_only, "rank", 0)
        msg = rank_prefixed_message(msg, rank)
        if self.rank_zero_only and rank != 0:
            return
        self.logger.log(level, msg, *args, **kwargs)


def log_to_files(
    logger: logging.Logger,
    message: str,
    level: int = logging.INFO,
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None = None,
) -> None:
    """Writes a record to the root logger's file handlers only (the run's log file), not to the terminal."""
    record = logger.makeRecord(logger.name, level, "(file only)", 0, message, (), exc_info)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
            handler.handle(record)
