"""Where a study lives (litlab.search.storage): storage settings, the errors they give, liveness of trials, and
several processes on one study in a real PostgreSQL database and in one Optuna journal file.

The PostgreSQL server is started by the `postgres` fixture (tests/conftest.py) from the pgserver wheel.
"""

import dataclasses
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import types
import warnings
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import InMemoryStorage, JournalStorage, RDBStorage
from optuna.trial import TrialState, create_trial
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from hydra_plugins.litlab_optuna_sweeper.config import LitlabOptunaSweeperConf
from litlab import ROOT_DIR
from litlab.search import storage as storage_module
from litlab.search.errors import SweepError
from litlab.search.storage import (
    FAIL_REASON,
    HEARTBEAT_ATTR,
    JOURNAL_NAME,
    LAST_HEARTBEAT,
    LOST_REASON,
    Liveness,
    build_storage,
    counts,
    fail_stale_trials,
    heartbeat,
    mask_url,
    open_study,
    storage_label,
    study_and_trial_ids,
)
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
    # every trial finished (none left running), each under its own number; never run: a draw of parameters
    # another command ran, and a trial asked for as another command made up the target
    assert set(trials) <= {"COMPLETE", "PRUNED", "FAIL"} and len(finished) >= 2
    never_run = ("skipped: ", "not run: the study reached n_trials meanwhile")
    assert all(t.user_attrs[LOST_REASON].startswith(never_run) for t in trials.get("FAIL", []))
    numbers = sorted(t.number for ts in trials.values() for t in ts)
    assert numbers == list(range(len(numbers)))
    assert len({tuple(sorted(t.params.items())) for t in finished}) == len(finished)
    # and each ran as its own job, in its own folder
    runs = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    assert len(runs) >= len(finished)


# --- storage settings and the errors they give (litlab.search.storage, unit level) ---

SPACE = {"x": FloatDistribution(0, 1)}


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def _empty_study_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("optuna") / "empty.db"
    RDBStorage(sqlite_url(path))  # creates Optuna's tables, the slow part of a new database
    return path


@pytest.fixture
def sqlite_db(_empty_study_db, tmp_path) -> Path:
    """A SQLite file of this test's own, holding Optuna's tables and no study."""
    path = tmp_path / "study.db"
    shutil.copyfile(_empty_study_db, path)
    return path


def test_passwords_are_masked_in_every_url_of_a_text():
    text = "could not reach postgresql://u:p@ss@db:5432/a; fell back to mysql+pymysql://root:hunter2@h/b"
    assert mask_url(text) == "could not reach postgresql://u:***@db:5432/a; fell back to mysql+pymysql://root:***@h/b"
    # a user without a password, or no user at all, has nothing to hide
    assert mask_url("postgresql://litlab@db/optuna") == "postgresql://litlab@db/optuna"
    assert mask_url("see sqlite:///logs/optuna.db") == "see sqlite:///logs/optuna.db"


def test_a_storage_setting_is_described_without_its_secret():
    assert storage_label(None) == f"a journal file ({JOURNAL_NAME}) in the sweep folder"
    assert storage_label({"_target_": "optuna.storages.JournalStorage", "log_storage": {}}) == (
        "optuna.storages.JournalStorage"
    )
    assert storage_label({"url": "sqlite:///x.db"}) == "a storage mapping"
    assert storage_label("postgresql://litlab:s3cret@db/optuna") == "postgresql://litlab:***@db/optuna"


def test_liveness_defaults_are_the_sweepers_and_the_grace_is_two_beats_unless_given():
    conf = LitlabOptunaSweeperConf()
    assert Liveness() == Liveness(conf.heartbeat_interval, conf.grace_period, conf.retry_failed)
    assert Liveness(heartbeat_interval=7).grace == 14
    assert Liveness(heartbeat_interval=7, grace_period=30).grace == 30
    # one value shared by the sweeper and its workers: nothing may change it on the way
    with pytest.raises(dataclasses.FrozenInstanceError):
        Liveness().retry_failed = 3


def test_a_sweep_without_storage_keeps_its_study_in_a_journal_in_its_folder(tmp_path):
    sweep_dir = tmp_path / "multirun" / "2026-01-01"  # not created yet
    storage = build_storage(None, sweep_dir)
    assert isinstance(storage, JournalStorage)
    study = open_study(storage, "s", ["minimize"])
    study.add_trial(create_trial(value=1.0, params={"x": 0.5}, distributions=SPACE))
    # the next process of the sweep opens the same folder and sees the same study
    again = open_study(build_storage(None, sweep_dir), "s", ["minimize"])
    assert (sweep_dir / JOURNAL_NAME).is_file()
    assert [t.params for t in again.get_trials()] == [{"x": 0.5}]


def test_open_study_creates_it_once_and_loads_it_afterwards(tmp_path):
    storage = build_storage(None, tmp_path)
    first = open_study(storage, "s", ["maximize", "minimize"])
    first.add_trial(create_trial(values=[1.0, 2.0]))
    second = open_study(storage, "s", ["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3))
    assert second._study_id == first._study_id and len(second.trials) == 1
    assert isinstance(second.sampler, optuna.samplers.RandomSampler)


def test_a_storage_object_is_used_as_given(tmp_path):
    storage = InMemoryStorage()
    assert build_storage(storage, tmp_path, Liveness()) is storage


def test_a_journal_mapping_is_built_by_its_target(tmp_path):
    spec = {
        "_target_": "optuna.storages.JournalStorage",
        "log_storage": {"_target_": "optuna.storages.journal.JournalFileBackend", "file_path": str(tmp_path / "j")},
    }
    storage = build_storage(spec, tmp_path / "sweep", Liveness(heartbeat_interval=5))
    assert isinstance(storage, JournalStorage)
    open_study(storage, "s", ["minimize"])
    assert (tmp_path / "j").is_file() and not (tmp_path / "sweep" / JOURNAL_NAME).exists()


def test_a_storage_mapping_without_target_or_outside_optuna_is_refused(tmp_path):
    with pytest.raises(SweepError, match="hydra.sweeper.storage is a mapping without _target_"):
        build_storage({"url": sqlite_url(tmp_path / "s.db")}, tmp_path)
    with pytest.raises(Exception, match="whitelist|allowed|not in"):
        build_storage({"_target_": "os.remove", "path": str(tmp_path / "victim")}, tmp_path)


def test_a_database_storage_gets_the_sweeps_heartbeat(sqlite_db, tmp_path):
    url = sqlite_url(sqlite_db)
    plain = build_storage(url, tmp_path)
    assert isinstance(plain, RDBStorage) and plain.get_heartbeat_interval() is None
    beating = build_storage(url, tmp_path, Liveness(heartbeat_interval=7))
    assert (beating.get_heartbeat_interval(), beating.grace_period) == (7, 14)
    assert beating.get_heartbeat_stale_trial_callback() is None  # no retry asked for
    retrying = build_storage(url, tmp_path, Liveness(heartbeat_interval=7, grace_period=20, retry_failed=2))
    assert (retrying.get_heartbeat_interval(), retrying.grace_period) == (7, 20)
    assert isinstance(retrying.get_heartbeat_stale_trial_callback(), optuna.storages.RetryHeartbeatStaleTrialCallback)


def test_a_database_mapping_gets_the_sweeps_heartbeat_unless_it_sets_its_own(sqlite_db, tmp_path):
    url = sqlite_url(sqlite_db)
    liveness = Liveness(heartbeat_interval=9)
    given = build_storage({"_target_": "optuna.storages.RDBStorage", "url": url}, tmp_path, liveness)
    assert (given.get_heartbeat_interval(), given.grace_period) == (9, 18)
    own = {"_target_": "optuna.storages.RDBStorage", "url": url, "heartbeat_interval": 4, "grace_period": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        kept = build_storage(own, tmp_path, liveness)
    assert (kept.get_heartbeat_interval(), kept.grace_period) == (4, 10)
    # a callback-free read (the trial's own process) leaves the mapping's storage as it is
    assert build_storage({"_target_": "optuna.storages.RDBStorage", "url": url}, tmp_path).heartbeat_interval is None


def test_liveness_works_without_optunas_experimental_warnings(sqlite_db, tmp_path):
    # Optuna marks the heartbeat and the retry callback experimental; every worker would print that warning.
    liveness = Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1)
    study = open_study(journal(tmp_path), "s", ["minimize"])
    running_trial(study, time.time() - 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_storage(sqlite_url(sqlite_db), tmp_path, liveness)
        fail_stale_trials(study, study._storage, liveness)
    assert states(study) == ["FAIL", "WAITING"]


def test_a_sqlite_file_in_a_missing_folder_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "no" / "such"
    with pytest.raises(SweepError, match=f"The SQLite study file's folder {missing} does not exist: create it"):
        build_storage(sqlite_url(missing / "study.db"), tmp_path)
    # a relative path is relative to the working directory, where SQLite opens it; `~` is no home to SQLite
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert isinstance(build_storage("sqlite:///study.db", tmp_path), RDBStorage)
    assert (tmp_path / "study.db").is_file()
    with pytest.raises(SweepError, match=f"folder {tmp_path / '~'} does not exist"):
        build_storage("sqlite:///~/study.db", tmp_path)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:mem?mode=memory&uri=true"])
def test_sqlite_databases_without_a_folder_are_accepted(url, tmp_path):
    assert isinstance(build_storage(url, tmp_path), RDBStorage)


def test_a_url_sqlalchemy_does_not_know_is_named_without_its_password(tmp_path):
    with pytest.raises(SweepError) as err:
        build_storage("nosuchdb://u:s3cret@host/optuna", tmp_path)
    assert str(err.value).startswith("The storage URL nosuchdb://u:***@host/optuna is not a database URL SQLAlchemy")
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "module", "package"),
    [("mysql+pymysql://u:pw@localhost/optuna", "pymysql", "PyMySQL"), ("mssql+pymssql://h/db", "pymssql", "pymssql")],
)
def test_a_missing_database_driver_names_its_package(url, module, package, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(SweepError) as err:
        build_storage(url, tmp_path)
    assert f"needs the Python package `{package}` (the {module} driver), which is not installed" in str(err.value)
    assert f"`pip install '{package}'`" in str(err.value) and "pw@" not in str(err.value)


def test_an_unreachable_database_is_named_without_its_password(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(SweepError) as err:
        build_storage("postgresql+psycopg://litlab:s3cret@127.0.0.1:9/optuna", tmp_path)  # nothing listens on 9
    message = str(err.value)
    assert message.startswith("Cannot reach the study database postgresql+psycopg://litlab:***@127.0.0.1:9/optuna (")
    assert "start the database server, or fix hydra.sweeper.storage" in message and "s3cret" not in message


def test_a_storage_written_by_another_optuna_version_is_refused(sqlite_db, tmp_path):
    db = sqlite_db
    optuna.create_study(storage=sqlite_url(db), study_name="old")
    with sqlite3.connect(db) as connection:  # what Optuna 3.0 left behind
        connection.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
        connection.execute("UPDATE version_info SET library_version = '3.0.0'")
    with pytest.raises(SweepError, match=f"The study storage sqlite:///{db} was written by another Optuna version"):
        build_storage(sqlite_url(db), tmp_path)


class FlakyRDB:
    """Stands for RDBStorage: raises the queued errors one per call, then opens."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.calls = list(errors), 0

    def __call__(self, url: str, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ("opened", url)


@pytest.fixture
def flaky(monkeypatch):
    """Installs a FlakyRDB; returns (make(errors), the sleeps taken). random.random() is 0.25 meanwhile."""
    sleeps: list[float] = []
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(sleep=sleeps.append, time=time.time))
    monkeypatch.setattr(random, "random", lambda: 0.25)

    def make(errors: list[BaseException]) -> FlakyRDB:
        rdb = FlakyRDB(errors)
        monkeypatch.setattr(storage_module, "RDBStorage", rdb)
        return rdb

    return make, sleeps


def operational(message: str | None = "database is locked") -> OperationalError:
    return OperationalError("CREATE TABLE studies", {}, Exception(message) if message else None)


@pytest.mark.parametrize("error", [operational, lambda: SQLAlchemyError("tables being created")])
def test_processes_racing_to_create_a_sqlite_study_retry_after_a_random_pause(error, tmp_path, flaky):
    make, sleeps = flaky
    url = sqlite_url(tmp_path / "s.db")
    rdb = make([error() for _ in range(4)])
    assert build_storage(url, tmp_path) == ("opened", url)
    # the fifth attempt opens it; each loser waited 0.5 s + up to 1 s at random (here 0.25)
    assert rdb.calls == 5 and sleeps == [0.75] * 4
    sleeps.clear()
    rdb = make([error() for _ in range(5)])
    with pytest.raises(type(error())):
        build_storage(url, tmp_path)
    assert rdb.calls == 5 and len(sleeps) == 4


def test_a_database_server_that_refuses_is_named_at_once_with_the_first_line_of_its_reason(tmp_path, flaky):
    make, sleeps = flaky
    url = "postgresql+psycopg://litlab:s3cret@db.lan/optuna"
    pytest.importorskip("psycopg")
    reason = "connection failed: postgresql://litlab:s3cret@db.lan refused\nIs the server running?\nmore"
    make([operational(reason)])
    with pytest.raises(SweepError) as err:
        build_storage(url, tmp_path)
    assert str(err.value) == (
        "Cannot reach the study database postgresql+psycopg://litlab:***@db.lan/optuna (connection failed: "
        "postgresql://litlab:***@db.lan refused): start the database server, or fix hydra.sweeper.storage "
        "(host, port, user, database name)."
    )
    make([operational(None)])
    with pytest.raises(SweepError, match=r"db.lan/optuna \(OperationalError\): start"):
        build_storage(url, tmp_path)
    assert sleeps == []


def test_other_errors_of_a_database_pass_unchanged(tmp_path, flaky):
    make, _ = flaky
    make([RuntimeError("disk on fire")])
    with pytest.raises(RuntimeError, match="disk on fire"):
        build_storage(sqlite_url(tmp_path / "s.db"), tmp_path)


# --- liveness: heartbeats and stale trials ---


def journal(tmp_path: Path) -> JournalStorage:
    return build_storage(None, tmp_path)


def running_trial(study: optuna.Study, started: float, beat: float | None = None) -> int:
    """Adds a RUNNING trial started at `started` (and last beating at `beat`); returns its number."""
    from datetime import datetime

    trial = create_trial(state=TrialState.RUNNING, params={"x": 0.5}, distributions=SPACE, user_attrs={"worker": "h:1"})
    trial.datetime_start = datetime.fromtimestamp(started)
    if beat is not None:
        trial.system_attrs = {HEARTBEAT_ATTR: beat}
    study.add_trial(trial)
    return len(study.get_trials(deepcopy=False)) - 1


@pytest.fixture
def clock(monkeypatch):
    """The time litlab's liveness rule reads (storage.time.time()), set by the test: a one-item list."""
    now = [time.time()]
    monkeypatch.setattr(storage_module, "time", types.SimpleNamespace(time=lambda: now[0], sleep=time.sleep))
    return now


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_a_journal_trial_silent_for_longer_than_the_grace_is_failed(tmp_path, clock):
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    t0 = clock[0] - 1000
    running_trial(study, t0, beat=t0 + 100)  # silent for 10 s at the grace's end
    running_trial(study, t0, beat=t0 + 108)  # exactly the grace: not older than it
    running_trial(study, t0, beat=t0 + 107)  # past the grace
    running_trial(study, t0, beat=t0 + 110)  # just beat
    running_trial(study, t0 + 110)  # started now, no beat yet: its start counts as one
    running_trial(study, t0, beat=t0 + 90)  # long silent
    study.add_trial(create_trial(value=1.0, params={"x": 0.1}, distributions=SPACE))  # finished long ago
    clock[0] = t0 + 110
    fail_stale_trials(study, storage, Liveness(heartbeat_interval=1, grace_period=2))
    assert states(study) == ["FAIL", "RUNNING", "FAIL", "RUNNING", "RUNNING", "FAIL", "COMPLETE"]
    assert not any(counts(t) for t in study.get_trials() if t.state == TrialState.FAIL)
    assert len(study.get_trials()) == 7  # nothing queued again without retry_failed


def test_a_retried_trial_is_judged_by_its_own_start_not_its_originals_beat(tmp_path, clock):
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    running_trial(study, started=clock[0], beat=clock[0] - 500)  # inherited from the trial it retries
    fail_stale_trials(study, storage, Liveness(heartbeat_interval=1, grace_period=2))
    assert states(study) == ["RUNNING"]


def test_a_lost_journal_trial_is_queued_again_as_often_as_retry_failed_allows(tmp_path, clock):
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    liveness = Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1)
    first = running_trial(study, clock[0] - 100, beat=clock[0] - 40)
    assert fail_stale_trials(study, storage, liveness) == [first]
    assert states(study) == ["FAIL", "WAITING"]
    lost, retry = study.get_trials()
    # the lost trial says why and since when (where its duration ends in trials.csv); its retry starts afresh
    last = datetime.fromtimestamp(clock[0] - 40)
    assert lost.user_attrs[LOST_REASON] == (
        f"lost: no heartbeat from h:1 since {last:%H:%M:%S} (grace period 2 s); its process was killed, ran out of "
        "memory or lost its machine"
    )
    assert lost.user_attrs[LAST_HEARTBEAT] == last.isoformat(timespec="seconds") and not counts(lost)
    assert retry.params == {"x": 0.5} and retry.system_attrs["failed_trial"] == first
    assert retry.user_attrs == {"worker": "h:1"} and HEARTBEAT_ATTR not in retry.system_attrs
    assert study.ask(SPACE).params == {"x": 0.5}  # the next ask runs it
    clock[0] += 100  # ... and its worker dies too: the one retry is spent
    fail_stale_trials(study, storage, liveness)
    assert states(study) == ["FAIL", "FAIL"]


def test_a_trial_finished_by_another_process_meanwhile_is_left_alone(tmp_path, clock, monkeypatch):
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    liveness = Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1)
    done, lost = running_trial(study, clock[0] - 100), running_trial(study, clock[0] - 100)
    seen = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    # another worker tells trial `done` between this worker's look at the running trials and its verdict
    study.tell(done, 1.0)
    monkeypatch.setattr(study, "get_trials", lambda **_: seen)
    fail_stale_trials(study, storage, liveness)
    monkeypatch.undo()
    assert states(study)[:2] == ["COMPLETE", "FAIL"] and study.get_trials()[done].value == 1.0
    # only the really lost one is queued again
    assert [t.system_attrs["failed_trial"] for t in study.get_trials()[2:]] == [lost]


def set_sqlite_heartbeat(db: Path, seconds_ago: float) -> None:
    """Moves every recorded heartbeat of a SQLite study `seconds_ago` into the past (database time, UTC)."""
    from datetime import datetime, timedelta, timezone

    at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=seconds_ago)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE trial_heartbeats SET heartbeat = ?", (at.strftime("%Y-%m-%d %H:%M:%S.%f"),))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # a study.ask outside optimize
def test_a_database_trial_is_judged_by_optunas_heartbeat_in_the_database(sqlite_db, tmp_path, clock):
    db = sqlite_db
    liveness = Liveness(heartbeat_interval=1, grace_period=30, retry_failed=1)
    storage = build_storage(sqlite_url(db), tmp_path, liveness)
    study = open_study(storage, "s", ["minimize"])
    trial = study.ask(SPACE)
    storage_module._record(storage, trial._trial_id)
    # the beat is in Optuna's table, not in the trial's attributes
    assert HEARTBEAT_ATTR not in study.get_trials()[0].system_attrs
    clock[0] += 1000  # litlab's own clock plays no part: the database compares its own times
    set_sqlite_heartbeat(db, 20)
    fail_stale_trials(study, storage, liveness)
    assert states(study) == ["RUNNING"]
    set_sqlite_heartbeat(db, 40)
    fail_stale_trials(study, storage, liveness)
    assert states(study) == ["FAIL", "WAITING"]
    assert study.get_trials()[1].params == trial.params


def test_the_heartbeat_beats_at_once_then_every_interval_until_the_block_ends(tmp_path):
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    trial = study.ask(SPACE)
    _, trial_id = study_and_trial_ids(storage, "s", trial.number)

    def beat() -> float | None:
        return storage.get_trial(trial_id).system_attrs.get(HEARTBEAT_ATTR)

    seen = set()
    with heartbeat(storage, trial_id, 0.02):
        assert beat() is not None  # before the block's first line
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            seen.add(beat())
            time.sleep(0.01)
    assert len(seen) >= 4  # it kept beating while the block ran
    last = beat()
    time.sleep(0.1)
    assert beat() == last  # and stopped with it
    assert not [t for t in threading.enumerate() if t.name.startswith("optuna-heartbeat")]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # a study.ask outside optimize
def test_a_heartbeat_on_a_database_is_optunas_and_its_time_stays_with_the_trial(sqlite_db, tmp_path):
    db = sqlite_db
    storage = build_storage(sqlite_url(db), tmp_path, Liveness(heartbeat_interval=1))
    study = open_study(storage, "s", ["minimize"])
    trial = study.ask(SPACE)
    before = time.time()
    with heartbeat(storage, trial._trial_id, 60):
        with sqlite3.connect(db) as connection:
            rows = connection.execute("SELECT trial_id FROM trial_heartbeats").fetchall()
        assert rows == [(trial._trial_id,)]
    # judged by Optuna's table; the time of the last beat is where a lost trial's duration ends
    assert before <= study.get_trials()[0].system_attrs[HEARTBEAT_ATTR] <= time.time()


def test_the_heartbeat_of_a_trial_failed_meanwhile_stops_quietly(tmp_path, monkeypatch):
    # After a long pause (a suspended laptop), another worker may have failed the trial as stale.
    storage = journal(tmp_path)
    study = open_study(storage, "s", ["minimize"])
    trial = study.ask(SPACE)
    errors = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    with heartbeat(storage, trial._trial_id, 0.01):
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        deadline = time.monotonic() + 30
        while [t for t in threading.enumerate() if t.name.startswith("optuna-heartbeat")]:
            assert time.monotonic() < deadline, "the heartbeat thread kept running"
            time.sleep(0.01)
    assert errors == []


@pytest.mark.parametrize(
    ("state", "user_attrs", "counted"),
    [
        (TrialState.COMPLETE, {}, True),
        (TrialState.PRUNED, {}, True),
        (TrialState.FAIL, {FAIL_REASON: "ValueError: NaN loss"}, True),  # failed on its own: counts
        (TrialState.FAIL, {LOST_REASON: "interrupted (Ctrl-C)"}, False),  # interrupted or lost: its retry counts
        (TrialState.FAIL, {}, False),  # failed as stale
        (TrialState.RUNNING, {FAIL_REASON: "set while running"}, False),
        (TrialState.WAITING, {}, False),
        (TrialState.WAITING, {FAIL_REASON: "enqueued with it"}, False),
    ],
)
def test_which_trials_count_toward_n_trials(state, user_attrs, counted):
    trial = create_trial(
        state=state,
        value=1.0 if state == TrialState.COMPLETE else None,
        params={"x": 0.5},
        distributions=SPACE,
        user_attrs=user_attrs,
    )
    assert counts(trial) is counted


def test_trial_ids_are_found_by_study_and_number(tmp_path):
    storage = journal(tmp_path)
    a, b = open_study(storage, "a", ["minimize"]), open_study(storage, "b", ["minimize"])
    a.ask(), b.ask(), b.ask()
    study_id, trial_id = study_and_trial_ids(storage, "b", 1)
    assert study_id == b._study_id
    assert storage.get_trial(trial_id).number == 1 and trial_id == b.get_trials()[1]._trial_id


def test_a_stale_trial_the_storage_would_not_fail_is_neither_failed_nor_retried(tmp_path, clock):
    # Optuna's storage contract: set_trial_state_values returns False when it kept the state (another process
    # got there first); the next stale trial is still handled.
    class ClaimingStorage(JournalStorage):
        claimed: set[int] = set()

        def set_trial_state_values(self, trial_id, state, values=None):
            if trial_id in self.claimed:
                return False
            return super().set_trial_state_values(trial_id, state, values)

    storage = ClaimingStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / JOURNAL_NAME)))
    study = open_study(storage, "s", ["minimize"])
    claimed, lost = running_trial(study, clock[0] - 100), running_trial(study, clock[0] - 100)
    ClaimingStorage.claimed = {study.get_trials()[claimed]._trial_id}
    fail_stale_trials(study, storage, Liveness(heartbeat_interval=1, grace_period=2, retry_failed=1))
    assert states(study) == ["RUNNING", "FAIL", "WAITING"]
    assert study.get_trials()[2].system_attrs["failed_trial"] == lost
