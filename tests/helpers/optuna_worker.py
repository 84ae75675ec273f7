"""One Optuna worker process for the storage tests: it joins a study and runs trials until the study holds
a target of finished ones, recording every trial it evaluates.

    python -m tests.helpers.optuna_worker --storage URL_OR_JOURNAL_FILE --study NAME --target N --seed S \\
        --record FILE --barrier DIR

The objective is -(x - 2)^2 for x in [0, 4], reported at three steps; a ThresholdPruner prunes every trial
below -1 (x outside [1, 3]), so a study gets COMPLETE and PRUNED trials. Each evaluated trial appends one
line `number state value pid` to --record (O_APPEND: whole lines from several processes never interleave).
Workers wait for each other at --barrier before the first trial, so that their trials really overlap.
"""

import argparse
import os
import time
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

STEPS = 3


def open_storage(spec: str) -> str | optuna.storages.BaseStorage:
    """A database URL as it is; anything else is the path of an Optuna journal file."""
    if "://" in spec:
        return spec
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(spec))


def wait_at_barrier(barrier: Path, name: str, timeout: float = 300) -> None:
    """Says this worker is ready, then waits until the test opens the barrier (the file `go`)."""
    (barrier / f"ready-{name}").touch()
    deadline = time.monotonic() + timeout
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the barrier {barrier} was not opened within {timeout} s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--target", type=int, required=True, help="finished trials (complete or pruned) to reach")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--barrier", type=Path, required=True)
    args = parser.parse_args()

    study = optuna.load_study(
        study_name=args.study,
        storage=open_storage(args.storage),
        sampler=optuna.samplers.RandomSampler(seed=args.seed),
        pruner=optuna.pruners.ThresholdPruner(lower=-1.0),
    )
    record = os.open(args.record, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 4.0)
        value = -((x - 2.0) ** 2)
        for step in range(STEPS):
            time.sleep(0.05)
            trial.report(value, step)
            if trial.should_prune():
                os.write(record, f"{trial.number} PRUNED {value!r} {os.getpid()}\n".encode())
                raise optuna.TrialPruned()
        os.write(record, f"{trial.number} COMPLETE {value!r} {os.getpid()}\n".encode())
        return value

    wait_at_barrier(args.barrier, str(args.seed))
    study.optimize(
        objective, callbacks=[MaxTrialsCallback(args.target, states=(TrialState.COMPLETE, TrialState.PRUNED))]
    )
    os.close(record)


if __name__ == "__main__":
    main()
