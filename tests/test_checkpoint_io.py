"""A checkpoint write interrupted at any byte (full disk, killed writer) never replaces the last good checkpoint.

The writer is the one every experiment gets: the CheckpointIO of a Trainer built from configs/trainer.
"""

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tests.helpers.config import train_config

# The writer: the kernel kills it (SIGXFSZ) as it writes byte `limit` (read from stdin) of any file.
KILLED_WRITER = """
import resource, signal, sys
import torch
from hydra.utils import get_class
io = get_class(sys.argv[1])()
checkpoint = {"state_dict": {"w": torch.full((50_000,), 2.0)}, "epoch": 2}
limit = int(sys.stdin.read())
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
io.save_checkpoint(checkpoint, sys.argv[2])
"""


def checkpoint_io(tmp_path: Path):
    trainer = instantiate(train_config([], tmp_path / "run").trainer)
    return trainer.strategy.checkpoint_io


def checkpoint(size_floats: int, value: float) -> dict:
    return {"state_dict": {"w": torch.full((size_floats,), value)}, "epoch": int(value)}


def assert_good(path: Path, value: float) -> None:
    loaded = torch.load(path, weights_only=True)
    assert loaded["epoch"] == int(value) and torch.equal(
        loaded["state_dict"]["w"], torch.full_like(loaded["state_dict"]["w"], value)
    )


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system of its own (tmpfs), as a checkpoint folder on a nearly full disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.parametrize("free_kib", [0, 4, 100, 600])
def test_full_disk_leaves_the_last_good_checkpoint(tmp_path, small_disk, free_kib):
    io = checkpoint_io(tmp_path)
    target = small_disk / "last.ckpt"
    io.save_checkpoint(checkpoint(20_000, 1.0), target)  # about 80 KB
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(free - free_kib * 1024, 0))

    with pytest.raises(OSError) as raised:
        io.save_checkpoint(checkpoint(200_000, 2.0), target)  # about 800 KB: does not fit
    assert raised.value.errno == errno.ENOSPC
    assert_good(target, 1.0)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "last.ckpt"]  # no temporary file left

    filler.unlink()
    io.save_checkpoint(checkpoint(200_000, 3.0), target)  # once there is room, saving works again
    assert_good(target, 3.0)


@pytest.mark.parametrize("at_byte", [0, 1, 4096, "half", "last"])
def test_writer_killed_mid_write_leaves_the_last_good_checkpoint(tmp_path, at_byte):
    io = checkpoint_io(tmp_path)
    folder = tmp_path / "checkpoints"
    target = folder / "last.ckpt"
    io.save_checkpoint(checkpoint(50_000, 1.0), target)
    size = target.stat().st_size
    limit = {"half": size // 2, "last": size - 1}.get(at_byte, at_byte)
    staging = tmp_path / "tmpdir"  # where a writer that stages elsewhere would leave its remains
    staging.mkdir()

    # A fresh interpreter, not a fork: forking this multi-threaded process can deadlock the child on a lock
    # another thread held. The size limit is set only once the child is ready to write.
    writer = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, f"{type(io).__module__}.{type(io).__qualname__}", str(target)],
        env={**os.environ, "TMPDIR": str(staging)},
        input=str(limit),
        text=True,
        timeout=120,
    )
    assert writer.returncode == -signal.SIGXFSZ, writer

    assert_good(target, 1.0)
    io.save_checkpoint(checkpoint(50_000, 3.0), target)  # the next save clears the dead writer's remains
    assert_good(target, 3.0)
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]
    assert list(staging.iterdir()) == []
