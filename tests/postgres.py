"""A real PostgreSQL 15 for the tests, started from Debian's binaries in a temporary directory.

``postgres_server`` (session) starts one server on a free loopback port and stops exactly the
process it started; ``postgres_url`` gives each test a fresh, empty database on it. Tests that
use them are skipped, with the reason, only when the binaries are not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("MADOGUCHI_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_TIMEOUT = 30.0


@dataclass
class PostgresServer:
    """One running test server: where it listens and how to reach it."""

    port: int
    socket_dir: Path
    process: subprocess.Popen[bytes]
    user: str | None

    def url(self, database: str = "postgres") -> str:
        """An asyncpg SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> None:
        """Run one SQL statement as the superuser, through the unix socket."""
        cmd = [str(BIN_DIR / "psql"), "-h", str(self.socket_dir), "-p", str(self.port)]
        cmd += ["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql]
        subprocess.run(cmd, check=True, capture_output=True, user=self.user)

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing what is still connected to it."""
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    # initdb and postgres refuse to run as root
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return "postgres"


def _wait_ready(server: PostgresServer, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    ready = [str(BIN_DIR / "pg_isready"), "-q", "-h", str(server.socket_dir)]
    ready += ["-p", str(server.port), "-U", "postgres"]
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"postgres exited early:\n{log.read_text(errors='replace')}")
        if subprocess.run(ready, check=False).returncode == 0:
            return
        time.sleep(0.05)
    raise RuntimeError(f"postgres not ready in {START_TIMEOUT}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is postgres's "fast shutdown"; only the PID started here is signalled
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server on 127.0.0.1, for the whole test session."""
    if not (BIN_DIR / "initdb").is_file() or not (BIN_DIR / "postgres").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {BIN_DIR} (apt-get install postgresql)")
    user = _run_as()
    # not under pytest's tmp dir: its parents are private to root, and postgres must enter it
    root = Path(tempfile.mkdtemp(prefix="madoguchi-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
    sockets.mkdir()
    if user is not None:
        for path in (root, sockets):
            shutil.chown(path, user, user)
    process: subprocess.Popen[bytes] | None = None
    try:
        initdb = [str(BIN_DIR / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        initdb += ["-E", "UTF8", "--no-locale", "--no-sync"]
        subprocess.run(initdb, check=True, capture_output=True, user=user, cwd=root)
        port = _free_port()
        args = [str(BIN_DIR / "postgres"), "-D", str(data), "-p", str(port)]
        args += ["-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                args, stdout=log_file, stderr=subprocess.STDOUT, user=user, cwd=root
            )
        server = PostgresServer(port=port, socket_dir=sockets, process=process, user=user)
        _wait_ready(server, log)
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An asyncpg URL of a fresh, empty database, dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres_server.drop_database(name)
