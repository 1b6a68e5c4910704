"""The gradebook database of a grading run: a SQLite file of its own, or a shared PostgreSQL database.

nbgrader keeps its gradebook in any database that SQLAlchemy reaches through a URL (nbgrader's
``db_url``). This pipeline supports two kinds:

- ``sqlite:///PATH``, the default: a new file in each run's workspace;
- ``postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE``, a database that several graders
  share. The psycopg 3 driver is pinned in requirements.txt. A plain ``postgresql://`` URL is
  read as psycopg 3, because SQLAlchemy would otherwise load psycopg2, which is not installed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from nbgrader.api import Gradebook
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Key of the PostgreSQL advisory lock that graders sharing a database take while they change its
# schema or assignments (any fixed 64-bit number, the same for every grader).
SCHEMA_LOCK_KEY = 0x6E62677261646572
POSTGRES_DRIVER = "postgresql+psycopg"
EXAMPLE_URL = "postgresql+psycopg://grader@127.0.0.1:5432/week04"


class DatabaseError(Exception):
    """A gradebook URL that is invalid, names an unsupported database, or cannot be reached."""


def parse_db_url(db_url: str) -> URL:
    """Return db_url as an SQLAlchemy URL with a supported driver, or raise DatabaseError."""
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise DatabaseError(f"invalid database URL {db_url!r}: write it as {EXAMPLE_URL} or "
                            "sqlite:///path/to/gradebook.db") from None
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseError(f"unsupported database {url.get_backend_name()!r} in {display_url(url)}: the gradebook "
                            f"can be PostgreSQL ({EXAMPLE_URL}) or SQLite (sqlite:///path/to/gradebook.db)")
    if url.drivername == "postgresql":
        url = url.set(drivername=POSTGRES_DRIVER)
    elif url.get_backend_name() == "postgresql" and url.drivername != POSTGRES_DRIVER:
        raise DatabaseError(f"unsupported PostgreSQL driver {url.get_driver_name()!r} in {display_url(url)}: "
                            f"only psycopg 3 is installed, so write the URL as {POSTGRES_DRIVER}://...")
    return url


def display_url(url: URL | str) -> str:
    """Return a database URL for messages, with its password hidden."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return repr(url)
    return url.render_as_string(hide_password=True)


def check_database(db_url: str) -> str:
    """Connect to a gradebook database once and return its URL as nbgrader should use it.

    Raises DatabaseError, naming the URL without its password, when the URL is invalid or the
    server cannot be reached, so that a run stops before it grades anyone.
    """
    url = parse_db_url(db_url)
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as err:
            reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
            raise DatabaseError(f"cannot connect to the gradebook database {display_url(url)}: {reason}. Check that "
                                "the PostgreSQL server runs, that the database exists (createdb NAME) and that "
                                "the user may log in, or leave out --db-url to use a SQLite file") from None
        finally:
            engine.dispose()
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def open_gradebook(db_url: str) -> Iterator[Gradebook]:
    """Open nbgrader's Gradebook and close its connections on exit.

    Gradebook.close() ends the session but keeps the engine's pool of connections open, which
    would hold one PostgreSQL connection per call until garbage collection.
    """
    # On a new database nbgrader runs `alembic` by name, which lives beside this Python.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [bindir, os.environ.get("PATH")]))
    gradebook = Gradebook(db_url)
    try:
        yield gradebook
    finally:
        gradebook.close()
        gradebook.engine.dispose()


@contextlib.contextmanager
def exclusive_setup(db_url: str) -> Iterator[None]:
    """Hold a lock on a shared gradebook database that other graders' runs wait for; a no-op for SQLite.

    nbgrader creates its tables and assignments without locking, so two graders that start
    together on a new PostgreSQL database fail with a unique-key violation. Within this block,
    other runs of this pipeline wait, and the tables exist when it ends.
    """
    url = parse_db_url(db_url)
    if url.get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                with open_gradebook(db_url):
                    pass  # creates the tables of a new database
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()
