"""Loggers that need a decision at run time: Weights & Biases without an account logs offline."""

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

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
