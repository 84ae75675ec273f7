"""litlab: a Hydra + PyTorch Lightning research template."""

import ctypes
import os
from pathlib import Path

import lightning.fabric  # noqa: F401  (imported first: it sets PYTORCH_NVML_BASED_CUDA_CHECK=1, see below)

# The configs address logs/ and data/ from the repository root (`paths.root_dir`), wherever the
# command is started; an explicit PROJECT_ROOT still wins, as with lightning-hydra-template's rootutils.
ROOT_DIR = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT_DIR / "configs"
os.environ.setdefault("PROJECT_ROOT", str(ROOT_DIR))


def _drop_nvml_check_without_nvml() -> None:
    """Skips torch's NVML-based CUDA check on machines that have no NVML library (no NVIDIA driver).

    Lightning turns the check on so that asking whether CUDA exists never initialises CUDA before a fork.
    Without the library, torch tries to load it on every `torch.cuda.is_available()` call, fails, and falls
    back to the CUDA runtime's count anyway; Adam and AdamW ask on every `step()`, so a CPU machine with the
    CUDA build of torch lost about 0.15 ms a step to it (15% of a small MLP's step). Where the library
    loads, nothing changes.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


_drop_nvml_check_without_nvml()
