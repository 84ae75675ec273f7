"""Running `python train.py -m ...` sweeps in tests: in this process, or as separate processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
from hydra.core.global_hydra import GlobalHydra

from litlab import ROOT_DIR
from tests.helpers.config import TEST_OVERRIDES, run_entry

# Trials small enough for a test: a few batches of the bundled digits, no checkpoints, no model summary.
FAST_TRIAL = [
    *TEST_OVERRIDES,
    "callbacks.model_summary=null",
    "callbacks.model_checkpoint=null",
    "callbacks.early_stopping=null",
    "callbacks.learning_rate_monitor=null",
    "test=false",
    "+trainer.limit_val_batches=2",
    "+trainer.enable_progress_bar=false",
]


def sweep_args(overrides: list[str], sweep_dir: Path | None) -> list[str]:
    """The command line of a test sweep writing into `sweep_dir` (None: the folder the config names)."""
    return ["-m", *FAST_TRIAL, *([f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else []), *overrides]


def run_sweep(overrides: list[str], sweep_dir: Path, monkeypatch) -> None:
    """Runs `python train.py -m <overrides>` in this process (the default launcher runs trials in-process too)."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["train.py", *sweep_args(overrides, sweep_dir)])
    run_entry("train.py")
    GlobalHydra.instance().clear()


def start_sweep(overrides: list[str], sweep_dir: Path | None, log_path: Path) -> subprocess.Popen:
    """Starts `python train.py -m <overrides>` as a separate process, its output going to `log_path`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src")}
    return subprocess.Popen(
        [sys.executable, str(ROOT_DIR / "train.py"), *sweep_args(overrides, sweep_dir)],
        cwd=ROOT_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


def trials_by_state(storage: str, study_name: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """The study's trials grouped by state name (COMPLETE, PRUNED, FAIL, RUNNING, ...)."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    grouped: dict[str, list] = {}
    for trial in study.get_trials(deepcopy=False):
        grouped.setdefault(trial.state.name, []).append(trial)
    return grouped


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs, as /proc shows them now (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue  # ended meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def running_pids(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie is not)."""
    from litlab.search.watch import process_alive

    return [pid for pid in pids if process_alive(pid)]


def wait_for(condition, timeout: float, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the sweep process ended early with exit code {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout} s")
        time.sleep(1)
