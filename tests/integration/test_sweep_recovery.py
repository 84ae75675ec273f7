"""A sweep that loses workers, and commands that share a study, with real processes killed by real signals:
a lost worker is one lost worker, a killed command leaves no worker behind, and no parameter set runs twice.
Each sweep takes a minute or more on a laptop CPU: they are marked slow."""

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from litlab.search.storage import LOST_REASON, counts
from tests.helpers.sweep import descendants, running_pids, start_sweep, trials_by_state, wait_for

# Trials of a few seconds on the bundled digits: long enough to be killed in the middle.
KILL_SEARCH = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=3",
    "+trainer.limit_train_batches=20",
    "hydra.sweeper.heartbeat_interval=1",
    "hydra.sweeper.n_jobs=2",
]


def running_trials(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The study's RUNNING trials, those that have reported an epoch (in the middle of their training) first."""
    try:
        trials = trials_by_state(storage, study)
    except Exception:  # noqa: BLE001 - the sweep has not created its study yet
        return []
    return sorted(trials.get("RUNNING", []), key=lambda t: not t.intermediate_values)


def both_running(storage: str, study: str) -> tuple[optuna.trial.FrozenTrial, optuna.trial.FrozenTrial] | None:
    """Two trials running at once, the first in the middle of its training; None until there are."""
    running = running_trials(storage, study)
    return (running[0], running[1]) if len(running) == 2 and running[0].intermediate_values else None


def worker_pid(trial: optuna.trial.FrozenTrial) -> int:
    return int(trial.user_attrs["worker"].rsplit(":", 1)[1])


def worker_index(trial: optuna.trial.FrozenTrial, sweep_dir: Path) -> int:
    """The job number of the worker that ran `trial`, from the worker folders' logs (which name each trial run)."""
    for log in sweep_dir.glob("workers/*/*.log"):
        if f"Trial {trial.number}: " in log.read_text():
            return int(log.parent.name)
    raise AssertionError(f"no worker log names trial {trial.number}")


def last_line(log: Path) -> str:
    return log.read_text().strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_killed_worker_is_one_lost_worker_not_a_lost_sweep(launcher, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = start_sweep(
        [
            *KILL_SEARCH,
            f"hydra/launcher={launcher}",
            "hydra.sweeper.study_name=kill",
            f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.retry_failed=1",
        ],
        tmp_path / "sweep",
        tmp_path / "sweep.log",
    )
    try:
        # both workers at a trial, the victim's in the middle of its training
        wait_for(lambda: both_running(storage, "kill") is not None, timeout=600, process=sweep)
        victim, other = both_running(storage, "kill")
        os.kill(worker_pid(victim), signal.SIGKILL)
        killed_at = datetime.now()
        assert sweep.wait(timeout=900) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        sweep.kill()
        sweep.wait()

    trials = optuna.load_study(study_name="kill", storage=storage).get_trials()
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    lost = trials[victim.number]
    assert lost.state == TrialState.FAIL and not counts(lost)
    assert lost.user_attrs[LOST_REASON].startswith(f"lost: no heartbeat from {victim.user_attrs['worker']} since ")
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert [(t.state, t.params) for t in retries] == [(TrialState.COMPLETE, victim.params)]
    # the other worker went on: it ran trials after the kill, and the study reached its target
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 6
    assert trials[other.number].state == TrialState.COMPLETE
    after = {t.user_attrs["worker"] for t in trials if t.datetime_start > killed_at}
    assert other.user_attrs["worker"] in after and victim.user_attrs["worker"] not in after
    # every report written; the lost trial's row says why, and its time ends with its worker
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    skipped = [t for t in trials if t.state == TrialState.FAIL and t.number != victim.number]
    assert all(t.user_attrs[LOST_REASON].startswith("skipped: ") for t in skipped)  # repeats, never run
    assert results["trials"] == {"complete": 6, "pruned": 0, "fail": 1 + len(skipped)}
    table = pd.read_csv(tmp_path / "sweep" / "trials.csv").set_index("number")
    assert table.loc[victim.number, "user_attrs_lost_reason"] == lost.user_attrs[LOST_REASON]
    ran_for = (killed_at - victim.datetime_start).total_seconds()
    assert ran_for - 2 <= table.loc[victim.number, "duration_s"] <= ran_for + 1
    for report in ("optimization_history.png", "param_importances.png", "intermediate_values.png"):
        assert (tmp_path / "sweep" / report).stat().st_size > 10_000
    # the lost worker was replaced, unless the other had made up the study by the time the launcher said it was lost
    # (submitit waits 15 s for a dead job's result file)
    log = (tmp_path / "sweep.log").read_text()
    lost = re.search(r"Worker (\d) was lost: ", log)
    assert lost and int(lost[1]) == worker_index(victim, tmp_path / "sweep")
    replaced = f"Worker {int(lost[1]) + 2} replaces it (1 of 2)." in log
    assert replaced or launcher == "submitit_local"
    assert last_line(tmp_path / "sweep.log").endswith(
        "1 of 3 workers lost (1 replacement started)." if replaced else "1 of 2 workers lost (0 replacements started)."
    )


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_a_killed_sweep_command_leaves_no_worker_behind(launcher, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = start_sweep(
        [
            *KILL_SEARCH,
            f"hydra/launcher={launcher}",
            "hydra.sweeper.study_name=orphans",
            f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.n_trials=10",
        ],
        tmp_path / "sweep",
        tmp_path / "sweep.log",
    )
    try:
        wait_for(lambda: both_running(storage, "orphans") is not None, timeout=600, process=sweep)
        processes = descendants(sweep.pid)  # workers, and submitit's controllers or loky's trackers
        running = {t.number: worker_pid(t) for t in trials_by_state(storage, "orphans")["RUNNING"]}
        assert set(running.values()) <= set(processes)
    finally:
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
    grace = 2  # twice the heartbeat interval
    deadline = time.monotonic() + grace + 10
    while running_pids(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert running_pids(processes) == []
    trials = trials_by_state(storage, "orphans")
    assert "RUNNING" not in trials
    # the trials running when the command died were closed by their workers (or had just finished)
    ended = {t.number: t for ts in trials.values() for t in ts if t.number in running}
    stopped = [t for t in ended.values() if t.state == TrialState.FAIL]
    assert stopped and all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in ended.values())
    assert all(t.user_attrs[LOST_REASON].startswith("stopped: the sweep command (") for t in stopped)


def evaluated_params(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    """The parameter sets a study evaluated: its trials that ran to their end."""
    return [tuple(sorted(t.params.items())) for t in trials if counts(t)]


@pytest.mark.slow
def test_two_identical_commands_started_together_share_the_work_without_repeating_it(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [
        "hparams_search=samplers_compare",
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.timeout=null",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=6",
    ]
    # each in the folder the default hydra.sweep.dir makes: a new one under logs/<task_name>/multiruns/
    sweeps = [
        start_sweep(
            [*command, "hydra.sweeper.study_name=shared", f"paths.log_dir={tmp_path / 'logs'}"],
            None,
            tmp_path / f"{k}.log",
        )
        for k in range(2)
    ]
    for k, sweep in enumerate(sweeps):
        assert sweep.wait(timeout=900) == 0, (tmp_path / f"{k}.log").read_text()[-3000:]
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    evaluated = evaluated_params(trials)
    assert len(evaluated) == 6 and len(set(evaluated)) == 6
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len({t.user_attrs["worker"] for t in trials if counts(t)}) == 2  # both commands ran trials
    folders = list((tmp_path / "logs" / "hparams_samplers_compare" / "multiruns").iterdir())
    assert len(folders) == 2 and all((f / "optimization_results.yaml").is_file() for f in folders)

    # a new study with the same seed starts as the shared one did
    fresh = start_sweep(
        [*command, "hydra.sweeper.study_name=fresh", "hydra.sweeper.n_trials=1"],
        tmp_path / "fresh",
        tmp_path / "fresh.log",
    )
    assert fresh.wait(timeout=900) == 0, (tmp_path / "fresh.log").read_text()[-3000:]
    first = optuna.load_study(study_name="fresh", storage=storage).trials[0]
    assert first.params == trials[0].params
