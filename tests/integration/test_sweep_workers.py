"""Sweeps that scale out: the worker loop (litlab.search.worker) on a tiny task, workers in other processes,
a shared study, lost trials recovered, bad input named."""

import contextlib
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import types
from datetime import datetime
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
from hydra import initialize_config_dir
from hydra._internal.callbacks import Callbacks
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, RunMode
from joblib.externals.loky import get_reusable_executor
from omegaconf import OmegaConf, open_dict
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from sqlalchemy.exc import SQLAlchemyError

from litlab.search import conditional
from litlab.search import worker as worker_module
from litlab.search.params import format_override, grid_choices, parse_search_space
from litlab.search.storage import (
    FAIL_REASON,
    HEARTBEAT_ATTR,
    LOST_REASON,
    Liveness,
    build_storage,
    counts,
    fail_stale_trials,
    heartbeat,
    mask_url,
    open_study,
    study_and_trial_ids,
)
from litlab.search.worker import Progress, Pruned, SweepPlan, TooManyFailures, TrialWorker, tell, trial_outcome
from tests.helpers.sweep import run_sweep, start_sweep, trials_by_state, wait_for

SEARCH = [
    "hparams_search=samplers_compare",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.timeout=null",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
]
# lr 1e-5 learns nothing in 2 epochs and is pruned by the threshold after its first; 3e-3 passes it.
PRUNED_SEARCH = [
    *SEARCH,
    "model.optimizer.lr=choice(0.00001,0.003)",
    "model/optimizer=adam",
    "model.net.dropout=0.0",
    "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
]


def test_search_space_is_parsed_into_optuna_distributions():
    space = parse_search_space(
        [
            "model.optimizer.lr=tag(log, interval(0.00001, 0.01))",
            "trainer.max_epochs=range(2, 10, 2)",
            "model/optimizer=choice(adam, sgd)",
            "model.net.dropout=range(0.0, 0.5, 0.25)",
            "data.batch_size=64",
            "model/optimizer=choice(adam, rmsprop)",  # the command line comes last and wins
        ]
    )
    assert space.distributions == {
        "model.optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
        "trainer.max_epochs": IntDistribution(2, 8, step=2),
        "model/optimizer": CategoricalDistribution(["adam", "rmsprop"]),
        "model.net.dropout": FloatDistribution(0.0, 0.25, step=0.25),
    }
    assert space.fixed == ["data.batch_size=64"]
    grid = grid_choices({k: v for k, v in space.distributions.items() if k != "model.optimizer.lr"})
    assert grid == {
        "trainer.max_epochs": [2, 4, 6, 8],
        "model/optimizer": ["adam", "rmsprop"],
        "model.net.dropout": [0.0, 0.25],
    }
    with pytest.raises(ValueError, match="`model.optimizer.lr` is continuous"):
        grid_choices({"model.optimizer.lr": space.distributions["model.optimizer.lr"]})
    # a trial's values go back to Hydra as overrides that parse to the same values
    assert format_override("model.net.conv_channels", [8, 16]) == "model.net.conv_channels=[8,16]"
    assert format_override("model/optimizer", "adam") == "model/optimizer='adam'"


def test_passwords_are_masked_in_printed_urls():
    assert (
        mask_url("postgresql+psycopg://litlab:s3cr@t@db.lan:5432/optuna")
        == "postgresql+psycopg://litlab:***@db.lan:5432/optuna"
    )
    assert mask_url("sqlite:///logs/optuna.db") == "sqlite:///logs/optuna.db"


def error_of_sweep(overrides, tmp_path, monkeypatch, capsys) -> str:
    """The error a sweep stops with, as Hydra prints it (status 1, no traceback)."""
    with pytest.raises(SystemExit):
        run_sweep(overrides, tmp_path / "sweep", monkeypatch)
    return capsys.readouterr().err


def test_unreachable_database_is_named_without_its_password(tmp_path, monkeypatch, capsys):
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://litlab:s3cret@127.0.0.1:9/optuna"  # nothing listens on port 9
    err = error_of_sweep([*SEARCH, f"hydra.sweeper.storage={url}"], tmp_path, monkeypatch, capsys)
    assert "Cannot reach the study database postgresql+psycopg://litlab:***@127.0.0.1:9/optuna" in err
    assert "start the database server, or fix hydra.sweeper.storage" in err
    assert "s3cret" not in err and "Traceback" not in err


def test_missing_database_driver_names_its_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pymysql", None)  # as if not installed
    err = error_of_sweep(
        [*SEARCH, "hydra.sweeper.storage=mysql+pymysql://u:pw@localhost/optuna"], tmp_path, monkeypatch, capsys
    )
    assert "needs the Python package `PyMySQL` (the pymysql driver), which is not installed" in err
    assert "pw@" not in err


def test_sqlite_file_in_a_missing_folder_is_named(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'study.db'}"
    err = error_of_sweep([*SEARCH, f"hydra.sweeper.storage={url}"], tmp_path, monkeypatch, capsys)
    assert f"The SQLite study file's folder {tmp_path / 'no' / 'such'} does not exist" in err
    assert "another process" not in err


def test_storage_written_by_another_optuna_version_is_refused(tmp_path, monkeypatch, capsys):
    db = tmp_path / "old.db"
    optuna.create_study(storage=f"sqlite:///{db}", study_name="old")
    with sqlite3.connect(db) as connection:  # what Optuna 3.0 left behind
        connection.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
        connection.execute("UPDATE version_info SET library_version = '3.0.0'")
    err = error_of_sweep(
        [*SEARCH, f"hydra.sweeper.storage=sqlite:///{db}", "hydra.sweeper.study_name=old"],
        tmp_path,
        monkeypatch,
        capsys,
    )
    assert f"The study storage sqlite:///{db} was written by another Optuna version" in err
    assert "set up by optuna 3.0.0" in err and "optuna storage upgrade" in err


def test_launcher_not_installed_names_its_package(tmp_path, monkeypatch, capsys):
    target = "hydra_plugins.hydra_rq_launcher.rq_launcher.RQLauncher"
    err = error_of_sweep([*SEARCH, f"hydra.launcher._target_={target}"], tmp_path, monkeypatch, capsys)
    assert f"The launcher {target} is not installed: `pip install 'hydra-rq-launcher>=1.4.0rc3,<1.5'`" in err


def test_storage_url_from_the_environment_stays_out_of_run_folders(tmp_path, monkeypatch):
    # The URL (a stand-in for one holding a password) reaches the sweep through ${oc.env:...} only.
    secret_db = tmp_path / "db" / "SECRET_MARKER.db"
    secret_db.parent.mkdir()
    monkeypatch.setenv("LITLAB_TEST_STORAGE", f"sqlite:///{secret_db}")
    run_sweep(
        [
            *PRUNED_SEARCH,
            "hydra/sweeper/sampler=grid",
            "hydra.sweeper.storage=${oc.env:LITLAB_TEST_STORAGE}",
            "extras.print_config=true",
        ],
        tmp_path / "sweep",
        monkeypatch,
    )
    trials = trials_by_state(f"sqlite:///{secret_db}", "samplers_compare")
    assert {state: len(t) for state, t in trials.items()} == {"COMPLETE": 1, "PRUNED": 1}
    leaks = [
        path for path in (tmp_path / "sweep").rglob("*") if path.is_file() and b"SECRET_MARKER" in path.read_bytes()
    ]
    assert leaks == []
    assert all("SECRET_MARKER" not in str(t.user_attrs) + str(t.system_attrs) for ts in trials.values() for t in ts)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_trials_run_by_other_processes_are_pruned(launcher, tmp_path, monkeypatch):
    # 2 learning rates x 2 dropouts on a grid, two workers in processes of the launcher's own.
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_sweep(
        [
            *PRUNED_SEARCH,
            "hydra/sweeper/sampler=grid",
            "model.net.dropout=choice(0.0,0.25)",
            f"hydra/launcher={launcher}",
            "hydra.sweeper.n_jobs=2",
            f"hydra.sweeper.storage={storage}",
        ],
        tmp_path / "sweep",
        monkeypatch,
    )
    trials = trials_by_state(storage, "samplers_compare")
    assert {state: len(t) for state, t in trials.items()} == {"COMPLETE": 2, "PRUNED": 2}
    assert all(t.params["model.optimizer.lr"] == pytest.approx(1e-5) for t in trials["PRUNED"])
    # stopped after the first of their 2 epochs, by the pruner's answer read from the shared storage
    assert all(list(t.intermediate_values) == [0] for t in trials["PRUNED"])
    assert all(list(t.intermediate_values) == [0, 1] for t in trials["COMPLETE"])
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for ts in trials.values() for t in ts}
    assert str(os.getpid()) not in workers
    table = pd.read_csv(tmp_path / "sweep" / "trials.csv")
    assert sorted(table.state) == ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED"]
    assert {p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()} >= {"0", "1", "2", "3", "workers"}


@pytest.mark.slow
def test_killed_worker_loses_no_trial_and_its_trial_is_retried(tmp_path):
    # Two sweep commands on one study, each a worker; one is killed in the middle of a trial. The other fails
    # the silent trial after the grace period (2 s), runs it again with the same parameters, and finishes
    # the study's 5 trials.
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = [
        *SEARCH[:-1],
        "trainer.max_epochs=3",
        "+trainer.limit_train_batches=25",
        "hydra.sweeper.study_name=kill",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.retry_failed=1",
    ]
    victim = start_sweep([*common, "hydra.sweeper.sampler.seed=0"], tmp_path / "a", tmp_path / "a.log")
    survivor = start_sweep([*common, "hydra.sweeper.sampler.seed=1"], tmp_path / "b", tmp_path / "b.log")

    def victims_running_trial():
        try:
            trials = trials_by_state(storage, "kill")
        except (KeyError, SQLAlchemyError):
            return None
        running = [t for t in trials.get("RUNNING", []) if t.user_attrs.get("worker", "").endswith(f":{victim.pid}")]
        return running[0] if running and trials.get("COMPLETE") else None

    try:
        wait_for(lambda: victims_running_trial() is not None, timeout=600, process=victim)
        killed = victims_running_trial()
        before = {t.number: t.value for t in trials_by_state(storage, "kill")["COMPLETE"]}
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=60)
    assert survivor.wait(timeout=900) == 0, (tmp_path / "b.log").read_text()[-3000:]

    study = optuna.load_study(study_name="kill", storage=storage)
    trials = study.get_trials()
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE
    # every trial finished before the kill is kept as it was, and the study holds its 5 finished trials
    assert {t.number: t.value for t in trials if t.number in before} == before
    assert len([t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]) == 5


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_silent_trial_is_failed_and_queued_again_with_its_parameters(kind, tmp_path):
    # The journal storage has no heartbeat of Optuna's: litlab's rule must treat it as the database does.
    spec = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else None
    liveness = Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1)
    storage = build_storage(spec, tmp_path, liveness)
    study = open_study(storage, "stale", ["maximize"])
    space = {"x": FloatDistribution(0, 1)}
    silent, alive = study.ask(space), study.ask(space)
    _, silent_id = study_and_trial_ids(storage, "stale", silent.number)
    _, alive_id = study_and_trial_ids(storage, "stale", alive.number)
    with heartbeat(storage, silent_id, 1):
        pass  # one beat, then the worker "dies"
    with heartbeat(storage, alive_id, 1):
        time.sleep(3.5)
        fail_stale_trials(study, storage, liveness)
        states = {t.number: t.state.name for t in study.get_trials()}
    assert states[silent.number] == "FAIL" and states[alive.number] == "RUNNING"
    retry = study.get_trials()[-1]
    assert retry.state.name == "WAITING" and retry.params == silent.params
    assert retry.system_attrs["failed_trial"] == silent.number
    # the next ask runs the retry, with the lost trial's parameters
    assert study.ask(space).params == silent.params
    assert not counts(study.get_trials()[silent.number])


@pytest.mark.slow
def test_three_workers_on_one_postgresql_study(postgres_url, tmp_path, monkeypatch):
    # Three joblib workers on one study in a real PostgreSQL server (tests/helpers/postgres.py), its URL
    # given through the environment only.
    monkeypatch.setenv("LITLAB_TEST_STORAGE", postgres_url)
    # joblib keeps its worker processes between calls: those an earlier test started lack the variable.
    get_reusable_executor().shutdown(wait=True)
    run_sweep(
        [
            *PRUNED_SEARCH,
            "model.net.dropout=choice(0.0,0.25,0.5)",
            "hydra/launcher=joblib",
            "hydra.sweeper.n_jobs=3",
            "hydra.sweeper.n_trials=6",
            "hydra.sweeper.study_name=postgres",
            "hydra.sweeper.storage=${oc.env:LITLAB_TEST_STORAGE}",
        ],
        tmp_path / "sweep",
        monkeypatch,
    )
    trials = optuna.load_study(study_name="postgres", storage=postgres_url).get_trials()
    finished = [t for t in trials if counts(t)]
    # the space's 6 parameter sets, each run once: a random draw of a set already run is skipped, not run
    assert len(finished) == 6 == len({tuple(sorted(t.params.items())) for t in finished})
    assert {t.state.name for t in finished} <= {"COMPLETE", "PRUNED"}
    assert all(t.user_attrs[LOST_REASON].startswith("skipped: ") for t in trials if not counts(t))
    assert all(t.state.name == "PRUNED" for t in finished if t.params["model.optimizer.lr"] < 1e-4)
    assert len({t.user_attrs["worker"] for t in finished}) >= 2  # several worker processes at once


# --- the worker loop at unit level: a tiny task (no training), a journal study, Hydra composing each trial ---

SPACE = {"x": FloatDistribution(0, 1), "mode": CategoricalDistribution(["ok", "raise", "prune", "nan", "text"])}


def plan_for(sweep_dir: Path | str = "/tmp/sweep", **changes) -> SweepPlan:
    settings = {
        "study_name": "tiny",
        "directions": ["minimize"],
        "n_trials": 3,
        "first_number": 0,
        "deadline": None,
        "distributions": SPACE,
        "fixed_overrides": [],
        "sweep_dir": str(sweep_dir),
        "monitor": None,
        "max_failure_rate": 1.0,
        "liveness": Liveness(heartbeat_interval=60),
        "n_workers": 1,
        "threads_per_worker": 1,
    }
    return SweepPlan(**{**settings, **changes})


def bare_worker(config: dict | None = None, **plan) -> TrialWorker:
    """A worker whose config is `config`, without Hydra (for the parts that only read the config)."""
    worker = TrialWorker(lambda cfg: 0.0, None, OmegaConf.create(config or {}))
    worker.plan = plan_for(**plan)
    return worker


def finished(state: TrialState, number_of_values: int = 1, **user_attrs) -> optuna.trial.FrozenTrial:
    values = [0.5] * number_of_values if state == TrialState.COMPLETE else None
    return create_trial(
        state=state, values=values, params={"x": 0.5}, distributions={"x": SPACE["x"]}, user_attrs=user_attrs
    )


def in_memory_study(*trials: optuna.trial.FrozenTrial) -> optuna.Study:
    study = optuna.create_study(study_name="tiny")
    for trial in trials:
        study.add_trial(trial)
    return study


def failed_job(error: Exception) -> JobReturn:
    ret = JobReturn(status=JobStatus.FAILED)
    ret.return_value = error
    return ret


def done_job(value) -> JobReturn:
    ret = JobReturn(status=JobStatus.COMPLETED)
    ret.return_value = value
    return ret


@pytest.mark.parametrize(
    ("ret", "n_directions", "expected"),
    [
        (done_job(0.25), 1, (TrialState.COMPLETE, [0.25], "")),
        (done_job(torch.tensor(0.5)), 1, (TrialState.COMPLETE, [0.5], "")),  # a logged metric is a tensor
        (done_job((0.25, 3)), 2, (TrialState.COMPLETE, [0.25, 3.0], "")),
        (
            done_job(Pruned("Trial was pruned at epoch 1.")),
            1,
            (TrialState.PRUNED, None, "Trial was pruned at epoch 1."),
        ),
        (failed_job(ValueError("CUDA out of memory")), 1, (TrialState.FAIL, None, "ValueError: CUDA out of memory")),
        (done_job(None), 1, (TrialState.FAIL, None, "the run returned None, not a number (is optimized_metric set?)")),
        (
            done_job("done"),
            1,
            (TrialState.FAIL, None, "the run returned 'done', not a number (is optimized_metric set?)"),
        ),
        (done_job(0.5), 2, (TrialState.FAIL, None, "the run returned 0.5, not a number (is optimized_metric set?)")),
        (done_job([0.5]), 2, (TrialState.FAIL, None, "the run returned 1 values for 2 objectives")),
        (done_job((1, 2, 3)), 2, (TrialState.FAIL, None, "the run returned 3 values for 2 objectives")),
        (
            done_job(float("nan")),
            1,
            (TrialState.FAIL, None, "the run returned [nan]: the objective is not finite (diverged?)"),
        ),
        (
            done_job((0.5, float("inf"))),
            2,
            (TrialState.FAIL, None, "the run returned [0.5, inf]: the objective is not finite (diverged?)"),
        ),
    ],
)
def test_worker_judges_a_finished_job(ret, n_directions, expected):
    assert trial_outcome(ret, n_directions) == expected


def test_worker_task_turns_a_prune_into_a_return_value_and_lets_errors_through():
    def pruned(cfg):
        raise optuna.TrialPruned("pruned at epoch 2")

    def broken(cfg):
        raise KeyError("model")

    outcome = worker_module.prunable(pruned)(None)
    assert isinstance(outcome, Pruned) and outcome.reason == "pruned at epoch 2"
    assert worker_module.prunable(lambda cfg: 0.75)(None) == 0.75
    with pytest.raises(KeyError, match="model"):
        worker_module.prunable(broken)(None)


def test_worker_tell_accepts_a_grid_that_ran_out_and_nothing_else():
    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [0.0, 1.0]}))
    first, last = study.ask(), study.ask()
    tell(study, first, TrialState.COMPLETE, [1.0])
    # the grid sampler stops the study after its last point, which Optuna refuses outside optimize()
    tell(study, last, TrialState.COMPLETE, [2.0])
    assert [t.value for t in study.trials] == [1.0, 2.0]

    class BrokenSampler(optuna.samplers.RandomSampler):
        def after_trial(self, study, trial, state, values):
            raise RuntimeError("the sampler broke")

    study = optuna.create_study(sampler=BrokenSampler())
    with pytest.raises(RuntimeError, match="the sampler broke"):
        tell(study, study.ask(), TrialState.COMPLETE, [1.0])


def test_worker_progress_counts_the_study_and_this_commands_share():
    study = in_memory_study(
        finished(TrialState.COMPLETE),  # 0: an earlier command's
        finished(TrialState.FAIL, **{FAIL_REASON: "old failure"}),  # 1: an earlier command's failure
        finished(TrialState.COMPLETE),  # 2: this command's from here on
        finished(TrialState.RUNNING),
        finished(TrialState.FAIL, **{LOST_REASON: "interrupted (Ctrl-C)"}),  # lost: does not count
        finished(TrialState.FAIL, **{FAIL_REASON: "ValueError: NaN loss"}),
        finished(TrialState.PRUNED),
        finished(TrialState.WAITING),
    )
    progress = bare_worker(first_number=2)._progress(study)
    assert progress == Progress(
        counted=5, running=1, sweep_counted=3, sweep_failed=1, last_failure="ValueError: NaN loss"
    )
    assert bare_worker(first_number=0)._progress(study) == Progress(5, 1, 5, 2, "ValueError: NaN loss")


@pytest.mark.parametrize(
    ("n_trials", "rate", "progress", "stops"),
    [
        # 10 planned, 2 of the study's 4 counted trials were this command's: 8 to plan for, 2 failures allowed
        (10, 0.25, Progress(counted=4, sweep_counted=2, sweep_failed=2), False),
        (10, 0.25, Progress(counted=4, sweep_counted=2, sweep_failed=3), True),
        # no target: judged against the trials so far
        (None, 0.5, Progress(counted=6, sweep_counted=4, sweep_failed=2), False),
        (None, 0.5, Progress(counted=6, sweep_counted=4, sweep_failed=3), True),
        # more trials counted than planned: judged against those
        (4, 0.5, Progress(counted=6, sweep_counted=6, sweep_failed=3), False),
        (4, 0.5, Progress(counted=6, sweep_counted=6, sweep_failed=4), True),
        # 8 of 12 counted trials were earlier commands': 12 to plan for, 3 failures allowed
        (20, 0.25, Progress(counted=12, sweep_counted=4, sweep_failed=4), True),
        (20, 0.25, Progress(counted=12, sweep_counted=4, sweep_failed=3), False),
        (10, 0.0, Progress(counted=1, sweep_counted=1, sweep_failed=1), True),
        (10, 0.0, Progress(counted=1, sweep_counted=1, sweep_failed=0), False),
    ],
)
def test_worker_stops_when_more_trials_fail_than_max_failure_rate_allows(n_trials, rate, progress, stops):
    worker = bare_worker(n_trials=n_trials, max_failure_rate=rate)
    progress.last_failure = "ValueError: NaN loss"
    if not stops:
        worker._check_failures(progress)
        return
    with pytest.raises(TooManyFailures) as err:
        worker._check_failures(progress)
    assert str(err.value) == (
        f"{progress.sweep_failed} of {progress.sweep_counted} trials failed, more than max_failure_rate={rate} "
        "allows (raise hydra.sweeper.max_failure_rate to tolerate failures); the last: ValueError: NaN loss"
    )


def test_worker_drops_a_trial_asked_for_after_others_made_up_n_trials():
    study = in_memory_study(
        finished(TrialState.COMPLETE),
        finished(TrialState.FAIL, **{LOST_REASON: "lost"}),  # does not count
        finished(TrialState.RUNNING),
    )
    mine = study.ask()  # trial 3
    later = study.ask()  # another worker's, asked after mine: not ahead of it
    assert not bare_worker(n_trials=3)._surplus(study, mine.number)
    assert bare_worker(n_trials=2)._surplus(study, mine.number)
    assert bare_worker(n_trials=3)._surplus(study, later.number)
    assert bare_worker(n_trials=1)._surplus(study, later.number)
    assert not bare_worker(n_trials=None)._surplus(study, later.number)


def test_worker_overrides_give_the_trial_its_parameters_callback_and_folder():
    worker = bare_worker({"optimized_metric": "val/loss"}, fixed_overrides=["data.batch_size=64"], sweep_dir="/s d")
    study = optuna.create_study(study_name="tiny")
    study.enqueue_trial({"x": 0.25, "mode": "ok"})
    trial = study.ask(SPACE)
    callback = {
        "_target_": "litlab.callbacks.optuna_trial.OptunaTrialCallback",
        "study_name": "tiny",
        "trial_number": 0,
        "monitor": "val/loss",  # the run's optimized_metric unless the sweep names a monitor
        "pruner": "${hydra:sweeper.pruner}",
    }
    expected = [
        "data.batch_size=64",
        "x=0.25",
        "mode='ok'",
        f"++callbacks.optuna_trial={worker_module.quote(callback)}",
    ]
    assert worker._overrides(trial) == [*expected, "hydra.sweep.dir='/s d'"]
    worker.plan.monitor = "val/acc"
    assert f"{worker_module.quote({**callback, 'monitor': 'val/acc'})}" in worker._overrides(trial)[3]


@pytest.fixture
def space_functions(monkeypatch):
    """Two custom search spaces in litlab.search.conditional (the whitelisted module): one returning overrides, one
    suggesting parameters that are config keys themselves."""

    def layers(config, trial, width=8):
        depth = trial.suggest_int("depth", 1, 3)
        return {"layers": [width] * depth}

    def suggest_y(config, trial):
        trial.suggest_float("y", 0.0, 1.0)

    monkeypatch.setattr(conditional, "layers", layers, raising=False)
    monkeypatch.setattr(conditional, "suggest_y", suggest_y, raising=False)
    # the whitelist checks where a function was defined: these were, in this file
    monkeypatch.setattr(worker_module, "SPACE_WHITELIST", (*worker_module.SPACE_WHITELIST, f"{__name__}.*"))


def test_worker_overrides_from_a_custom_search_space(space_functions):
    worker = bare_worker(
        custom_search_space="litlab.search.conditional.layers",
        custom_search_space_kwargs={"width": 4},
        hydra_text={"layers"},  # the space's value replaces a choice over lists: written as a value, not as text
    )
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5, "mode": "ok", "depth": 2})
    trial = study.ask(SPACE)
    # the space's own parameters stay in the trial; its overrides reach the run
    assert worker._overrides(trial)[:3] == ["x=0.5", "mode='ok'", "layers=[4,4]"]
    assert trial.params["depth"] == 2
    worker.plan.custom_search_space, worker.plan.custom_search_space_kwargs = "litlab.search.conditional.suggest_y", {}
    study.enqueue_trial({"x": 0.5, "mode": "ok", "y": 0.125})
    trial = study.ask(SPACE)
    assert worker._overrides(trial)[:3] == ["x=0.5", "mode='ok'", "y=0.125"]


def test_worker_custom_search_space_outside_litlab_spaces_is_refused():
    worker = bare_worker(custom_search_space="os.remove", custom_search_space_kwargs={"path": "/tmp/victim"})
    with pytest.raises(Exception, match="whitelist|allowed|not in"):
        worker._overrides(optuna.create_study().ask(SPACE))


def first_draw(sampler: optuna.samplers.BaseSampler) -> float:
    return optuna.create_study(sampler=sampler).ask({"x": SPACE["x"]}).params["x"]


def test_worker_sampler_seed_is_its_own_per_command_and_worker():
    config = {
        "seed": 7,
        "hydra": {"sweeper": {"sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": "${seed}"}}},
    }
    # the first worker of a command on a new study keeps the configured seed: its first trials are reproduced
    assert first_draw(bare_worker(config, first_number=0)._sampler(0)) == first_draw(optuna.samplers.RandomSampler(7))
    # every other worker, and every worker of a command that found trials in the study, draws on its own
    draws = [first_draw(bare_worker(config, first_number=n)._sampler(k)) for n in (0, 3, 4) for k in (0, 1, 5)]
    assert len(set(draws)) == len(draws)
    # and the same each time
    assert first_draw(bare_worker(config, first_number=3)._sampler(1)) == draws[4]
    unseeded = bare_worker(
        {"hydra": {"sweeper": {"sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": None}}}}
    )
    assert isinstance(unseeded._sampler(3), optuna.samplers.RandomSampler)


def test_worker_grid_sampler_gets_the_sweeps_grid():
    grid_cfg = {"_target_": "optuna.samplers.GridSampler", "_partial_": True, "seed": 0}
    worker = bare_worker({"hydra": {"sweeper": {"sampler": grid_cfg}}}, grid={"x": [0.0, 0.5, 1.0]})
    study = optuna.create_study(sampler=worker._sampler(1))
    assert sorted(study.ask({"x": SPACE["x"]}).params["x"] for _ in range(3)) == [0.0, 0.5, 1.0]


def test_worker_storage_is_resolved_in_its_own_process(tmp_path, monkeypatch):
    monkeypatch.setenv("LITLAB_TEST_STORAGE", "sqlite:///study.db")
    worker = bare_worker({"hydra": {"sweeper": {"storage": "${oc.env:LITLAB_TEST_STORAGE}"}}})
    assert worker._storage_spec() == "sqlite:///study.db"
    journal = {
        "_target_": "optuna.storages.JournalStorage",
        "log_storage": {
            "_target_": "optuna.storages.journal.JournalFileBackend",
            "file_path": "${paths.log_dir}/study.journal",
        },
    }
    worker = bare_worker({"paths": {"log_dir": str(tmp_path)}, "hydra": {"sweeper": {"storage": journal}}})
    spec = worker._storage_spec()
    assert type(spec) is dict and spec["log_storage"]["file_path"] == f"{tmp_path}/study.journal"
    assert bare_worker({"hydra": {"sweeper": {"storage": None}}})._storage_spec() is None


@pytest.fixture
def torch_threads():
    """torch's thread count, put back after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def machine(monkeypatch):
    """A machine of 8 cores and `gpus` CUDA devices (set by the test), without OMP_NUM_THREADS."""
    box = types.SimpleNamespace(gpus=0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: box.gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: box.gpus)
    return box


@pytest.mark.parametrize(
    ("env", "threads_per_worker", "n_workers", "threads"),
    [
        (None, 3, 2, 3),  # as the sweep says
        ("2", None, 2, 2),  # OMP_NUM_THREADS, as the user set it
        (None, None, 2, 4),  # else the cores shared out
        (None, None, 3, 2),
        ("two", None, 4, 2),  # not a number: ignored
        ("", None, 4, 2),
        (None, None, 16, 1),  # at least one
    ],
)
def test_worker_on_cpu_takes_its_share_of_threads(
    env, threads_per_worker, n_workers, threads, machine, monkeypatch, torch_threads
):
    if env is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    worker = bare_worker(
        {"trainer": {"accelerator": "auto", "devices": 1}}, threads_per_worker=threads_per_worker, n_workers=n_workers
    )
    assert worker._place(0) == []
    assert torch.get_num_threads() == threads


def test_worker_counts_the_cores_it_may_use(monkeypatch, torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("needs two cores")
    worker = bare_worker(threads_per_worker=None, n_workers=1)
    try:
        os.sched_setaffinity(0, {min(cores)})  # as under taskset or a SLURM allocation
        worker._place(0)
    finally:
        os.sched_setaffinity(0, cores)
    assert torch.get_num_threads() == 1
    # where the platform cannot tell (macOS), all the machine's cores
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    worker._place(0)
    assert torch.get_num_threads() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    worker._place(0)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("trainer", "n_workers", "index", "placed"),
    [
        ({"accelerator": "gpu", "devices": 1}, 2, 7, ["trainer.devices=[1]"]),  # round-robin over 3 GPUs
        ({"accelerator": "auto", "devices": "auto"}, 4, 2, ["trainer.devices=[2]"]),
        ({"accelerator": "cuda", "devices": 1}, 2, 0, ["trainer.devices=[0]"]),
        ({"accelerator": "gpu", "devices": 1}, 1, 0, []),  # one worker: Lightning picks its device
        ({"accelerator": "gpu", "devices": 2}, 2, 1, []),  # a trial of several GPUs keeps its own setting
        ({"accelerator": "cpu", "devices": 1}, 2, 1, []),
        (None, 2, 1, []),
    ],
)
def test_worker_on_gpus_takes_one_of_its_own(trainer, n_workers, index, placed, machine, torch_threads):
    machine.gpus = 3
    torch.set_num_threads(5)
    worker = bare_worker({"trainer": trainer} if trainer else {}, n_workers=n_workers, threads_per_worker=2)
    assert worker._place(index) == placed
    # only a CPU worker limits its threads
    assert torch.get_num_threads() == (2 if trainer is None or trainer["accelerator"] == "cpu" else 5)


def test_worker_without_gpus_runs_on_cpu_even_if_the_config_asks_for_them(machine, torch_threads):
    worker = bare_worker({"trainer": {"accelerator": "auto", "devices": 1}}, n_workers=2, threads_per_worker=3)
    assert worker._place(1) == []
    assert torch.get_num_threads() == 3


TINY_CONFIG = """
defaults:
  - override hydra/sweeper: litlab_optuna
  - override hydra/sweeper/sampler: random
  - override hydra/job_logging: none
  - override hydra/hydra_logging: none
  - _self_

x: 0.0
mode: ok
y: 0.0
layers: []
net: {depth: 1, widths: []}
data: {folds: null, fold: null}
label: none
optimized_metric: val/loss
callbacks: {}

hydra:
  output_subdir: null
  sweeper:
    direction: minimize
    study_name: tiny
    sampler:
      seed: 0
"""


class Tiny:
    """A sweep of a tiny task in tmp_path: each trial is composed and run by Hydra as in a real sweep, and the
    task returns its x (or raises, prunes, returns NaN or text, as its `mode` says)."""

    def __init__(self, root: Path) -> None:
        self.sweep_dir = root / "sweep"
        self.seen: list[dict] = []  # what the task saw, one entry per trial it ran
        self.sleeps: list[float] = []
        self.while_waiting = lambda: None  # what other workers do while this one waits

    def task(self, cfg) -> float | str:
        hydra_cfg = HydraConfig.get()
        study = optuna.load_study(study_name="tiny", storage=build_storage(None, self.sweep_dir))
        self.seen.append(
            {
                "x": cfg.x,
                "y": cfg.y,
                "layers": list(cfg.layers),
                "num": hydra_cfg.job.num,
                "dir": hydra_cfg.runtime.output_dir,
                "callback": OmegaConf.to_container(cfg.callbacks.optuna_trial, resolve=True),
                "beating": HEARTBEAT_ATTR in study.trials[hydra_cfg.job.num].system_attrs,
            }
        )
        if cfg.mode == "raise":
            raise ValueError(f"cannot reach postgresql://litlab:s3cret@db/optuna with x={cfg.x}")
        if cfg.mode == "prune":
            raise optuna.TrialPruned(f"pruned at x={cfg.x}")
        if cfg.mode == "nan":
            return float("nan")
        if cfg.mode == "text":
            return "done"
        return cfg.x

    def study(self, directions=("minimize",)) -> optuna.Study:
        return open_study(build_storage(None, self.sweep_dir), "tiny", list(directions))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        assert len(self.sleeps) < 5, "the worker kept waiting"
        self.while_waiting()

    def worker(self, task=None, overrides=(), **plan) -> TrialWorker:
        hydra = GlobalHydra.instance().hydra
        config = hydra.compose_config("config", [*overrides], run_mode=RunMode.MULTIRUN)
        context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(config))
        worker = TrialWorker(task or self.task, context, config)
        worker.plan = plan_for(self.sweep_dir, **plan)
        return worker

    def run(self, worker: TrialWorker, index: int = 0) -> dict[str, int]:
        """Runs `worker` as the launcher runs worker job `index`."""
        job = worker.hydra_context.config_loader.load_sweep_config(
            worker.config, [f"hydra.sweep.dir={self.sweep_dir}", f"hydra.sweep.subdir=workers/{index}"]
        )
        with open_dict(job):
            job.hydra.job.num = index
        HydraConfig.instance().set_config(job)
        return worker(job)


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(TINY_CONFIG)
    sweep = Tiny(tmp_path)
    monkeypatch.setattr(worker_module, "time", types.SimpleNamespace(time=time.time, sleep=sweep.sleep))
    rounds = []

    def fail_stale(*args):  # once per round of the loop: a worker that loops on and on fails the test
        rounds.append(args)
        assert len(rounds) < 50, "the worker kept looping"
        return fail_stale_trials(*args)

    monkeypatch.setattr(worker_module, "fail_stale_trials", fail_stale)
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), job_name="tiny"):
        yield sweep


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("optuna-heartbeat")]


def test_worker_failing_trials_neither_stop_the_sweep_nor_lose_its_results(tiny, caplog):
    study = tiny.study()
    for x, mode in [(0.2, "ok"), (0.9, "raise"), (0.3, "prune"), (0.4, "nan"), (0.5, "text"), (0.6, "ok")]:
        study.enqueue_trial({"x": x, "mode": mode})
    caplog.set_level("INFO", logger="litlab.search.worker")
    ran = tiny.run(tiny.worker(n_trials=6))

    assert ran == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 3}
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert [t.value for t in trials] == [0.2, None, None, None, None, 0.6]
    assert [t.user_attrs.get(FAIL_REASON) for t in trials] == [
        None,
        "ValueError: cannot reach postgresql://litlab:***@db/optuna with x=0.9",  # no password in the study
        None,
        "the run returned [nan]: the objective is not finite (diverged?)",
        "the run returned 'done', not a number (is optimized_metric set?)",
        None,
    ]
    assert all(counts(t) for t in trials)
    assert {t.user_attrs["worker"] for t in trials} == {f"{socket.gethostname()}:{os.getpid()}"}
    # each trial ran as its own Hydra job, numbered and placed by its trial number, beating while it ran
    assert [(s["x"], s["num"]) for s in tiny.seen] == [(0.2, 0), (0.9, 1), (0.3, 2), (0.4, 3), (0.5, 4), (0.6, 5)]
    assert [s["dir"] for s in tiny.seen] == [str(tiny.sweep_dir / str(n)) for n in range(6)]
    assert all(s["beating"] for s in tiny.seen) and heartbeat_threads() == []
    assert tiny.seen[0]["callback"] == {
        "_target_": "litlab.callbacks.optuna_trial.OptunaTrialCallback",
        "study_name": "tiny",
        "trial_number": 0,
        "monitor": "val/loss",
        "pruner": None,
    }
    messages = [r.getMessage() for r in caplog.records if r.name == "litlab.search.worker"]
    assert "Trial 0: x=0.2 mode='ok'" in messages
    assert "Trial 0 complete: [0.2]" in messages
    assert "Trial 1 failed: ValueError: cannot reach postgresql://litlab:***@db/optuna with x=0.9" in messages
    assert "Trial 2 pruned: pruned at x=0.3" in messages
    assert tiny.sleeps == []


def test_worker_stops_at_too_many_failures_keeping_what_finished(tiny):
    study = tiny.study()
    for x, mode in [(0.2, "ok"), (0.9, "raise"), (0.3, "ok")]:
        study.enqueue_trial({"x": x, "mode": mode})
    with pytest.raises(TooManyFailures, match="1 of 2 trials failed, more than max_failure_rate=0.0 allows"):
        tiny.run(tiny.worker(n_trials=3, max_failure_rate=0.0))
    assert [(t.state.name, t.value) for t in study.get_trials()] == [
        ("COMPLETE", 0.2),
        ("FAIL", None),
        ("WAITING", None),
    ]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_worker_interrupted_closes_its_trial_as_lost_and_keeps_the_finished_ones(stop, tiny):
    study = tiny.study()
    for x in (0.2, 0.3, 0.4):
        study.enqueue_trial({"x": x, "mode": "ok"})

    def task(cfg):
        if cfg.x == 0.3:
            raise stop()
        return cfg.x

    with pytest.raises(stop):
        tiny.run(tiny.worker(task, n_trials=3))
    trials = study.get_trials()
    assert [(t.state.name, t.value) for t in trials] == [("COMPLETE", 0.2), ("FAIL", None), ("WAITING", None)]
    assert trials[1].user_attrs[LOST_REASON] == "interrupted (Ctrl-C)" and not counts(trials[1])
    assert heartbeat_threads() == []


def test_worker_a_trial_whose_config_cannot_be_composed_fails_alone(tiny, space_functions, monkeypatch):
    def space(config, trial):
        return {"no_such_key": 1} if trial.params["mode"] == "raise" else {}

    monkeypatch.setattr(conditional, "broken", space, raising=False)
    study = tiny.study()
    for x, mode in [(0.2, "ok"), (0.9, "raise"), (0.3, "ok")]:
        study.enqueue_trial({"x": x, "mode": mode})
    ran = tiny.run(tiny.worker(n_trials=3, custom_search_space="litlab.search.conditional.broken"))
    assert ran == {"COMPLETE": 2, "PRUNED": 0, "FAIL": 1}
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[1].user_attrs[FAIL_REASON].startswith("ConfigCompositionException: ")
    assert "no_such_key" in trials[1].user_attrs[FAIL_REASON]


def test_worker_custom_search_space_reaches_the_run(tiny, space_functions):
    study = tiny.study()
    study.enqueue_trial({"x": 0.2, "mode": "ok", "depth": 3})
    tiny.run(tiny.worker(n_trials=1, custom_search_space="litlab.search.conditional.layers"))
    assert tiny.seen[0]["layers"] == [8, 8, 8] and study.trials[0].params["depth"] == 3
    study.enqueue_trial({"x": 0.2, "mode": "ok", "y": 0.75})
    tiny.run(tiny.worker(n_trials=2, custom_search_space="litlab.search.conditional.suggest_y"))
    assert tiny.seen[1]["y"] == 0.75
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE"]


CHOSEN = {
    "[8,16]": [8, 16],
    "[16,32]": [16, 32],
    "{depth:2,widths:[4]}": {"depth": 2, "widths": [4]},
    "{depth:3,widths:[4,8]}": {"depth": 3, "widths": [4, 8]},
}


@pytest.mark.parametrize("sampler", ["optuna.samplers.RandomSampler", "optuna.samplers.GridSampler"])
def test_worker_choices_over_lists_and_dicts_reach_the_trial_as_lists_and_dicts(sampler, tiny):
    space = parse_search_space(
        [
            "layers=choice([8,16],[16,32])",
            "net=choice({depth:2,widths:[4]},{depth:3,widths:[4,8]})",
            "label=choice('[8,16]',plain)",
        ]
    )
    grid = grid_choices(space.distributions) if sampler.endswith("GridSampler") else None
    overrides = [f"hydra.sweeper.sampler._target_={sampler}", f"+hydra.sweeper.sampler._partial_={grid is not None}"]
    seen = []

    def task(cfg):
        seen.append((OmegaConf.to_container(cfg.layers), OmegaConf.to_container(cfg.net), cfg.label))
        return 0.0

    worker = tiny.worker(
        task, overrides, n_trials=8, distributions=space.distributions, hydra_text=space.hydra_text, grid=grid
    )
    study = tiny.study()
    tiny.run(worker)
    # every point once: a random draw of a point already run is skipped, not run
    params = [t.params for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(params) == 8
    assert seen == [(CHOSEN[p["layers"]], CHOSEN[p["net"]], p["label"]) for p in params]
    assert sorted(map(str, seen)) == sorted(
        str((layers, net, label))
        for layers in ([8, 16], [16, 32])
        for net in ({"depth": 2, "widths": [4]}, {"depth": 3, "widths": [4, 8]})
        for label in ("[8,16]", "plain")
    )


def test_worker_multi_objective_trials_tell_every_value(tiny):
    study = tiny.study(["minimize", "maximize"])
    study.enqueue_trial({"x": 0.25, "mode": "ok"})
    tiny.run(tiny.worker(lambda cfg: (cfg.x, 1 - cfg.x), n_trials=1, directions=["minimize", "maximize"]))
    assert study.trials[0].values == [0.25, 0.75]


def test_worker_stops_when_the_study_holds_n_trials_even_from_before(tiny):
    study = tiny.study()
    for _ in range(3):
        study.add_trial(finished(TrialState.COMPLETE))
    # a second command with a smaller target: nothing to run, nothing to wait for
    assert tiny.run(tiny.worker(n_trials=2)) == {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    assert tiny.run(tiny.worker(n_trials=3)) == {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
    assert len(study.trials) == 3 and tiny.sleeps == []
    study.enqueue_trial({"x": 0.1, "mode": "ok"})
    assert tiny.run(tiny.worker(n_trials=4)) == {"COMPLETE": 1, "PRUNED": 0, "FAIL": 0}


@pytest.fixture
def clock(monkeypatch, tiny):
    """The worker's time.time(), moved on 10 s by each trial the task runs."""
    now = [1_000_000.0]
    calls = []

    def time_now():
        calls.append(now[0])
        assert len(calls) < 100, "the worker kept looking at the clock"
        return now[0]

    monkeypatch.setattr(worker_module, "time", types.SimpleNamespace(time=time_now, sleep=tiny.sleep))
    return now


@pytest.mark.parametrize(("budget", "trials"), [(25, 3), (20, 2), (0, 0)])
def test_worker_starts_no_trial_after_the_deadline(budget, trials, tiny, clock, caplog):
    def task(cfg):
        clock[0] += 10
        return cfg.x

    study = tiny.study()
    caplog.set_level("INFO", logger="litlab.search.worker")
    worker = tiny.worker(task, n_trials=None, deadline=clock[0] + budget, max_failure_rate=0.0)
    assert tiny.run(worker)["COMPLETE"] == trials
    assert len(study.trials) == trials
    assert "Time budget spent: this worker starts no new trial." in caplog.messages


def add_running(study: optuna.Study, started: float, beat: float) -> int:
    """A trial another worker runs (started then, last beating then); returns its number."""
    trial = create_trial(state=TrialState.RUNNING, params={"x": 0.7, "mode": "ok"}, distributions=SPACE)
    trial.datetime_start = datetime.fromtimestamp(started)
    trial.system_attrs = {HEARTBEAT_ATTR: beat}
    study.add_trial(trial)
    return len(study.trials) - 1


@pytest.fixture
def asks(monkeypatch):
    """Counts Study.ask; a worker that asks on and on fails the test. `before_ask` runs before each."""
    box = types.SimpleNamespace(count=0, before_ask=lambda study: None)
    ask = optuna.Study.ask

    def counted(self, *args, **kwargs):
        box.count += 1
        assert box.count < 10, "the worker kept asking for trials"
        box.before_ask(self)
        return ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", counted)
    return box


def test_worker_waits_while_the_last_trials_run_elsewhere(tiny, asks):
    study = tiny.study()
    study.add_trial(finished(TrialState.COMPLETE))
    now = time.time()
    others = [add_running(study, now, now), add_running(study, now, now)]
    tiny.while_waiting = lambda: study.tell(others[0], 0.5)  # one of them finishes meanwhile
    ran = tiny.run(tiny.worker(n_trials=2, liveness=Liveness(heartbeat_interval=60)))
    assert ran == {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0} and asks.count == 0
    assert tiny.sleeps == [5.0]  # it looks again every 5 s at most
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE", "RUNNING"]


def test_worker_replaces_a_trial_lost_elsewhere_with_its_retry(tiny, asks, caplog):
    study = tiny.study()
    study.add_trial(finished(TrialState.COMPLETE))
    now = time.time()
    lost = add_running(study, now - 100, now)
    storage = build_storage(None, tiny.sweep_dir)

    def its_worker_dies():
        storage.set_trial_system_attr(study.trials[lost]._trial_id, HEARTBEAT_ATTR, now - 100)

    tiny.while_waiting = its_worker_dies
    caplog.set_level("INFO", logger="litlab.search.worker")
    liveness = Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1)
    ran = tiny.run(tiny.worker(n_trials=2, liveness=liveness))
    assert ran == {"COMPLETE": 1, "PRUNED": 0, "FAIL": 0} and tiny.sleeps == [1]
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[2].params == trials[1].params and trials[2].system_attrs["failed_trial"] == lost
    assert "Trial 2 (retry of 1): x=0.7 mode='ok'" in caplog.messages


def test_worker_drops_the_trial_it_got_after_another_worker_made_up_n_trials(tiny, asks):
    study = tiny.study()
    study.add_trial(finished(TrialState.COMPLETE))
    now = time.time()
    other = []

    def another_worker_asks_first(asking):
        if not other:
            other.append(add_running(study, now, now))

    asks.before_ask = another_worker_asks_first
    tiny.while_waiting = lambda: study.tell(other[0], 0.5)
    ran = tiny.run(tiny.worker(n_trials=2))
    assert ran == {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0} and tiny.seen == []
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert trials[2].user_attrs[LOST_REASON] == "not run: the study reached n_trials meanwhile"
    assert tiny.sleeps == [5.0]


def test_worker_skips_a_sampled_trial_whose_parameters_another_trial_holds(tiny, caplog):
    study = tiny.study()
    worker = tiny.worker(n_trials=2)
    # an earlier command ran the very parameters this worker's sampler draws first
    first = optuna.create_study(sampler=worker._sampler(0)).ask(SPACE).params
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, params=first, distributions=SPACE))
    caplog.set_level("INFO", logger="litlab.search.worker")
    ran = tiny.run(worker)
    trials = study.get_trials()
    assert [t.state.name for t in trials[:2]] == ["COMPLETE", "FAIL"] and len(trials) == 3
    assert trials[1].params == first and trials[1].user_attrs[LOST_REASON] == (
        "skipped: trial 0 has the same parameters"
    )
    assert not counts(trials[1]) and trials[2].params != first
    # the repeat never ran; the next draw did, and made up the study's 2 trials
    assert [s["num"] for s in tiny.seen] == [2] and sum(ran.values()) == 1
    assert any(m.startswith("Trial 1 skipped: trial 0 has the same parameters (x=") for m in caplog.messages)


def test_worker_in_a_discrete_space_runs_a_free_set_for_a_repeat_and_stops_when_all_ran(tiny):
    space = {"mode": CategoricalDistribution(["ok", "prune"]), "x": CategoricalDistribution([0.25, 0.5])}
    study = tiny.study()
    for params in ({"mode": "ok", "x": 0.25}, {"mode": "prune", "x": 0.5}):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, params=params, distributions=space))
    tiny.run(tiny.worker(n_trials=10, distributions=space))
    ran = [(s["x"], s["num"]) for s in tiny.seen]
    evaluated = [tuple(sorted(t.params.items())) for t in study.get_trials() if counts(t)]
    # each of the 4 sets once, though the target of 10 is out of reach, and every repeat followed by a free set
    assert len(evaluated) == 4 == len(set(evaluated)) and len(ran) == 2
    skipped = [t for t in study.get_trials() if LOST_REASON in t.user_attrs]
    assert all(t.user_attrs[LOST_REASON].startswith("skipped: trial ") for t in skipped) and len(skipped) <= 2


def test_worker_runs_a_trials_folds_in_order_and_scores_their_mean(tiny):
    study = tiny.study()
    for x, mode in [(0.2, "ok"), (0.4, "raise"), (0.6, "prune")]:
        study.enqueue_trial({"x": x, "mode": mode})
    ran_folds = []

    def task(cfg):
        ran_folds.append((cfg.x, cfg.data.folds, cfg.data.fold, "optuna_trial" in cfg.callbacks))
        if cfg.mode == "prune":
            raise optuna.TrialPruned("pruned in its first fold")
        if cfg.mode == "raise" and cfg.data.fold == 1:
            raise ValueError("fold 1 broke")
        return cfg.x + cfg.data.fold

    assert tiny.run(tiny.worker(task, n_trials=3, folds=3)) == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1}
    # every fold of a trial while they complete, the first alone reporting to the trial (the pruner's view)
    assert ran_folds == [
        (0.2, 3, 0, True),
        (0.2, 3, 1, False),
        (0.2, 3, 2, False),
        (0.4, 3, 0, True),
        (0.4, 3, 1, False),
        (0.6, 3, 0, True),
    ]
    complete, failed, pruned = study.get_trials()
    assert complete.state == TrialState.COMPLETE and complete.value == pytest.approx(1.2)
    assert complete.user_attrs["fold_values"] == [[0.2], [pytest.approx(1.2)], [pytest.approx(2.2)]]
    assert failed.state == TrialState.FAIL and failed.user_attrs[FAIL_REASON] == "fold 1: ValueError: fold 1 broke"
    assert failed.user_attrs["fold_values"] == [[0.4]]
    assert pruned.state == TrialState.PRUNED


@pytest.mark.parametrize("earlier", [False, True])  # the one set run by this worker first, or by an earlier command
def test_worker_stops_when_its_sampler_only_proposes_sets_the_study_holds(earlier, tiny, caplog):
    caplog.set_level("WARNING", logger="litlab.search.worker")
    study = tiny.study()
    one_point = {"x": FloatDistribution(0.25, 0.25)}  # a continuous space, yet every draw is the same
    if earlier:
        study.add_trial(
            create_trial(state=TrialState.COMPLETE, value=0.25, params={"x": 0.25}, distributions=one_point)
        )
    ran = tiny.run(tiny.worker(n_trials=40, distributions=one_point))
    assert ran == {"COMPLETE": 0 if earlier else 1, "PRUNED": 0, "FAIL": 0}
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] + ["FAIL"] * 20  # 20 skipped in a row, then it stops
    assert all(t.user_attrs[LOST_REASON] == "skipped: trial 0 has the same parameters" for t in trials[1:])
    assert "The sampler proposed 20 parameter sets in a row that the study already holds" in caplog.text


def test_worker_finds_a_discrete_space_exhausted_unless_a_retry_waits():
    space = {"depth": IntDistribution(1, 300)}
    worker, study = bare_worker(distributions=space), optuna.create_study()
    for depth in range(1, 300):
        study.add_trial(
            create_trial(state=TrialState.COMPLETE, value=0.5, params={"depth": depth}, distributions=space)
        )
    assert not worker._exhausted(study, 300)
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.5, params={"depth": 300}, distributions=space))
    assert worker._exhausted(study, 300)
    study.enqueue_trial({"depth": 1})  # a lost trial's retry waits to run
    assert not worker._exhausted(study, 300)


class Exited(Exception):
    """os._exit, caught: the test goes on where the worker's process would end."""


def test_worker_of_a_dead_command_closes_its_running_trial_and_exits(monkeypatch):
    def exit_process(code):
        raise Exited(code)

    monkeypatch.setattr(worker_module, "os", types.SimpleNamespace(_exit=exit_process))
    monkeypatch.setattr(worker_module, "logging", types.SimpleNamespace(shutdown=lambda: None))
    study, worker = optuna.create_study(), bare_worker(command="node7:4242")
    running, finished = study.ask(), study.ask()
    study.tell(finished, 0.5)  # it finished as the command died
    for trial in (running, finished, None):
        worker._running = None if trial is None else (study, trial)
        with pytest.raises(Exited) as exited:
            worker._orphaned()
        assert exited.value.args == (1,)
    closed, kept = study.get_trials()
    assert closed.state == TrialState.FAIL and not counts(closed)
    assert closed.user_attrs[LOST_REASON] == "stopped: the sweep command (node7:4242) that started its worker died"
    assert kept.state == TrialState.COMPLETE and LOST_REASON not in kept.user_attrs


@pytest.mark.parametrize(("heartbeat_interval", "interval"), [(60, 1.0), (0.5, 0.5)])
def test_worker_watches_its_command_every_second_or_heartbeat(heartbeat_interval, interval, tiny, monkeypatch):
    watched = []

    @contextlib.contextmanager
    def watching(command, on_death, interval):
        watched.append((command, on_death.__name__, interval))
        yield

    monkeypatch.setattr(worker_module, "watching", watching)
    tiny.study()
    liveness = Liveness(heartbeat_interval=heartbeat_interval, grace_period=heartbeat_interval * 2)
    tiny.run(tiny.worker(n_trials=1, command="node7:4242", liveness=liveness))
    assert watched == [("node7:4242", "_orphaned", interval)]
