"""Serves optuna-dashboard on a study storage, on this machine only unless told otherwise.

The storage is a database URL or the path of an Optuna journal file, taken from --storage or, by default,
from the environment variable LITLAB_STORAGE (the one the README's PostgreSQL sweeps read): a URL holding
a password then never appears on a command line, in shell history or in the process list, and is printed
with its password masked.

    LITLAB_STORAGE=sqlite:///logs/optuna.db python scripts/dashboard.py     # then open http://127.0.0.1:8080
    python scripts/dashboard.py --storage logs/optuna.journal --port 8081
    read -rs LITLAB_STORAGE && export LITLAB_STORAGE && python scripts/dashboard.py   # type or paste the URL
"""

import argparse
import os
import sys
from pathlib import Path

import optuna_dashboard
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

ENV_VAR = "LITLAB_STORAGE"


def masked_storage(storage: str) -> str:
    """The storage as it may be printed: a URL without its password, a journal file by its path."""
    if "://" not in storage:
        return storage
    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparsable URL>"


def check_storage(storage: str) -> None:
    """Fails with one sentence when the storage cannot be read: no such file, or a database out of reach."""
    if "://" not in storage:
        if not Path(storage).is_file():
            raise ValueError(f"The journal file {storage} does not exist: pass the path of an Optuna journal file.")
        return
    try:
        url = make_url(storage)
        # connecting to a missing SQLite file would create an empty one
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise ValueError(f"The SQLite file {url.database} does not exist: check the path in {storage}.")
        with create_engine(url).connect():
            pass
    except (ArgumentError, SQLAlchemyError, ImportError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"Cannot open the study storage {masked_storage(storage)} ({reason}): check the URL."
        ) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=os.environ.get(ENV_VAR), help=f"URL or journal file (default: ${ENV_VAR})")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if not args.storage:
        sys.exit(f"No study storage given: set {ENV_VAR} to its URL (e.g. sqlite:///logs/optuna.db) or pass --storage.")
    try:
        check_storage(args.storage)
    except ValueError as err:
        sys.exit(str(err))
    print(f"optuna-dashboard on {masked_storage(args.storage)}: http://{args.host}:{args.port}", flush=True)
    try:
        optuna_dashboard.run_server(args.storage, host=args.host, port=args.port)
    except OSError as err:
        sys.exit(f"Cannot listen on {args.host}:{args.port} ({err.strerror}): pass another --port.")


if __name__ == "__main__":
    main()
