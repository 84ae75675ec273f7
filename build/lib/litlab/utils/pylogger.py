import logging
from collections.abc import Mapping

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
