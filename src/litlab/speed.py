"""litlab's speed measures, in one place: what each saves, what it relies on in Lightning, and the switch.

Lightning's fixed cost per training step (hooks, closure, fetcher, batch transfer) is about 0.2 ms on the
2-core CPU litlab is developed on, a quarter of a small MLP's step; these measures take back what litlab can
of it without changing a single result:

- `skip_nvml_check_without_nvml`: torch's NVML probe, retried on every `torch.cuda.is_available()`;
- `FastHookNames`: Lightning's per-hook bookkeeping on the LightningModule;
- `NoProfiler`: Lightning's pass-through profiler, entered around every hook.

The first two act on the whole process: the task functions apply them from the config key `speedups` (true by
default). The third is an ordinary Trainer setting, `trainer.profiler` (configs/trainer/default.yaml), so that
`--cfg job` shows it. `speedups=false trainer.profiler=null` runs with Lightning's own behaviour, to rule the
measures out when something looks wrong. tests/test_speed.py pins each one to what it relies on in Lightning, so that a
Lightning release that changes it fails a test rather than silently making a measure useless.
"""

import ctypes
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

from lightning.pytorch.profilers import PassThroughProfiler

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"

_nvml_check_dropped = False


def apply(enabled: bool = True) -> None:
    """Turns the process-wide measures (the NVML probe, the hook names) on or off; the task functions call it.

    Worker processes that `ddp_spawn` starts do not run the task function: they keep the defaults (hook
    names on, the NVML probe as Lightning leaves it).
    """
    skip_nvml_check_without_nvml(enabled)
    FastHookNames.enabled = enabled


def skip_nvml_check_without_nvml(enabled: bool = True) -> None:
    """Skips torch's NVML-based CUDA check on machines that have no NVML library (no NVIDIA driver).

    `import lightning` sets PYTORCH_NVML_BASED_CUDA_CHECK=1 so that asking whether CUDA exists never
    initialises CUDA before a fork. Without the library, torch then tries to load it on every
    `torch.cuda.is_available()` call, fails, and falls back to the CUDA runtime's count anyway; Adam and
    AdamW ask on every `step()`. Measured with `scripts/benchmark_data.py` on the 2-core development CPU
    with the CUDA build of torch: about 0.15 ms a step, 15% of the small MLP's step and a sixth of the plain
    PyTorch loop's. Where the library loads, nothing changes. `enabled=False` puts the check back.
    """
    global _nvml_check_dropped
    if not enabled:
        if _nvml_check_dropped:
            os.environ[NVML_CHECK] = "1"
            _nvml_check_dropped = False
        return
    if os.environ.get(NVML_CHECK) != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        del os.environ[NVML_CHECK]
        _nvml_check_dropped = True


class FastHookNames:
    """Mixin for LightningModules (before LightningModule in the bases): stores the running hook's name cheaply.

    Lightning records the running hook's name on the module (`_current_fx_name`) twice per hook call, some
    forty times a training step. `nn.Module.__setattr__` checks every assignment for parameters, buffers and
    submodules, about 1 us each on the development CPU: a few percent of a small network's step for a plain
    string. With `enabled` false (`speedups=false`), the assignment takes nn.Module's path again.
    """

    enabled: ClassVar[bool] = True

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name" and FastHookNames.enabled:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


_NOTHING = nullcontext()


class NoProfiler(PassThroughProfiler):
    """Lightning's PassThroughProfiler, minus the cost of entering it.

    Lightning wraps every hook call in `profiler.profile(name)`, some fifty a training step. The pass-through
    profiler still builds a generator-based context manager for each (about 0.8 us on the development CPU);
    a shared `nullcontext` does the same nothing for a tenth of that.
    """

    def profile(self, action_name: str) -> AbstractContextManager:
        return _NOTHING
