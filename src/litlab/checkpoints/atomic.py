"""Checkpoints written atomically: a crash or a full disk mid-write never replaces the last good file.

Lightning's TorchCheckpointIO stages the file through fsspec in the system's temporary folder and then
moves it into place; when that folder is on another file system (a small local /tmp, logs on a data
disk) the move is a copy that truncates the target first, so ENOSPC or a kill during the copy leaves a
partial checkpoint where the good one was, and nothing is fsynced. Here the temporary file sits beside
the target (same file system), is fsynced, and `os.replace` swaps it in in one step.
"""

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

_SUFFIX = ".tmp"


def _temp_name(path: Path) -> Path:
    # Host and pid in the name let a later save tell a dead writer's leftover from a live one.
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}{_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    return True


def _remove_dead_writers_leftovers(path: Path) -> None:
    host = socket.gethostname()
    for leftover in path.parent.glob(f".{path.name}.{host}.*{_SUFFIX}"):
        pid = leftover.name[len(f".{path.name}.{host}.") : -len(_SUFFIX)]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)  # another save may have removed it meanwhile


def atomic_save(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """`torch.save` to a temporary file beside `path`, fsync, then `os.replace`: the target is whole or untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    try:
        with open(temp, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as err:
        temp.unlink(missing_ok=True)
        # torch's zip writer turns a failed write (ENOSPC, EFBIG) into "unexpected pos ...": name the real cause.
        cause = err.__context__
        if not isinstance(err, OSError) and isinstance(cause, OSError) and cause.errno:
            raise OSError(
                cause.errno, f"Checkpoint '{path}' was not written ({cause.strerror}); the previous one is intact"
            ) from err
        raise
    _fsync_dir(path.parent)
    _remove_dead_writers_leftovers(path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are atomic (see `atomic_save`); remote URLs keep fsspec's path."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)
