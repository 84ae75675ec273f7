"""Loggers that need a decision at run time: Weights & Biases without an account logs offline; a CSV file that
every stage of a run continues, whichever process logs it."""

import csv
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)


def wandb_account_configured() -> bool:
    """Whether W&B can authenticate: an API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_logger(save_dir: str, offline: bool | None = None, **kwargs: Any) -> WandbLogger:
    """Lightning's WandbLogger, offline when `offline` is None and no W&B account is configured.

    Offline runs land in `<save_dir>/wandb/offline-run-*`; `wandb sync <that folder>` uploads one later.
    `WANDB_MODE` in the environment still has the last word, as W&B documents.
    """
    if offline is None:
        offline = not wandb_account_configured() and not os.environ.get("WANDB_MODE")
        if offline:
            log.info(
                f"W&B: no account configured (WANDB_API_KEY or `wandb login`): logging offline under "
                f"{Path(save_dir) / 'wandb'}; `wandb sync` uploads the run later."
            )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(save_dir=save_dir, offline=offline, **kwargs)


class _FileColumnsWriter(ExperimentWriter):
    """Lightning's metrics.csv writer, taking the file's columns from the file itself before each save."""

    def save(self) -> None:
        if self.metrics and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])
        super().save()


class ContinuingCSVLogger(CSVLogger):
    """Lightning's CSVLogger, whose metrics.csv keeps the rows of every stage when the stages log from other processes.

    Under `ddp_spawn` (trainer=ddp_sim) `fit` and `test` each run in new processes, which get a copy of the logger
    as the main process holds it, and nothing they learn comes back. Lightning's writer keeps the file's columns in
    memory: the test's copy, which never saw the fit's columns, rewrote metrics.csv with the test's columns only
    and failed on the first training row, leaving a header. This writer reads the columns from the file instead.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Made here, in the process that starts the run, while the folder is empty: a writer made later in a
        # stage's process would find the fit's metrics.csv and delete it, as Lightning does for a reused version.
        self.experiment  # noqa: B018

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _FileColumnsWriter(log_dir=self.log_dir)
        return self._experiment
