"""The sweep's workers as jobs of a Hydra launcher: launched once, waited for, replaced when lost.

A Hydra launcher's `launch()` returns when its whole batch of jobs has, and fails as a whole when one job dies:
joblib's shared process pool kills every process in it once one dies, submitit raises for the first job that
left no result while the others go on unwatched. So where a launcher runs its jobs outside this process, each
worker is launched on its own, from a thread of this process: a worker that dies is one lost worker, the others
go on, and a replacement takes its place while the study still needs one (up to `max_replacements`). joblib gets
a process pool of one process per worker (loky, as joblib's own); submitit gets one launch per worker (SLURM
array of one). Hydra's basic launcher runs its jobs in this very process, one after another, and a launcher
this module does not know may not launch from several threads: both get their batch in one call, as Hydra
gives it (their loss is the command's; rerunning the command continues the study).
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher

log = logging.getLogger(__name__)

# What launches one worker job: its overrides and job number in, its JobReturn out; raises if the job died.
LaunchOne = Callable[[Sequence[str], int], JobReturn]


def _is(launcher: Launcher, module: str, name: str) -> bool:
    return any(cls.__module__.startswith(module) and cls.__name__ == name for cls in type(launcher).__mro__)


def is_joblib(launcher: Launcher) -> bool:
    return _is(launcher, "hydra_plugins.hydra_joblib_launcher", "JoblibLauncher")


def is_submitit(launcher: Launcher, name: str = "BaseSubmititLauncher") -> bool:
    return _is(launcher, "hydra_plugins.hydra_submitit_launcher", name)


def runs_here(launcher: Launcher) -> bool:
    """Whether the launcher's jobs run on this machine in processes of their own (their command can watch them)."""
    return is_joblib(launcher) or is_submitit(launcher, "LocalLauncher")


class _JoblibWorkers:
    """Each worker job in a loky process pool of its own: loky kills every process of a pool once one dies."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.pools: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, overrides: Sequence[str], index: int) -> JobReturn:
        from hydra.core.singleton import Singleton
        from hydra_plugins.hydra_joblib_launcher._core import execute_job
        from joblib.externals.loky import ProcessPoolExecutor

        launcher = self.launcher
        pool = ProcessPoolExecutor(max_workers=1)
        with self.lock:
            self.pools.append(pool)
        try:
            # joblib's own job body: Hydra's globals and singletons restored, the job's config composed, run_job
            future = pool.submit(
                execute_job,
                index,
                list(overrides),
                launcher.hydra_context,
                launcher.config,
                launcher.task_function,
                0,
                Singleton.get_state(),
                False,
            )
            return future.result()
        finally:
            pool.shutdown(wait=False)

    def stop(self) -> None:
        """Ends every worker process still running (the command is leaving)."""
        with self.lock:
            for pool in self.pools:
                pool.shutdown(wait=False, kill_workers=True)


def one_by_one(launcher: Launcher) -> LaunchOne | None:
    """How to launch a single worker job with `launcher` apart from the others, or None where it cannot be."""
    if is_joblib(launcher):
        return _JoblibWorkers(launcher)
    if is_submitit(launcher):
        return lambda overrides, index: launcher.launch([overrides], initial_job_idx=index)[0]
    return None


def job_loss(err: BaseException) -> str:
    """Why a launcher lost a job, in one line (submitit and loky explain at length over many)."""
    lines = str(err).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(err).__name__}: {first[:300]}".rstrip(": ")


@dataclass
class PoolOutcome:
    """How the workers of a sweep ended."""

    launched: int  # worker jobs started, replacements included
    returns: dict[int, JobReturn] = field(default_factory=dict)  # by job number: the workers that came back
    lost: dict[int, str] = field(default_factory=dict)  # by job number: why a worker's job is gone


class WorkerPool:
    """Keeps `n_jobs` worker jobs running until they end on their own; a lost one is replaced while `wanted()`
    says the study needs more work and fewer than `max_replacements` replacements were started.

    Worker `k` runs as job number `k`; its replacement as job `k + n_jobs` (so it keeps `k`'s GPU), and so on.
    """

    # What each worker's thread reports when its job ends: the job number, its JobReturn (None if it was lost), and
    # why it was lost (None if it came back).
    ended: queue.Queue[tuple[int, JobReturn | None, str | None]]
    running: int  # worker jobs started and not yet reported ended

    def __init__(
        self,
        launch_one: LaunchOne,
        overrides: Callable[[int], list[str]],
        n_jobs: int,
        max_replacements: int,
        wanted: Callable[[], bool],
        poll: float = 1.0,
    ) -> None:
        self.launch_one = launch_one
        self.overrides = overrides
        self.n_jobs = n_jobs
        self.max_replacements = max_replacements
        self.wanted = wanted
        self.poll = poll
        self.ended = queue.Queue()
        self.running = 0

    def _start(self, index: int) -> None:
        def run() -> None:
            try:
                self.ended.put((index, self.launch_one(self.overrides(index), index), None))
            except BaseException as err:  # noqa: BLE001 - whatever ended the job, this thread reports it
                self.ended.put((index, None, job_loss(err)))

        # A daemon: a command that leaves (its workers ended or abandoned) does not wait for the thread's launch call.
        threading.Thread(target=run, name=f"litlab-sweep-worker-{index}", daemon=True).start()
        self.running += 1

    def run(self) -> PoolOutcome:
        outcome = PoolOutcome(launched=self.n_jobs)
        for index in range(self.n_jobs):
            self._start(index)
        while self.running:
            try:
                # A timeout, so that Ctrl-C reaches this thread while it waits where a wait on a lock cannot be
                # interrupted (Windows; POSIX interrupts it at once).
                index, ret, lost = self.ended.get(timeout=self.poll)
            except queue.Empty:
                continue
            self.running -= 1
            if lost is None:
                outcome.returns[index] = ret
                continue
            outcome.lost[index] = lost
            log.warning(f"Worker {index} was lost: {lost}")
            replacements = outcome.launched - self.n_jobs
            if replacements < self.max_replacements and self.wanted():
                log.info(f"Worker {index + self.n_jobs} replaces it ({replacements + 1} of {self.max_replacements}).")
                self._start(index + self.n_jobs)
                outcome.launched += 1
        return outcome

    def interrupted(self, timeout: float) -> None:
        """Ctrl-C: gives the workers `timeout` seconds to close their trials (the terminal interrupted them too),
        then ends those still running."""
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            try:
                self.ended.get(timeout=min(self.poll, max(0.0, deadline - time.monotonic())))
                self.running -= 1
            except queue.Empty:
                continue
        stop = getattr(self.launch_one, "stop", None)
        if self.running and stop is not None:
            stop()
