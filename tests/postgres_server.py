"""A PostgreSQL server of the tests' own, from Debian's postgresql package, listening on 127.0.0.1 only.

The server keeps its data in a new temporary folder, trusts every local login (no passwords) and
runs without fsync, because its data only lives for one test session. PostgreSQL does not run as
root, so as root the server runs as the package's `postgres` account.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "grader"
INSTALL_COMMAND = "apt-get install -y postgresql"
START_SECONDS = 60


def find_bindir() -> Path | None:
    """Return the folder of initdb and pg_ctl of the newest installed PostgreSQL, or None."""
    versions = {}
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parent.parent.name
        versions[int(version) if version.isdigit() else 0] = Path(initdb).parent
    if versions:
        return versions[max(versions)]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1 and a free port; start() it, then create_database() per test."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="autograder-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = 0
        self.account = None
        if os.geteuid() == 0:
            try:
                self.account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("PostgreSQL does not run as root and this machine has no 'postgres' account. "
                                   f"Reinstall the server with: {INSTALL_COMMAND}") from None
            # Only this folder of the tests' own changes owner, so that the server may write its data.
            os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        prefix = []
        if self.account is not None:
            prefix = ["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}", "--init-groups"]
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=START_SECONDS + 30)

    def start(self) -> None:
        """Create the data folder and start the server; raise RuntimeError with its log when it fails."""
        created = self._run(str(self.bindir / "initdb"), "--pgdata", str(self.data), "--username", USER,
                            "--auth", "trust", "--encoding", "UTF8", "--no-sync")
        if created.returncode != 0:
            raise RuntimeError(f"initdb failed: {created.stderr.strip()[-2000:]}")
        self.port = free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        started = self._run(str(self.bindir / "pg_ctl"), "--pgdata", str(self.data), "--log", str(self.log),
                            "--wait", "--timeout", str(START_SECONDS), "--options", options, "start")
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its data."""
        if self.data.exists():
            self._run(str(self.bindir / "pg_ctl"), "--pgdata", str(self.data), "--mode", "fast", "--wait", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
