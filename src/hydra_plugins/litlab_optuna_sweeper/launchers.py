"""Hydra's launcher plugins as a sweep meets them: the pip package of each, and what a missing one says.

Imported by the sweeper plugin and the entry points at start-up: nothing heavy here.
"""

import importlib.util
import re
import shutil
from pathlib import Path

# The launcher plugins of Hydra's own repository, by the name of their config in hydra/launcher. Each has
# releases on hydra-core's 1.4 line, pre-releases today: pip takes those only when the bound names one.
HYDRA_LAUNCHERS = {
    "joblib": "hydra-joblib-launcher",
    "submitit_local": "hydra-submitit-launcher",
    "submitit_slurm": "hydra-submitit-launcher",
    "ray": "hydra-ray-launcher",
    "ray_aws": "hydra-ray-launcher",
    "rq": "hydra-rq-launcher",
}
HYDRA_LINE = ">=1.4.0rc3,<1.5"
INSTALLED_CHOICES = "hydra/launcher=basic, joblib, submitit_local or submitit_slurm"
_LAUNCHER_CHOICE = re.compile(r"^\+{0,2}hydra/launcher=(?P<name>[\w-]+)$")


def launcher_package(target: str) -> str:
    """The pip package of a launcher class (`hydra_plugins.hydra_X_launcher...` is on PyPI as `hydra-X-launcher`)."""
    parts = target.split(".")
    if len(parts) > 1 and parts[0] == "hydra_plugins":
        return parts[1].replace("_", "-")
    return parts[0]


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # its parent package is missing
        return False


def install_command(package: str) -> str:
    """How to install a launcher's package: Hydra's own plugins on hydra-core's line, any other as it comes."""
    if package in HYDRA_LAUNCHERS.values():
        return f"pip install '{package}{HYDRA_LINE}'"
    return f"pip install {package}"


def missing_launcher(target: str) -> str:
    """The error for a launcher class that is not installed."""
    return (
        f"The launcher {target} is not installed: `{install_command(launcher_package(target))}`, or choose an "
        f"installed one ({INSTALLED_CHOICES})."
    )


def missing_launcher_choice(arguments: list[str], config_dir: Path) -> str | None:
    """The error for `hydra/launcher=NAME` on a command line naming a plugin of Hydra's that is not installed
    (Hydra itself would only say that it cannot find the config); None when there is nothing to say."""
    for argument in arguments:
        match = _LAUNCHER_CHOICE.match(argument)
        if not match:
            continue
        name = match["name"]
        package = HYDRA_LAUNCHERS.get(name)
        if package is None or (config_dir / "hydra" / "launcher" / f"{name}.yaml").is_file():
            continue  # litlab's own preset, or a name Hydra answers with its list of choices
        if not installed(f"hydra_plugins.{package.replace('-', '_')}"):
            return (
                f"hydra/launcher={name} needs Hydra's {package} plugin, which is not installed: "
                f"`{install_command(package)}`, or choose an installed launcher ({INSTALLED_CHOICES})."
            )
    return None


def slurm_missing() -> str | None:
    """The error for submitting to SLURM from a machine without SLURM's commands; None where they are."""
    if shutil.which("sbatch") is not None:
        return None
    return (
        "hydra/launcher=submitit_slurm submits the workers with SLURM's sbatch, which this machine does not have: "
        "run the command on a login node of your SLURM cluster, or choose hydra/launcher=submitit_local or joblib "
        "for workers on this machine."
    )
