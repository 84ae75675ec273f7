"""Run and sweep folders that never collide: `${litlab.new_dir:PARENT}` in configs/hydra/default.yaml.

Hydra's usual `${now:%Y-%m-%d}_${now:%H-%M-%S}` gives every command started in the same second one folder:
SLURM array tasks, or runs started together from several terminals, then write one interleaved log and
`last.ckpt`, `last-v1.ckpt`, ... side by side. Here the name is the start time, then the SLURM job (and array
task) where SLURM runs the command, else a short random suffix; and the folder is created by this process
(`mkdir` without `exist_ok`), so a name taken by another command gets another suffix: a folder that exists is
never a new run's. The value is cached in the config, as Hydra's `now` is, so a sweep's jobs, Lightning's DDP
processes (given the folder by Lightning) and every later read of the config name the same folder.

Importing this module is cheap (no torch, no Lightning): `litlab/__init__.py` registers the resolver, so every
entry file has it before Hydra composes its config.
"""

import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "litlab.new_dir"
# Enough tries for any number of commands started in one second; the next one names the failure.
MAX_TRIES = 100


def slurm_id(environ: Mapping[str, str] = os.environ) -> str | None:
    """`slurm<array job>_<array task>` for a SLURM array task, `slurm<job>` for another SLURM job, else None."""
    array_job, task = environ.get("SLURM_ARRAY_JOB_ID"), environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"slurm{array_job}_{task}"
    job = environ.get("SLURM_JOB_ID") or environ.get("SLURM_JOBID")
    return f"slurm{job}" if job else None


def _suffix() -> str:
    return secrets.token_hex(3)


def new_dir(parent: str) -> str:
    """Creates a new folder under `parent` named by the time and the SLURM ids or a random suffix; returns it.

    A name that another process took first (`FileExistsError`) gets a further random suffix. A folder that cannot
    be made at all (a read-only or missing file system) is named but not made: the failure is reported by whoever
    uses the name, in one sentence (`litlab.utils.errors.OneSentenceErrors`), not from inside the config.
    """
    parent_path = Path(parent)
    stem = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    job = slurm_id()
    name = f"{stem}_{job}" if job else f"{stem}_{_suffix()}"
    for _ in range(MAX_TRIES):
        folder = parent_path / name
        try:
            parent_path.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except FileExistsError:
            name = f"{stem}_{job}_{_suffix()}" if job else f"{stem}_{_suffix()}"
            continue
        except OSError:
            return str(folder)
        return str(folder)
    raise FileExistsError(
        f"Found no free folder name under {parent} after {MAX_TRIES} tries: name the folder yourself with "
        "hydra.run.dir=... (or hydra.sweep.dir=... for a multirun)."
    )


def register_resolver() -> None:
    """Makes `${litlab.new_dir:PARENT}` known to OmegaConf (again, harmlessly, when it is known)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_resolver(RESOLVER, new_dir, use_cache=True)
