"""The pool of a sweep's worker jobs (litlab.search.pool): which launchers it runs one job at a time, loky processes
of their own for joblib's jobs (real processes, killed by a real signal), replacements of lost workers, and the
time interrupted workers get. The real sweeps that lose workers are in tests/integration/test_sweep_recovery.py."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hydra._internal.callbacks import Callbacks
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.utils import create_config_search_path
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, RunMode
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher, LocalLauncher, SlurmLauncher

from litlab import ROOT_DIR
from litlab.search.pool import WorkerPool, is_joblib, is_submitit, job_loss, one_by_one, runs_here
from litlab.search.watch import process_alive


def bare(cls: type):
    """A launcher of that class as the pool sees it: only its type matters."""
    return cls.__new__(cls)


# --- the launchers whose jobs run one at a time ---


class MyJoblibLauncher(JoblibLauncher):
    """A user's launcher built on joblib's."""


def test_joblib_and_submitit_launchers_are_known_by_their_classes_and_a_subclass_by_its_base():
    assert is_joblib(bare(JoblibLauncher)) and is_joblib(bare(MyJoblibLauncher))
    assert is_submitit(bare(LocalLauncher)) and is_submitit(bare(SlurmLauncher))
    assert is_submitit(bare(LocalLauncher), "LocalLauncher") and not is_submitit(bare(SlurmLauncher), "LocalLauncher")
    assert not is_joblib(bare(BasicLauncher)) and not is_submitit(bare(JoblibLauncher))
    # which run their jobs on this machine, in processes of their own (the command can watch them)
    assert runs_here(bare(JoblibLauncher)) and runs_here(bare(LocalLauncher))
    assert not runs_here(bare(SlurmLauncher)) and not runs_here(bare(BasicLauncher))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("tests.search.test_pool", "JoblibLauncher"),  # joblib's name, another package
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher", "Aaa"),  # joblib's package, another name
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher", "Zzz"),
    ],
)
def test_a_launcher_is_joblibs_only_by_both_its_package_and_its_class_name(module, name):
    assert not is_joblib(bare(type(name, (), {"__module__": module})))


def test_a_launcher_class_named_at_run_time_is_known_by_its_name_equal_not_the_same_string():
    name = "".join(["Joblib", "Launcher"])  # equal to joblib's class name, a string of its own
    launcher = type(name, (), {"__module__": "hydra_plugins.hydra_joblib_launcher.joblib_launcher"})
    assert is_joblib(bare(launcher))


def done(value) -> JobReturn:
    ret = JobReturn(status=JobStatus.COMPLETED)
    ret.return_value = value
    return ret


class FakeSubmitit(BaseSubmititLauncher):
    """submitit's launcher, launching nothing: it returns one JobReturn per job, as submitit's does."""

    def __init__(self) -> None:
        self.calls = []

    def launch(self, job_overrides, initial_job_idx):
        self.calls.append((job_overrides, initial_job_idx))
        return [done({"job": initial_job_idx + k}) for k in range(len(job_overrides))]


def test_a_submitit_worker_is_one_launch_of_its_own_job():
    launcher = FakeSubmitit()
    ret = one_by_one(launcher)(["seed=1"], 3)
    assert launcher.calls == [([["seed=1"]], 3)] and ret.return_value == {"job": 3}


def test_a_launcher_without_a_way_to_launch_one_job_gets_the_whole_batch():
    assert one_by_one(bare(BasicLauncher)) is None


# --- joblib: each worker in a loky process of its own ---


def task(cfg):
    """A worker job: writes its process id, then does what `cfg.act` says."""
    Path(cfg.dir, f"{cfg.name}.pid").write_text(str(os.getpid()))
    if cfg.act == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.act == "wait":  # until the test lets it end, or half a minute
        deadline = time.monotonic() + 30
        while not Path(cfg.dir, "release").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return os.getpid(), cfg.name


@pytest.fixture
def joblib_workers(tmp_path):
    """A JoblibLauncher set up as Hydra sets it up for a sweep of `task`, launching one worker job at a time."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(f"act: return\nname: ''\ndir: {tmp_path}\n")
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(tmp_path / "conf")))
    config = loader.load_configuration(
        config_name="config", overrides=[f"hydra.sweep.dir={tmp_path / 'sweep'}"], run_mode=RunMode.MULTIRUN
    )
    launcher = JoblibLauncher(n_jobs=2)
    launcher.setup(
        hydra_context=HydraContext(config_loader=loader, callbacks=Callbacks()), task_function=task, config=config
    )
    return one_by_one(launcher)


class InThread:
    """One worker job launched from a thread, as the pool does: what it returned or raised, when it has ended."""

    def __init__(self, launch_one, overrides, index) -> None:
        self.ret, self.error = None, None
        self.thread = threading.Thread(target=self.run, args=(launch_one, overrides, index), daemon=True)
        self.thread.start()

    def run(self, launch_one, overrides, index) -> None:
        try:
            self.ret = launch_one(overrides, index)
        except BaseException as err:  # noqa: BLE001 - the test looks at whatever ended the job
            self.error = err

    def pid(self, tmp_path: Path, name: str) -> int:
        path, deadline = tmp_path / f"{name}.pid", time.monotonic() + 120
        while not path.exists():
            assert self.thread.is_alive(), f"job {name} ended before it started: {self.error!r}"
            assert time.monotonic() < deadline, f"job {name} did not start"
            time.sleep(0.05)
        return int(path.read_text())

    def ended(self) -> bool:
        self.thread.join(timeout=60)
        return not self.thread.is_alive()


def loky_processes() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.name.startswith("LokyProcess")}


def test_a_joblib_worker_killed_mid_job_is_lost_alone(joblib_workers, tmp_path):
    launch_one = joblib_workers
    survivor = InThread(launch_one, ["act=wait", "name=survivor"], 0)
    survivor_pid = survivor.pid(tmp_path, "survivor")
    killed = InThread(launch_one, ["act=die", "name=killed"], 1)
    assert killed.ended() and killed.ret is None
    assert job_loss(killed.error).startswith("TerminatedWorkerError: A worker process managed by the executor")
    assert survivor.thread.is_alive() and process_alive(survivor_pid)
    (tmp_path / "release").touch()
    assert survivor.ended() and survivor.error is None
    # the job ran in a process of its own, as job number 0, with its overrides and Hydra's job config
    assert survivor.ret.return_value == (survivor_pid, "survivor") and survivor_pid != os.getpid()
    assert survivor.ret.hydra_cfg.hydra.job.num == 0 and survivor.ret.overrides == ["act=wait", "name=survivor"]
    assert (tmp_path / "sweep" / "0" / ".hydra" / "config.yaml").is_file()


def test_joblib_workers_take_a_process_each_and_are_ended_when_the_command_leaves(joblib_workers, tmp_path):
    launch_one = joblib_workers
    before = loky_processes()
    jobs = [InThread(launch_one, ["act=wait", f"name={k}"], k) for k in range(2)]
    pids = {job.pid(tmp_path, str(k)) for k, job in enumerate(jobs)}
    assert loky_processes() - before == pids
    launch_one.stop()
    assert all(job.ended() and job.ret is None and job.error is not None for job in jobs)
    deadline = time.monotonic() + 30
    while any(process_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker process outlived stop()"
        time.sleep(0.05)
    assert not (tmp_path / "release").exists()  # ended by stop(), not by the test


# --- replacements ---


class Jobs:
    """Worker jobs as a launcher would run them: each job number either returns or dies, as the test says, after
    `seconds`."""

    def __init__(self, dies: set[int], seconds: float = 0.0) -> None:
        self.dies, self.seconds, self.launched = dies, seconds, []

    def __call__(self, overrides, index) -> JobReturn:
        self.launched.append((index, list(overrides)))
        time.sleep(self.seconds)
        if index in self.dies:
            raise RuntimeError(f"job {index} died\n(the launcher's many lines of detail)")
        return done({"COMPLETE": index})


@pytest.mark.parametrize(
    ("dies", "max_replacements", "wanted", "launched", "lost"),
    [
        ({1}, 2, True, [0, 1, 2, 4], {1}),  # worker 1 lost, job 4 replaces it on worker 1's slot
        ({1, 4}, 2, True, [0, 1, 2, 4, 7], {1, 4}),  # its replacement lost too: replaced again
        ({1, 4}, 1, True, [0, 1, 2, 4], {1, 4}),  # no replacement left
        ({1, 4, 7, 10}, 3, True, [0, 1, 2, 4, 7, 10], {1, 4, 7, 10}),  # replacements counted past n_jobs
        ({0, 1, 2}, 0, True, [0, 1, 2], {0, 1, 2}),
        ({1}, 2, False, [0, 1, 2], {1}),  # the study needs no more workers
    ],
)
def test_a_lost_worker_is_replaced_while_the_study_needs_it(dies, max_replacements, wanted, launched, lost):
    jobs = Jobs(dies)
    outcome = WorkerPool(jobs, lambda k: [f"subdir=workers/{k}"], 3, max_replacements, lambda: wanted, 0.01).run()
    assert sorted(index for index, _ in jobs.launched) == launched
    assert all(overrides == [f"subdir=workers/{index}"] for index, overrides in jobs.launched)
    assert set(outcome.lost) == lost and outcome.launched == len(launched)
    assert all(why == f"RuntimeError: job {k} died" for k, why in outcome.lost.items())
    assert {k: ret.return_value for k, ret in outcome.returns.items()} == {
        k: {"COMPLETE": k} for k in launched if k not in lost
    }


def test_a_long_run_of_losses_stops_at_max_replacements_however_large():
    jobs = Jobs(set(range(300)))  # every job dies, the 301st would not
    outcome = WorkerPool(jobs, lambda k: [], 1, 299, lambda: True, 0.01).run()
    assert outcome.launched == 300 and len(outcome.lost) == 300 and not outcome.returns


def test_the_pool_waits_for_workers_that_outlast_many_polls():
    outcome = WorkerPool(Jobs({1}, seconds=0.3), lambda k: [], 2, 1, lambda: True, poll=0.01).run()
    assert set(outcome.returns) == {0, 3} and set(outcome.lost) == {1} and outcome.launched == 3


def test_the_pool_sleeps_while_it_waits_by_default():
    started = time.thread_time()
    outcome = WorkerPool(Jobs(set(), seconds=1.0), lambda k: [], 1, 0, lambda: True).run()
    assert set(outcome.returns) == {0}
    assert time.thread_time() - started < 0.2  # CPU time of this thread, not wall time: no busy wait


def test_a_command_that_leaves_does_not_wait_for_its_worker_threads():
    code = (
        "import threading; from litlab.search.pool import WorkerPool; "
        "WorkerPool(lambda overrides, index: threading.Event().wait(), lambda k: [], 1, 0, lambda: True)._start(0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src")}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=30).returncode == 0


def test_a_launchers_long_explanation_of_a_lost_job_is_one_line():
    assert job_loss(RuntimeError("Job 12 has not produced any output\nError stream produced:\n...")) == (
        "RuntimeError: Job 12 has not produced any output"
    )
    assert job_loss(KeyError()) == "KeyError"
    assert job_loss(RuntimeError("x" * 400 + "\nmore")) == "RuntimeError: " + "x" * 300


# --- Ctrl-C ---


class Blocking:
    """Worker jobs that run until the test lets each end; `stop()` is what the pool calls to end them all."""

    def __init__(self) -> None:
        self.release, self.stopped = [threading.Event(), threading.Event()], False

    def __call__(self, overrides, index) -> JobReturn:
        self.release[index].wait(timeout=60)
        return done({})

    def stop(self) -> None:
        self.stopped = True
        for event in self.release:
            event.set()


@pytest.mark.parametrize(
    ("end", "poll", "timeout", "stopped", "within"),
    [
        ("both", 0.01, 0.5, False, 0.4),  # the terminal's Ctrl-C reached the workers too: they end at once
        ("both later", 0.01, 10, False, 5),  # they close their trials over many polls, within the time given
        ("one", 0.01, 0.5, True, 5),  # the one still running is ended
        ("none", 0.01, 0.5, True, 5),
        ("none", 60, 0.2, True, 0.8),  # the time given, not the poll, bounds the wait
    ],
)
def test_interrupted_workers_get_time_to_close_their_trials_then_are_ended(end, poll, timeout, stopped, within):
    jobs = Blocking()
    pool = WorkerPool(jobs, lambda k: [], 2, 0, lambda: True, poll=poll)
    for index in range(2):
        pool._start(index)
    if end == "both later":
        threading.Timer(0.2, lambda: [event.set() for event in jobs.release]).start()
    else:
        for event in jobs.release[: {"both": 2, "one": 1, "none": 0}[end]]:
            event.set()
    started = time.monotonic()
    pool.interrupted(timeout=timeout)
    assert jobs.stopped is stopped
    assert time.monotonic() - started < within


def test_a_pool_interrupted_before_it_started_a_worker_has_none_to_end():
    jobs = Blocking()
    WorkerPool(jobs, lambda k: [], 2, 0, lambda: True, poll=0.01).interrupted(timeout=0.5)
    assert not jobs.stopped
