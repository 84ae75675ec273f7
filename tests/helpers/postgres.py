"""A real PostgreSQL server for tests, from the pgserver wheel (the `dev` extra): nothing to install by hand.

pgserver ships PostgreSQL's own binaries (initdb, pg_ctl, postgres) in its wheel. PostgreSQL refuses to run
as root; when the tests run as root (CI does), pgserver runs the server as a system user of its own
(`pgserver`, created with useradd). The server listens on a Unix socket in its data folder only, never on
a network address, so it is reachable from this machine alone.
"""

import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

# The SQLAlchemy dialect and driver of litlab's PostgreSQL storages (psycopg 3, a runtime dependency).
DRIVER = "postgresql+psycopg"


def start_postgres() -> Any:
    """Starts a PostgreSQL server with its data in a new temporary folder; `stop_postgres` ends both.

    The folder is not under pytest's own temporary root: pgserver opens the folders above the data to its
    system user, and pytest closes its root again when the next session starts (another session's server
    would then lose its data folder).
    """
    with warnings.catch_warnings():
        # platformdirs' note that XDG_RUNTIME_DIR is unset: pgserver then keeps its lock file under /tmp
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

    root = Path(tempfile.mkdtemp(prefix="litlab-postgres-"))
    try:
        return pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def stop_postgres(server: Any) -> None:
    """Stops the server (pg_ctl stop: the postmaster and its children) and deletes its data folder."""
    server.cleanup()
    shutil.rmtree(Path(server.pgdata).parent, ignore_errors=True)


def create_database(server: Any, name: str | None = None) -> str:
    """Creates an empty database on `server` and returns its SQLAlchemy URL (psycopg 3 over the socket)."""
    name = name or f"test_{uuid.uuid4().hex[:12]}"
    server.psql(f'CREATE DATABASE "{name}";')
    return make_url(server.get_uri(name)).set(drivername=DRIVER).render_as_string(hide_password=False)
