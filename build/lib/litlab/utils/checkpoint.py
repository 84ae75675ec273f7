"""Reading checkpoints safely, with errors a user can act on."""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint path that is missing, unreadable or not a litlab checkpoint."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint with `weights_only=True` (no arbitrary code runs) or explains what is wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint '{path}' does not exist: pass ckpt_path=<run dir>/checkpoints/<file>.ckpt "
            "(training prints where it saved the best checkpoint)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"Checkpoint '{path}' is corrupt or not a PyTorch checkpoint ({type(err).__name__}): "
            "point ckpt_path at a .ckpt file written by a litlab training run."
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"Checkpoint '{path}' holds no Lightning state_dict: "
            "point ckpt_path at a .ckpt file written by a litlab training run."
        )
    return checkpoint
