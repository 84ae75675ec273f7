"""Several processes on one study in a real PostgreSQL database and in one Optuna journal file.

The PostgreSQL server is started by the `postgres` fixture (tests/conftest.py) from the pgserver wheel.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from litlab import ROOT_DIR
from tests.helpers.optuna_worker import open_storage
from tests.helpers.sweep import start_sweep, trials_by_state

WORKERS = 3
# Sweeps of one-epoch trials on three batches of the bundled digits.
SWEEP = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
]


@pytest.fixture(params=["postgresql", "journal"])
def storage_spec(request, tmp_path) -> str:
    """A PostgreSQL URL (a new database) or the path of a new journal file."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "optuna.journal")


def run_workers(spec: str, study_name: str, target: int, tmp_path: Path) -> list[tuple[int, str, float, int]]:
    """Starts WORKERS worker processes on one study, lets them go at once, waits; returns their records."""
    barrier, record = tmp_path / "barrier", tmp_path / "record.txt"
    barrier.mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.optuna_worker", "--storage", spec, "--study", study_name]
            + ["--target", str(target), "--seed", str(seed), "--record", str(record), "--barrier", str(barrier)],
            cwd=ROOT_DIR,
            env={**os.environ, "PYTHONPATH": str(ROOT_DIR / "src")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + 300
        while len(list(barrier.glob("ready-*"))) < WORKERS:
            failed = [w for w in workers if w.poll() is not None]
            assert not failed, failed[0].stdout.read()
            assert time.monotonic() < deadline, "the workers did not get ready"
            time.sleep(0.1)
        (barrier / "go").touch()
        for worker in workers:
            output, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0, output
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    rows = []
    for line in record.read_text().splitlines():
        number, state, value, pid = line.split()
        rows.append((int(number), state, float(value), int(pid)))
    return rows


def test_worker_processes_share_one_study_without_counting_a_trial_twice(storage_spec, tmp_path):
    target = 12
    study = optuna.create_study(study_name="shared", storage=open_storage(storage_spec), direction="maximize")
    records = run_workers(storage_spec, "shared", target, tmp_path)

    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    # every trial has its own number, and each was evaluated by exactly one process, exactly once
    assert sorted(numbers) == list(range(len(trials)))
    assert sorted(number for number, *_ in records) == sorted(numbers)
    # the target is reached; at most the trials already running elsewhere when it was reached come on top
    assert target <= len(trials) <= target + WORKERS - 1
    assert {t.state.name for t in trials} == {"COMPLETE", "PRUNED"}
    # what each worker computed is what the study holds, pruning included
    stored = {t.number: (t.state.name, t.intermediate_values[t.last_step]) for t in trials}
    assert {number: (state, value) for number, state, value, _ in records} == stored
    # the trials really ran in all the processes at once
    assert len({pid for *_, pid in records}) == WORKERS


@pytest.mark.slow
def test_sweep_processes_share_one_postgresql_and_journal_study(storage_spec, tmp_path, monkeypatch):
    if "://" in storage_spec:
        # as the README says to: the URL comes from the environment, which also spares it Hydra's override parser
        monkeypatch.setenv("LITLAB_STORAGE", storage_spec)
        storage_override = "hydra.sweeper.storage=${oc.env:LITLAB_STORAGE}"
    else:
        storage_override = (
            "hydra.sweeper.storage={_target_:optuna.storages.JournalStorage,log_storage:"
            f"{{_target_:optuna.storages.journal.JournalFileBackend,file_path:'{storage_spec}'}}}}"
        )
    args = [*SWEEP, "hydra.sweeper.study_name=shared", storage_override, "hydra.sweeper.n_trials=2"]
    sweeps = [
        start_sweep([*args, f"hydra.sweeper.sampler.seed={i}"], tmp_path / "sweep", tmp_path / f"{i}.log")
        for i in range(WORKERS)
    ]
    for i, sweep in enumerate(sweeps):
        assert sweep.wait(timeout=900) == 0, (tmp_path / f"{i}.log").read_text()[-3000:]

    trials = trials_by_state(open_storage(storage_spec), "shared")
    finished = trials.get("COMPLETE", []) + trials.get("PRUNED", [])
    # every trial finished (none left running or failed), each under its own number
    assert set(trials) <= {"COMPLETE", "PRUNED"} and len(finished) >= 2
    assert sorted(t.number for t in finished) == list(range(len(finished)))
    # and each ran as its own job, in its own folder
    runs = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    assert len(runs) >= len(finished)
