"""What a command is given that can be checked before it starts: the checkpoint, the inputs, the data folders.

Each task's `run` makes these checks before the config tree is printed, so that a wrong path costs one sentence
instead of a screen of config and a minute of start-up. The task functions still check where they use each
path, for callers that skip `run` (tests, notebooks).
"""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab.checkpoints.load import CheckpointError, CheckpointFile
from litlab.checkpoints.resume import LAST
from litlab.data.base import DatasetNotFoundError
from litlab.data.inputs import find_inputs
from litlab.data.unpaired import FOLDER_SPLITS


def as_list(value: Any) -> list[str]:
    """A setting that takes one value or a list of them (`inputs=`, `query=`), as a list of strings."""
    if value is None:
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _newest_last_checkpoint(log_dir: str | Path) -> Path | None:
    found = [path for path in Path(log_dir, "train").rglob("last.ckpt") if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def checkpoint_path(cfg: DictConfig, command: str) -> str:
    """The `ckpt_path` of a command that reads a checkpoint (eval.py, predict.py, export.py), else the sentence
    that says what to pass."""
    path = cfg.get("ckpt_path")
    if not path:
        raise CheckpointError(f"No checkpoint given: pass ckpt_path=<run dir>/checkpoints/<file>.ckpt to {command}.")
    if str(path) == LAST:
        newest = _newest_last_checkpoint(cfg.paths.log_dir)
        where = f"the newest under {cfg.paths.log_dir} is {newest}" if newest else "training writes last.ckpt there"
        raise CheckpointError(
            f"ckpt_path=last continues a training run in train.py; {command} needs a checkpoint file: pass "
            f"ckpt_path=<run dir>/checkpoints/last.ckpt ({where})."
        )
    return str(path)


def check_data_folders(data: DictConfig | None) -> None:
    """The folders and files a data config names that no download provides: `data.root` of an unpaired image
    folder, `data.corpus` of a word2vec corpus. A dataset that is downloaded says itself what is missing."""
    if not data:
        return
    if "root" in data and not OmegaConf.is_missing(data, "root") and data.root is not None:
        root = Path(str(data.root)).expanduser()
        missing = [root / split for split in FOLDER_SPLITS if not (root / split).is_dir()]
        if missing:
            raise DatasetNotFoundError(
                f"Folder {missing[0]} is missing: an unpaired dataset needs {', '.join(FOLDER_SPLITS)} folders of "
                f"image files under data.root (for example datasets/horse2zebra from the CycleGAN repository)."
            )
    corpus = data.get("corpus")
    if corpus and corpus != "text8" and not Path(str(corpus)).expanduser().exists():
        raise DatasetNotFoundError(
            f"Corpus '{corpus}' does not exist: set data.corpus to a text file or a folder of text files."
        )


def before_training(cfg: DictConfig) -> None:
    """train.py: the checkpoint to resume from (`ckpt_path=last` is resolved by the run itself), the data folders."""
    if cfg.get("train") and cfg.get("ckpt_path") and cfg.ckpt_path != LAST:
        CheckpointFile.open(cfg.ckpt_path, mmap=True)
    check_data_folders(cfg.get("data"))


def before_evaluation(cfg: DictConfig) -> None:
    """eval.py: the checkpoint, and the data folders when `data=` is given."""
    CheckpointFile.open(checkpoint_path(cfg, "eval.py"), mmap=True)
    check_data_folders(cfg.get("data"))


def before_prediction(cfg: DictConfig) -> None:
    """predict.py: the checkpoint, and every path of `inputs=` (a missing one, a folder without images)."""
    CheckpointFile.open(checkpoint_path(cfg, "predict.py"), mmap=True)
    if cfg.get("inputs") is not None:
        find_inputs(as_list(cfg.inputs))


def before_export(cfg: DictConfig) -> None:
    """export.py: the checkpoint."""
    CheckpointFile.open(checkpoint_path(cfg, "export.py"), mmap=True)
