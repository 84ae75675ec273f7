"""Sweeps that scale out: workers in other processes, a shared study, lost trials recovered, bad input named."""

import os
import signal
import sqlite3
import sys
import time

import optuna
import pandas as pd
import pytest
from joblib.externals.loky import get_reusable_executor
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sqlalchemy.exc import SQLAlchemyError

from litlab.search.space import format_override, grid_choices, parse_search_space
from litlab.search.storage import (
    Liveness,
    build_storage,
    counts,
    fail_stale_trials,
    heartbeat,
    mask_url,
    open_study,
    study_and_trial_ids,
)
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
    "model.optimizer.name=adam",
    "model.net.dropout=0.0",
    "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
]


def test_search_space_is_parsed_into_optuna_distributions():
    space = parse_search_space(
        [
            "model.optimizer.lr=tag(log, interval(0.00001, 0.01))",
            "trainer.max_epochs=range(2, 10, 2)",
            "model.optimizer.name=choice(adam, sgd)",
            "model.net.dropout=range(0.0, 0.5, 0.25)",
            "data.batch_size=64",
            "model.optimizer.name=choice(adam, rmsprop)",  # the command line comes last and wins
        ]
    )
    assert space.distributions == {
        "model.optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
        "trainer.max_epochs": IntDistribution(2, 8, step=2),
        "model.optimizer.name": CategoricalDistribution(["adam", "rmsprop"]),
        "model.net.dropout": FloatDistribution(0.0, 0.25, step=0.25),
    }
    assert space.fixed == ["data.batch_size=64"]
    grid = grid_choices({k: v for k, v in space.distributions.items() if k != "model.optimizer.lr"})
    assert grid == {
        "trainer.max_epochs": [2, 4, 6, 8],
        "model.optimizer.name": ["adam", "rmsprop"],
        "model.net.dropout": [0.0, 0.25],
    }
    with pytest.raises(ValueError, match="`model.optimizer.lr` is continuous"):
        grid_choices({"model.optimizer.lr": space.distributions["model.optimizer.lr"]})
    # a trial's values go back to Hydra as overrides that parse to the same values
    assert format_override("model.net.conv_channels", [8, 16]) == "model.net.conv_channels=[8,16]"
    assert format_override("model.optimizer.name", "adam") == "model.optimizer.name='adam'"


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
    assert sorted(t.number for t in trials) == list(range(6))
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert all(t.state.name == "PRUNED" for t in trials if t.params["model.optimizer.lr"] < 1e-4)
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # several worker processes at once
