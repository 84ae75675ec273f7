"""Where a study lives, and how its trials stay honest when the processes running them die.

A storage is given as Optuna takes it: a database URL (`sqlite:///logs/optuna.db`, `postgresql://...`), or an
`optuna.storages.*` `_target_` mapping such as a JournalStorage on a shared file system. Without one, a sweep
keeps its study in a journal file in its own folder, so that trials run by any launcher reach it.

Liveness: the process running a trial records a heartbeat for it; a RUNNING trial whose heartbeat is older than
the grace period is failed by whichever process asks for a trial next, with the reason and the time of its last
beat, and may be queued again with the same parameters (`RetryHeartbeatStaleTrialCallback`). Database storages
judge by Optuna's own heartbeat. The journal storage has none, so litlab judges by the time of the last beat,
which it keeps as a trial system attribute on every storage (a lost trial's duration ends there).
"""

import copy
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from litlab.search.errors import SweepError

# Config-chosen classes a storage or pruner mapping may name (Hydra 1.4's execution whitelist).
STORAGE_WHITELIST = ("optuna.storages.*", "optuna.pruners.*")
# The time of a running trial's last heartbeat, seconds since the epoch, as a trial system attribute.
HEARTBEAT_ATTR = "litlab:heartbeat"
# Why a trial ended without finishing on its own (its worker died, Ctrl-C, the study already full, a repeat of
# another trial's parameters); such trials do not count.
LOST_REASON = "lost_reason"
# When a lost trial's worker last showed signs of life (local time, ISO 8601): where its duration ends.
LAST_HEARTBEAT = "last_heartbeat"
# Why a trial failed by itself (a crash, a NaN objective); such trials count toward n_trials.
FAIL_REASON = "fail_reason"
JOURNAL_NAME = "optuna.journal"

# Python packages SQLAlchemy's default drivers live in, and what pip calls them.
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "cx_Oracle": "cx_Oracle",
    "oracledb": "oracledb",
    "pyodbc": "pyodbc",
}


def mask_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*):\S*@", r"\1:***@", text)


def storage_label(spec: Any) -> str:
    """A storage setting as it may be printed: a URL without its password, or the class of a mapping."""
    if spec is None:
        return f"a journal file ({JOURNAL_NAME}) in the sweep folder"
    if isinstance(spec, Mapping):
        return str(spec.get("_target_", "a storage mapping"))
    return mask_url(str(spec))


@dataclass(frozen=True)
class Liveness:
    """How the running trials prove they are alive, and what becomes of one that stops proving it."""

    heartbeat_interval: int = 60
    grace_period: int | None = None  # None: twice the interval, as Optuna
    retry_failed: int = 0  # how many times a lost trial is queued again with its parameters

    @property
    def grace(self) -> int:
        return self.grace_period or 2 * self.heartbeat_interval


def _check_driver(url: str) -> None:
    from sqlalchemy.engine import make_url

    try:
        dialect = make_url(url).get_dialect()
    except Exception as err:
        raise SweepError(f"The storage URL {mask_url(url)} is not a database URL SQLAlchemy knows ({err}).") from None
    module = getattr(dialect, "driver", "")
    try:
        dialect.import_dbapi()
    except ImportError:
        package = DRIVER_PACKAGES.get(module, module)
        raise SweepError(
            f"The storage URL {mask_url(url)} needs the Python package `{package}` (the {module} driver), which is "
            f"not installed: `pip install '{package}'`, or name another driver in the URL."
        ) from None


def _check_sqlite_folder(url: str) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        # As SQLite will open it: relative to the working directory, and `~` is no home there.
        folder = Path(database).resolve().parent
        if not folder.is_dir():
            raise SweepError(
                f"The SQLite study file's folder {folder} does not exist: create it, or point "
                "hydra.sweeper.storage at an existing folder."
            )


def _rdb_storage(url: str, liveness: Liveness | None, attempts: int = 5) -> RDBStorage:
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    sqlite = url.startswith("sqlite")
    if sqlite:
        _check_sqlite_folder(url)
    else:
        _check_driver(url)
    kwargs: dict[str, Any] = {}
    if liveness is not None:
        kwargs = {
            "heartbeat_interval": liveness.heartbeat_interval,
            "grace_period": liveness.grace,
            "heartbeat_stale_trial_callback": _retry_callback(liveness),
        }
    for attempt in range(attempts):
        try:
            with _quiet_experimental():
                return RDBStorage(url, **kwargs)
        except RuntimeError as err:
            if "table schema" in str(err):
                raise SweepError(
                    f"The study storage {mask_url(url)} was written by another Optuna version: {err} "
                    "(back it up first), or give this sweep a new storage."
                ) from None
            raise
        except OperationalError as err:
            if not sqlite:
                reason = str(err.orig).strip().splitlines()[0] if err.orig else type(err).__name__
                raise SweepError(
                    f"Cannot reach the study database {mask_url(url)} ({mask_url(reason)}): start the database "
                    "server, or fix hydra.sweeper.storage (host, port, user, database name)."
                ) from None
            # Processes starting at once on a new SQLite file race to create its tables; the loser retries.
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())
        except SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")


@contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        # The heartbeat is marked experimental in Optuna since 2.9; it is what recovers lost trials.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _retry_callback(liveness: Liveness) -> RetryHeartbeatStaleTrialCallback | None:
    if not liveness.retry_failed:
        return None
    with _quiet_experimental():
        return RetryHeartbeatStaleTrialCallback(max_retry=liveness.retry_failed)


def build_storage(spec: Any, sweep_dir: str | Path, liveness: Liveness | None = None) -> BaseStorage:
    """The storage a sweep's setting names: a URL, a `_target_` mapping, or None for a journal in `sweep_dir`."""
    if spec is None:
        from optuna.storages.journal import JournalFileBackend

        Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(Path(sweep_dir) / JOURNAL_NAME)))
    if isinstance(spec, Mapping):
        if "_target_" not in spec:
            raise SweepError("hydra.sweeper.storage is a mapping without _target_: name an optuna.storages class.")
        storage = instantiate(spec, _execution_whitelist_=STORAGE_WHITELIST)
        if isinstance(storage, RDBStorage) and liveness is not None and storage.heartbeat_interval is None:
            return _rdb_storage(storage.url, liveness)
        return storage
    if isinstance(spec, BaseStorage):
        return spec
    return _rdb_storage(str(spec), liveness)


def study_and_trial_ids(storage: BaseStorage, study_name: str, number: int) -> tuple[int, int]:
    study_id = storage.get_study_id_from_name(study_name)
    return study_id, storage.get_trial_id_from_study_id_trial_number(study_id, number)


def _record(storage: BaseStorage, trial_id: int) -> None:
    if isinstance(storage, RDBStorage):
        storage.record_heartbeat(trial_id)


@contextmanager
def heartbeat(storage: BaseStorage, trial_id: int, interval: float) -> Iterator[None]:
    """Records the trial's heartbeat every `interval` seconds while the block runs (from a background thread)."""
    stop = threading.Event()

    def record() -> None:
        _record(storage, trial_id)
        storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def beat() -> None:
        while True:
            try:
                record()
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # failed as stale meanwhile (a long pause): nothing left to keep alive
            if stop.wait(interval):
                return

    record()
    thread = threading.Thread(target=beat, name=f"optuna-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _stale_trials(study: optuna.Study, storage: BaseStorage, liveness: Liveness) -> list[FrozenTrial]:
    if isinstance(storage, RDBStorage):
        # Optuna's own rule, on the database's clock (the one fail_stale_trials applies)
        if storage.heartbeat_interval is None:
            return []
        return [storage.get_trial(trial_id) for trial_id in storage._get_stale_trial_ids(study._study_id)]
    now = time.time()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # A retried trial inherits its original's attributes: its own start counts as its first beat.
        last = max(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0), trial.datetime_start.timestamp())
        if now - last > liveness.grace:
            stale.append(trial)
    return stale


def lost_reason(trial: FrozenTrial, liveness: Liveness) -> tuple[str, str]:
    """Why a stale trial is failed, and when its worker last beat (local time), as the trial keeps them."""
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    last = datetime.fromtimestamp(beat) if beat is not None else trial.datetime_start
    worker = trial.user_attrs.get("worker", "its worker")
    reason = (
        f"lost: no heartbeat from {worker} since {last:%H:%M:%S} (grace period {liveness.grace} s); "
        "its process was killed, ran out of memory or lost its machine"
    )
    return reason, last.isoformat(timespec="seconds")


def fail_stale_trials(study: optuna.Study, storage: BaseStorage, liveness: Liveness) -> list[int]:
    """Fails the RUNNING trials whose heartbeat stopped, saying why and since when, and queues each again with
    its parameters when retries are allowed; returns the numbers of the trials it failed."""
    retry = _retry_callback(liveness)
    failed = []
    for trial in _stale_trials(study, storage, liveness):
        reason, last = lost_reason(trial, liveness)
        try:
            # Written while the trial runs (a finished one takes no attribute), then the verdict.
            storage.set_trial_user_attr(trial._trial_id, LOST_REASON, reason)
            storage.set_trial_user_attr(trial._trial_id, LAST_HEARTBEAT, last)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished, or failed by another process, meanwhile
        failed.append(trial.number)
        if retry is not None:
            # The retry is a new trial: none of the verdict on its original goes with it.
            original = copy.deepcopy(storage.get_trial(trial._trial_id))
            original.user_attrs.pop(LOST_REASON, None)
            original.user_attrs.pop(LAST_HEARTBEAT, None)
            original.system_attrs.pop(HEARTBEAT_ATTR, None)
            with _quiet_experimental():
                retry(study, original)
    return failed


def counts(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward n_trials: it finished on its own (complete, pruned, crashed or NaN).

    A trial whose process died (failed as stale) or that was interrupted does not: its retry, or a new
    trial, takes its place.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs


def open_study(storage: BaseStorage, study_name: str, directions: list[str], **kwargs: Any) -> optuna.Study:
    """Creates the study, or loads it when it exists (another process may be creating it at this moment)."""
    return optuna.create_study(
        storage=storage, study_name=study_name, directions=directions, load_if_exists=True, **kwargs
    )
