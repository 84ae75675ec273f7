"""`ckpt_path=last`: a run killed mid-epoch and resumed ends where the uninterrupted run ends, with its metrics."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from litlab import ROOT_DIR
from litlab.checkpoints.load import CheckpointError
from litlab.checkpoints.resume import find_last_checkpoint, run_dir_of
from litlab.train import train
from tests.helpers.config import TEST_OVERRIDES, train_config

# Deterministic, a checkpoint (and so last.ckpt) after every epoch, small batches so that an epoch lasts long
# enough to be interrupted.
RUN = [
    *TEST_OVERRIDES,
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "data.batch_size=16",
    "callbacks.model_checkpoint.save_top_k=-1",
    "seed=7",
]


def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard draws from a run's folder (its EventAccumulator drops purged steps as the UI does)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _train_py(args: list[str], log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT_DIR / "train.py"), *args],
        cwd=ROOT_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference_dir = tmp_path / "reference"
    # The runs below are subprocesses with one thread: the reference too, since another thread count sums in
    # another order and the curves part by more than rounding after a few hundred steps.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(train_config(RUN, reference_dir))
    finally:
        torch.set_num_threads(threads)
    reference = _scalars(reference_dir / "tensorboard" / "version_0")

    log_dir = tmp_path / "logs"
    args = [*RUN, f"paths.log_dir={log_dir}"]
    killed = _train_py(args, tmp_path / "killed.log")
    try:
        deadline = time.monotonic() + 600
        while not list(log_dir.glob("train/runs/*/checkpoints/epoch_001.ckpt")):
            assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never finished its second epoch"
            time.sleep(0.05)
        checkpoints = next(log_dir.glob("train/runs/*/checkpoints"))
        epoch_seconds = (checkpoints / "epoch_001.ckpt").stat().st_mtime - (
            checkpoints / "epoch_000.ckpt"
        ).stat().st_mtime
        time.sleep(0.4 * epoch_seconds)  # well inside the third epoch
        assert killed.poll() is None, "the run ended before it could be killed"
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL
    assert not (checkpoints / "epoch_002.ckpt").exists(), "the kill came after the third epoch had ended"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 1

    resumed = _train_py([*args, "ckpt_path=last"], tmp_path / "resumed.log")
    assert resumed.wait(timeout=900) == 0, (tmp_path / "resumed.log").read_text()[-3000:]
    assert "ckpt_path=last: resuming" in (tmp_path / "resumed.log").read_text()

    # The resumed run continued in the killed run's folder: its epochs, checkpoints and one TensorBoard run.
    run_dir = checkpoints.parent
    assert (checkpoints / "epoch_002.ckpt").exists()
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 2
    assert [p.name for p in (run_dir / "tensorboard").iterdir()] == ["version_0"]
    curves = _scalars(run_dir / "tensorboard" / "version_0")
    # model/params_* are logged once per start; every curve holds each step once, as in the reference.
    for tag, points in reference.items():
        if tag.startswith("model/"):
            continue
        assert [step for step, _ in curves[tag]] == [step for step, _ in points], tag
        assert [value for _, value in curves[tag]] == pytest.approx([value for _, value in points], abs=1e-6), tag


def _fake_run(run_dir: Path, experiment: str | None, checkpoint: str | None, mtime: float) -> Path:
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save({"hydra": {"runtime": {"choices": {"experiment": experiment}}}}, run_dir / ".hydra" / "hydra.yaml")
    if checkpoint is None:
        return run_dir
    path = run_dir / "checkpoints" / checkpoint if checkpoint == "last.ckpt" else run_dir / checkpoint
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))
    return path


def test_last_checkpoint_is_the_newest_of_the_same_task_and_experiment(tmp_path):
    older = _fake_run(tmp_path / "train" / "runs" / "a", "mnist_mlp", "last.ckpt", 1000)
    requeued = _fake_run(tmp_path / "train" / "multiruns" / "s" / "0", "mnist_mlp", "hpc_ckpt_1.ckpt", 2000)
    _fake_run(tmp_path / "train" / "runs" / "b", "mnist_cnn", "last.ckpt", 3000)  # another experiment
    _fake_run(tmp_path / "eval" / "runs" / "c", "mnist_mlp", "last.ckpt", 4000)  # another task
    _fake_run(tmp_path / "train" / "runs" / "d", "mnist_mlp", None, 5000)  # started, never checkpointed

    assert find_last_checkpoint(tmp_path, "train", "mnist_mlp") == requeued
    assert run_dir_of(requeued) == tmp_path / "train" / "multiruns" / "s" / "0"
    os.utime(older, (6000, 6000))
    assert find_last_checkpoint(tmp_path, "train", "mnist_mlp") == older
    assert find_last_checkpoint(tmp_path, "train", None) is None
    assert find_last_checkpoint(tmp_path / "nowhere", "train", "mnist_mlp") is None


def test_ckpt_path_last_without_a_previous_run_starts_a_new_one(tmp_path):
    cfg = train_config([*RUN, "trainer.max_epochs=1", "logger=csv", "ckpt_path=last"], tmp_path)
    metrics, objects = train(cfg)
    assert cfg.ckpt_path is None
    assert objects["trainer"].current_epoch == 1 and metrics["test/acc"] > 0.5


def test_ckpt_path_last_names_a_corrupt_last_checkpoint(tmp_path):
    # A run killed while it wrote last.ckpt leaves a truncated file: one sentence, not a traceback from torch.
    (_fake_run(tmp_path / "train" / "runs" / "a", None, "last.ckpt", 1000)).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"last\.ckpt' is corrupt or not a PyTorch checkpoint"):
        train(train_config([*RUN, "logger=csv", "ckpt_path=last"], tmp_path))
