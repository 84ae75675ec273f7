"""Random number generator states in checkpoints, so that a resumed run draws what the uninterrupted one would."""

import random
from typing import Any

import numpy as np
import torch
from lightning import Callback


class RandomState(Callback):
    """Saves the global torch, CUDA, NumPy and Python generator states in every checkpoint, restores them on resume.

    Lightning checkpoints hold weights, optimizer and loop states but not the generators, so a resumed run
    reshuffles its batches and redraws its dropout masks from the seed, not from where the run stopped. The
    states are kept as tensors and plain lists, which `torch.load(weights_only=True)` reads.

    The states are put back as the checkpoint is read, before the fit loop builds its first training
    iterator (whose shuffle and base seed are drawn from them); Lightning's sanity check runs inside
    `isolate_rng`, so it draws nothing from them.
    """

    def state_dict(self) -> dict[str, Any]:
        numpy_state = np.random.get_state()
        python_version, python_internal, python_gauss = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": {
                "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
                "pos": int(numpy_state[2]),
                "has_gauss": int(numpy_state[3]),
                "cached_gaussian": float(numpy_state[4]),
            },
            "python": {"version": python_version, "internal": list(python_internal), "gauss": python_gauss},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        numpy_state = state["numpy"]
        np.random.set_state(
            (
                "MT19937",
                numpy_state["keys"].numpy().astype(np.uint32),
                numpy_state["pos"],
                numpy_state["has_gauss"],
                numpy_state["cached_gaussian"],
            )
        )
        python_state = state["python"]
        random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss"]))
