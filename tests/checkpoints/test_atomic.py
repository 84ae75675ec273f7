"""A checkpoint write interrupted at any byte (full disk, killed writer) never replaces the last good checkpoint.

The writer is the one every experiment gets: the CheckpointIO of a Trainer built from configs/trainer.
"""

import contextlib
import errno
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import fsspec
import pytest
import torch
from hydra.utils import get_class, instantiate

from litlab.checkpoints.atomic import AtomicCheckpointIO
from tests.helpers.config import train_config


def killed_writer(io_class: str, target: str, limit: int, staging: str) -> None:
    """The writer: the kernel kills it (SIGXFSZ) as it writes byte `limit` of any file, staging files in `staging`."""
    os.environ["TMPDIR"] = staging
    tempfile.tempdir = None  # read TMPDIR again, as a writer started with it would
    io = get_class(io_class)()
    checkpoint = {"state_dict": {"w": torch.full((50_000,), 2.0)}, "epoch": 2}
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    io.save_checkpoint(checkpoint, target)


@pytest.fixture(scope="module")
def writers():
    """Processes forked from a fresh single-threaded interpreter that imported torch once (Python's forkserver):
    forking this multi-threaded process could deadlock the child on a lock another thread held, and a fresh
    interpreter per writer spends seconds importing torch."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "hydra.utils", __name__])
    return context


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
def test_writer_killed_mid_write_leaves_the_last_good_checkpoint(tmp_path, at_byte, writers):
    io = checkpoint_io(tmp_path)
    folder = tmp_path / "checkpoints"
    target = folder / "last.ckpt"
    io.save_checkpoint(checkpoint(50_000, 1.0), target)
    size = target.stat().st_size
    limit = {"half": size // 2, "last": size - 1}.get(at_byte, at_byte)
    staging = tmp_path / "tmpdir"  # where a writer that stages elsewhere would leave its remains
    staging.mkdir()

    writer = writers.Process(
        target=killed_writer, args=(f"{type(io).__module__}.{type(io).__qualname__}", str(target), limit, str(staging))
    )
    writer.start()
    writer.join(timeout=120)
    assert writer.exitcode == -signal.SIGXFSZ, writer

    assert_good(target, 1.0)
    io.save_checkpoint(checkpoint(50_000, 3.0), target)  # the next save clears the dead writer's remains
    assert_good(target, 3.0)
    assert [p.name for p in folder.iterdir()] == ["last.ckpt"]
    assert list(staging.iterdir()) == []


# --- the writer itself, without a Trainer ------------------------------------------------------------------------


def free_pid(pids: range) -> int:
    """A process id in `pids` that no process has now: the pid of a writer that died."""
    return next(pid for pid in pids if not Path(f"/proc/{pid}").exists())


def test_a_save_clears_the_leftovers_of_dead_writers_only(tmp_path):
    folder, host = tmp_path / "checkpoints", socket.gethostname()
    folder.mkdir()
    # SIGHUP's default action restored: a probe that signals instead of asking must end it, even under nohup
    live = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        leftovers = {
            "below": f".last.ckpt.{host}.{free_pid(range(300, os.getpid()))}.tmp",  # died long ago
            "above": f".last.ckpt.{host}.{free_pid(range(os.getpid() + 1, 1 << 22))}.tmp",
            "live": f".last.ckpt.{host}.{live.pid}.tmp",  # still writing
            "another host": f".last.ckpt.{host}x.{free_pid(range(300, 1 << 22))}.tmp",  # shared disk, other machine
            "no pid": f".last.ckpt.{host}.x1.tmp",
            "another file": f".best.ckpt.{host}.{free_pid(range(300, 1 << 22))}.tmp",
        }
        for name in leftovers.values():
            (folder / name).write_bytes(b"partial")
        AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), folder / "last.ckpt")
        with pytest.raises(subprocess.TimeoutExpired):  # the live writer was asked whether it runs, not signalled
            live.wait(timeout=0.5)
    finally:
        live.kill()
        live.wait()
    kept = {case for case, name in leftovers.items() if (folder / name).exists()}
    assert kept == {"live", "another host", "no pid", "another file"}
    assert_good(folder / "last.ckpt", 1.0)


def test_a_dead_writers_leftover_removed_meanwhile_by_another_save_is_no_error(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    leftover = folder / f".last.ckpt.{socket.gethostname()}.{free_pid(range(300, 1 << 22))}.tmp"
    leftover.write_bytes(b"partial")

    def probe(pid, sig):  # while this save asks whether the writer lives, another save removes its file
        leftover.unlink()
        raise ProcessLookupError

    monkeypatch.setattr(os, "kill", probe)
    AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), folder / "last.ckpt")
    assert_good(folder / "last.ckpt", 1.0)


def test_a_leftover_of_another_users_live_writer_is_kept(tmp_path):
    """Signalling another user's process is refused (PermissionError): it may be writing, so its file stays."""
    if os.getuid() != 0 and Path("/proc/1").stat().st_uid == os.getuid():
        pytest.skip("process 1 runs as this user")
    folder = Path(tempfile.mkdtemp())  # outside tmp_path, whose parents only root may enter
    folder.chmod(0o777)
    leftover = folder / f".last.ckpt.{socket.gethostname()}.1.tmp"  # process 1, root's
    leftover.write_bytes(b"partial")
    try:
        with as_nobody():
            AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), folder / "last.ckpt")
        assert leftover.exists()
        assert_good(folder / "last.ckpt", 1.0)
    finally:
        shutil.rmtree(folder)


def test_a_folder_the_writer_may_not_write_to_gives_the_permission_error(tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    folder = Path(tempfile.mkdtemp())  # root's, readable by all, writable by root only
    folder.chmod(0o755)
    try:
        with as_nobody(), pytest.raises(PermissionError, match=f"Permission denied: '{folder}/.last.ckpt."):
            AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), folder / "last.ckpt")
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(folder)


@contextlib.contextmanager
def as_nobody():
    """Runs the block as user nobody, real and effective (signals are allowed by either): root keeps its saved id
    to come back. Other users are not root already."""
    if os.getuid() != 0:
        yield
        return
    os.setresuid(65534, 65534, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writing past byte `limit` of any file fails with EFBIG (the kernel's SIGXFSZ ignored), as on a full quota."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_write_that_fails_names_the_cause_and_keeps_the_last_good_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(checkpoint(50_000, 1.0), target)
    with file_size_limit(target.stat().st_size // 2), pytest.raises(OSError) as raised:
        AtomicCheckpointIO().save_checkpoint(checkpoint(50_000, 2.0), target)
    assert raised.value.errno == errno.EFBIG
    assert str(raised.value) == (
        f"[Errno {errno.EFBIG}] Checkpoint '{target}' was not written (File too large); the previous one is intact"
    )
    assert_good(target, 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


class Interrupts:
    """Pickling this raises what `error` names, as a Ctrl-C or an unpicklable object does midway through a save."""

    def __init__(self, error: BaseException):
        self.error = error

    def __reduce__(self):
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), TypeError("cannot pickle 'generator' object")])
def test_a_save_that_fails_before_the_disk_does_raises_its_own_error_and_leaves_no_trace(tmp_path, error):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), target)
    with pytest.raises(type(error)) as raised:
        AtomicCheckpointIO().save_checkpoint({**checkpoint(100, 2.0), "bad": Interrupts(error)}, target)
    assert raised.value is error
    assert_good(target, 1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_saving_creates_the_folders_and_replaces_the_file(tmp_path):
    target = tmp_path / "run" / "checkpoints" / "last.ckpt"
    for value in (1.0, 2.0):
        AtomicCheckpointIO().save_checkpoint(checkpoint(100, value), target)
        assert_good(target, value)


def test_remote_urls_and_storage_options_are_left_to_lightnings_writer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a local writer would take the URL for a relative path
    memory = fsspec.filesystem("memory")
    AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), "memory://litlab-test/last.ckpt")
    try:
        with memory.open("/litlab-test/last.ckpt", "rb") as file:
            assert torch.load(file, weights_only=True)["epoch"] == 1
    finally:
        memory.rm("/litlab-test", recursive=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="with `storage_options` arg is not supported for `AtomicCheckpointIO`"):
        AtomicCheckpointIO().save_checkpoint(checkpoint(100, 1.0), tmp_path / "last.ckpt", storage_options={})
    assert list(tmp_path.iterdir()) == []
