"""Sweep workers on the command's own machine stop when the command that started them dies.

joblib's and submitit's local worker processes outlive a killed command: they would run the study to its end
unwatched, then sit idle. Each such worker watches its command's process, and once it is gone, closes its
running trial as FAIL with the reason and exits. SLURM workers run elsewhere and finish the study on their own.
"""

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def this_process() -> str:
    """This process as `host:pid`, the way a worker finds the command that started it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine runs (a dead one its parent has not reaped yet does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal's answer stands
    return state not in ("Z", "X")


@contextmanager
def watching(command: str | None, on_death: Callable[[], None], interval: float = 1.0) -> Iterator[None]:
    """Calls `on_death` (from a thread of its own) once the process `command` (`host:pid`) has died, checking
    every `interval` seconds while the block runs; a command on another machine, or none, is not watched."""
    host, _, pid = (command or "").rpartition(":")
    if not pid or host != socket.gethostname():
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            if not process_alive(int(pid)):
                on_death()
                return

    thread = threading.Thread(target=watch, name="litlab-sweep-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
