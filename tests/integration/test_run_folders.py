"""Commands started together never share a run or sweep folder: real `python train.py` processes at once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from litlab import ROOT_DIR

# One short epoch of the bundled digits: a checkpoint, a log and CSV metrics per run.
SHORT_RUN = [
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "extras.print_config=false",
    "extras.enforce_tags=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_summary=null",
    "+trainer.enable_progress_bar=false",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "logger=csv",
    "test=false",
]


def start(arguments: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src"), "OMP_NUM_THREADS": "1"}
    for name in ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, str(ROOT_DIR / "train.py"), *arguments],
        cwd=ROOT_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def finish(processes: list[subprocess.Popen], logs: list[Path]) -> None:
    for process, log in zip(processes, logs, strict=True):
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_six_runs_started_at_once_get_six_folders_each_with_its_own_checkpoints_and_log(tmp_path):
    seeds = range(1, 7)
    logs = [tmp_path / f"run{seed}.out" for seed in seeds]
    processes = [
        start([*SHORT_RUN, f"paths.log_dir={tmp_path / 'logs'}", f"seed={seed}"], log)
        for seed, log in zip(seeds, logs, strict=True)
    ]
    finish(processes, logs)
    folders = sorted((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(folders) == 6
    by_seed = {OmegaConf.load(folder / ".hydra" / "config.yaml").seed: folder for folder in folders}
    assert sorted(by_seed) == list(seeds)
    for seed, folder in by_seed.items():
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
        log = (folder / "train.log").read_text()
        assert log.count("Seed set to") == 1 and f"Seed set to {seed}" in log
        assert {line.rsplit("Output dir: ", 1)[1] for line in log.splitlines() if "Output dir: " in line} == {
            str(folder)
        }
        assert len(list((folder / "csv").rglob("metrics.csv"))) == 1


@pytest.mark.slow
def test_two_sweeps_started_at_once_get_a_folder_each(tmp_path):
    logs = [tmp_path / f"sweep{k}.out" for k in range(2)]
    arguments = ["-m", *SHORT_RUN, "train=false", "optimized_metric=null", f"paths.log_dir={tmp_path / 'logs'}"]
    processes = [start([*arguments, f"seed={k},{k + 10}"], log) for k, log in enumerate(logs)]
    finish(processes, logs)
    sweeps = sorted((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 2
    seeds = [{OmegaConf.load(sweep / job / ".hydra" / "config.yaml").seed for job in ("0", "1")} for sweep in sweeps]
    assert sorted(seeds, key=min) == [{0, 10}, {1, 11}]
