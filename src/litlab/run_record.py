"""The record that reproduces a run: `run_record.yaml` in its folder, in its checkpoints, in TensorBoard's text tab.

It holds the code (git commit, whether the tree was dirty; the diff is saved beside it as `run_record.diff`),
the exact command line and Hydra overrides, Python, torch, CUDA and every installed package's version
(`importlib.metadata`), the host, the seeds, and a fingerprint of the data: the sizes and SHA-256 hashes of the
files the datamodule read (its `source_files()`), or, for a datamodule that names none, its settings. Values
from the environment show as their `${oc.env:NAME}` (`litlab.masking`).

`RunRecorder` is the callback the task functions add to their Trainer: it writes the record when it is built
(so a run that fails early still has one), adds the data's fingerprint once the datamodule has prepared its
files, and shows it in TensorBoard. The checkpoint record (`litlab.checkpoints.record`) copies it into every
checkpoint, and `code_change` compares a checkpoint's commit with the code that loads it.
"""

import functools
import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from litlab import ROOT_DIR
from litlab.masking import hide, masked_container
from litlab.utils.pylogger import RankedLogger

log = RankedLogger(__name__)

RECORD_FILE = "run_record.yaml"
DIFF_FILE = "run_record.diff"
# Files listed one by one in a data fingerprint; a larger set is summed up by count, bytes and one hash.
LISTED_FILES = 20
UNTRACKED_LISTED = 50
GIT_TIMEOUT_S = 30
PLAIN = (str, int, float, bool, list, dict, type(None))


def _git(*args: str, root: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(" ".join(result.stderr.split()) or f"git {args[0]} failed")
    return result.stdout


def code_state(root: Path = ROOT_DIR) -> tuple[dict[str, Any], str]:
    """The git state of the code under `root`, and its diff against the commit ("" when clean).

    Outside a git checkout (or without git) the state says so in `git`, and the run goes on.
    """
    try:
        top = _git("rev-parse", "--show-toplevel", root=root).strip()
        commit = _git("rev-parse", "HEAD", root=root).strip()
        branch = _git("rev-parse", "--abbrev-ref", "HEAD", root=root).strip()
        status = _git("status", "--porcelain", "--untracked-files=normal", root=root).splitlines()
        diff = _git("diff", "HEAD", "--binary", root=root) if status else ""
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
        reason = "git is not installed" if isinstance(err, FileNotFoundError) else f"not a git checkout ({err})"
        return {"git": reason, "commit": None, "dirty": None, "root": str(root)}, ""
    untracked = [line[3:] for line in status if line.startswith("??")]
    state = {
        "git": "checkout",
        "root": top,
        "commit": commit,
        "branch": branch,
        "dirty": bool(status),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
        "untracked": untracked[:UNTRACKED_LISTED],
        "untracked_count": len(untracked),
    }
    return state, diff


@functools.cache
def current_code() -> dict[str, Any]:
    """The git state of the code this process runs (read once per process)."""
    return code_state()[0]


def _short(code: Mapping[str, Any]) -> str:
    dirty = " with uncommitted changes" if code.get("dirty") else ""
    return f"commit {str(code['commit'])[:10]}{dirty}"


def code_change(record: Mapping[str, Any] | None, here: Mapping[str, Any] | None = None) -> str | None:
    """One sentence when the code that wrote a checkpoint (its run record) differs from this code, else None.

    None too when the checkpoint records no commit (written outside a git checkout, or before litlab recorded one).
    """
    written = (record or {}).get("code") or {}
    if not written.get("commit"):
        return None
    here = current_code() if here is None else here
    if not here.get("commit"):
        return f"The checkpoint was written by {_short(written)}; this code's commit is unknown ({here.get('git')})."
    if (written["commit"], written.get("diff_sha256")) == (here["commit"], here.get("diff_sha256")):
        return None
    return f"The checkpoint was written by {_short(written)}, this code is at {_short(here)}: results may differ."


def warn_if_code_changed(record: Mapping[str, Any] | None) -> None:
    """Logs `code_change`'s sentence, if any (eval.py, predict.py and resumed runs call it)."""
    sentence = code_change(record)
    if sentence:
        log.warning(sentence)


def plain(value: Any) -> Any:
    """Only what YAML and `torch.load(weights_only=True)` read back: str, int, float, bool, None, lists, dicts."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or type(value) in (bool, int, float, str):
        return value
    return str(value)  # str subclasses (torch's version), paths, enums


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_files(paths: Iterable[Path]) -> dict[str, Any]:
    """Sizes and SHA-256 hashes of files: each one when there are few, else their count, bytes and one hash."""
    entries, missing = [], []
    for path in paths:
        path = Path(path)
        if path.is_file():
            entries.append({"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": _sha256(path)})
        else:
            missing.append(str(path))
    combined = hashlib.sha256("".join(f"{Path(e['path']).name}\0{e['sha256']}\n" for e in entries).encode())
    fingerprint: dict[str, Any] = {
        "count": len(entries),
        "bytes": sum(entry["bytes"] for entry in entries),
        "sha256": combined.hexdigest(),
    }
    if len(entries) <= LISTED_FILES:
        fingerprint["files"] = entries
    if missing:
        fingerprint["missing"] = missing
    return fingerprint


def data_fingerprint(datamodule: LightningDataModule | None) -> dict[str, Any] | None:
    """What the run read: the datamodule's class and settings, and its `source_files()` fingerprinted."""
    if datamodule is None:
        return None
    settings = dict(getattr(datamodule, "hparams", {}) or {})
    record: dict[str, Any] = {
        "datamodule": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}",
        # objects (a prediction dataset, say) are not settings
        "settings": plain({key: value for key, value in settings.items() if isinstance(value, PLAIN)}),
    }
    source_files = getattr(datamodule, "source_files", None)
    if callable(source_files):
        record["source"] = fingerprint_files(source_files())
    else:
        record["source"] = "not named by the datamodule (it has no source_files()): its settings describe it"
    return record


def packages() -> dict[str, str]:
    """Every installed distribution and its version, by name."""
    found = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            found[name] = distribution.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def environment() -> dict[str, Any]:
    """Python, torch, CUDA and cuDNN, the host, and the installed packages (without initialising CUDA)."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": packages(),
    }


def command() -> dict[str, Any]:
    """The command line as typed, the folder it ran in, and Hydra's overrides and config choices."""
    found: dict[str, Any] = {"argv": [sys.executable, *sys.argv], "cwd": os.getcwd()}
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        # as typed: an override holding `${oc.env:NAME}` would read the environment if resolved
        found["overrides"] = OmegaConf.to_container(hydra.overrides.task, resolve=False)
        found["hydra_overrides"] = OmegaConf.to_container(hydra.overrides.hydra, resolve=False)
        found["config_name"] = hydra.job.config_name
        found["choices"] = {k: v for k, v in hydra.runtime.choices.items() if not str(k).startswith("hydra/")}
    return found


def _seeds(config: Any, prefix: str = "") -> dict[str, Any]:
    found = {}
    if isinstance(config, Mapping):
        for key, value in config.items():
            name = f"{prefix}{key}"
            if str(key) == "seed" or str(key).endswith("_seed"):
                found[name] = value
            else:
                found.update(_seeds(value, f"{name}."))
    return found


def record_folder(cfg: DictConfig) -> Path:
    """This invocation's own folder: Hydra's, which a resumed run keeps beside the folder it continues."""
    if HydraConfig.initialized() and HydraConfig.get().runtime.get("output_dir"):
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def run_record(cfg: DictConfig) -> tuple[dict[str, Any], str, dict[str, str]]:
    """The record of the run `cfg` describes (but for its data), the code's diff, and the secrets hidden from both."""
    config, secrets = masked_container(cfg)
    code, diff = code_state()
    record = {
        "task": cfg.get("task_name"),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "code": code,
        "command": command(),
        "environment": environment(),
        "seeds": {**_seeds(config), "torch_initial_seed": torch.initial_seed()},
        "checkpoint": None,
        "data": None,
    }
    ckpt_path = OmegaConf.select(cfg, "ckpt_path", default=None)
    if ckpt_path and Path(str(ckpt_path)).is_file():
        record["checkpoint"] = fingerprint_files([Path(str(ckpt_path))])
    return plain(hide(record, secrets)), hide(diff, secrets), secrets


def as_text(record: Mapping[str, Any]) -> str:
    """The record as YAML."""
    return yaml.safe_dump(dict(record), sort_keys=False, allow_unicode=True, width=120)


class RunRecorder(Callback):
    """Writes the run record (`run_record.yaml`, and `run_record.diff` for a dirty tree) into the run's folder.

    The task functions add it to their Trainer. It writes the record when built, again with the data's
    fingerprint once the datamodule is set up (after `prepare_data` has downloaded its files), puts it in
    TensorBoard's text tab, and checkpoints carry it (`litlab.checkpoints.record`).
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.folder = record_folder(cfg)
        self.record, self.diff, self.secrets = run_record(cfg)
        self._write()

    @classmethod
    def of(cls, trainer: Trainer | None) -> "RunRecorder | None":
        """The recorder among a Trainer's callbacks, if any."""
        callbacks = getattr(trainer, "callbacks", None) or []
        return next((callback for callback in callbacks if isinstance(callback, cls)), None)

    @rank_zero_only
    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RECORD_FILE).write_text(as_text(self.record), encoding="utf-8")
        if self.diff:
            (self.folder / DIFF_FILE).write_text(self.diff, encoding="utf-8")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Rank 0 alone writes the record and checkpoints: the other ranks need not hash the data.
        if self.record["data"] is None and trainer.is_global_zero:
            self.record["data"] = plain(hide(data_fingerprint(trainer.datamodule), self.secrets))
            device = trainer.strategy.root_device
            self.record["device"] = {
                "device": str(device),
                "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or None,
                "world_size": trainer.world_size,
            }
            self._write()
            text = "\n".join(f"    {line}" for line in as_text(self.record).splitlines())
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_text("run_record", text, global_step=trainer.global_step)

    def hide(self, value: Any) -> Any:
        """`value` with this run's values from the environment masked (checkpoints' hyperparameters)."""
        return hide(value, self.secrets)
