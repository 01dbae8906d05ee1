"""Real servers for tests: `Server` (a process in its own process group, waited for over HTTP and
stopped group and all), a throwaway PostgreSQL cluster on 127.0.0.1 (`start_postgres`, fixture
`postgres`) and `mlflow server` on a backend store of the test's choosing (`start_mlflow_server`,
factory fixture `mlflow_server`).

Tests that need PostgreSQL skip where its server binaries are absent (CI installs them: `.ci/run`),
or fail instead when GAN_STUDY_REQUIRE_POSTGRES=1, so that CI cannot pass by skipping them.
Test modules import the fixtures they use: `from servers import postgres  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

SERVER_START_S = 150  # mlflow server takes half a minute to import on a busy 2-core machine
PG_START_S = 60
PG_BINARIES = ("initdb", "pg_ctl", "postgres")
PG_USER, PG_PASSWORD = "gan", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own process group, stopped (group and all) by `stop`."""

    def __init__(self, args: list[str], url: str, log: Path, env: dict[str, str] | None = None):
        self.url, self.log = url, log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env=env)

    def wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.proc.args[:3]} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        pytest.fail(f"{self.url} not ready after {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server's own group: it and its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._log.close()


# ---------------------------------------------------------------- PostgreSQL


def _pg_version(bindir: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", Path(bindir).parent.name)) or (0,)


def find_postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: initdb's on PATH (its real folder, since
    pg_ctl starts the `postgres` beside its own real path), else the newest of Debian's
    /usr/lib/postgresql/*/bin (Debian keeps the server binaries off PATH)."""
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version, reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder, name), os.X_OK) for name in PG_BINARIES):
            return Path(folder)
    return None


def _missing(reason: str):
    if os.environ.get("GAN_STUDY_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (GAN_STUDY_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


def _reachable_tmp() -> str:
    """A temp folder every user can traverse: the server may run as another user than the tests."""
    tmp = Path(tempfile.gettempdir()).resolve()
    if all(p.stat().st_mode & 0o001 for p in [tmp, *tmp.parents]):
        return str(tmp)
    return "/tmp"


class Postgres:
    """A running cluster: `create_database` hands out fresh databases owned by the role `gan`
    (password auth over TCP on 127.0.0.1, as a remote machine would connect), `query` reads them."""

    def __init__(self, bindir: Path, base: Path, port: int):
        self.bindir, self.base, self.port = bindir, base, port
        self.host, self.user, self.password = "127.0.0.1", PG_USER, PG_PASSWORD
        self._names = itertools.count(1)

    def url(self, dbname: str) -> str:
        """SQLAlchemy (and libpq) URL of database `dbname` as the role `gan`."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    def _admin(self):
        import psycopg2

        # The superuser comes in through the unix socket (trust), never over TCP.
        conn = psycopg2.connect(host=str(self.base), port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        return conn

    def admin(self, sql: str) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database (named `name`, or db_N) owned by `gan`; returns its URL."""
        name = name or f"db_{next(self._names)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        self.admin(f"CREATE DATABASE {name} OWNER {self.user}")
        return self.url(name)

    def query(self, url: str, sql: str, params: tuple | dict | None = None) -> list[tuple]:
        """Rows of `sql` run on the database at `url` (a URL from `create_database`); `params` fill
        its %s placeholders (without them a literal % needs no doubling)."""
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """initdb a cluster in a fresh temp folder, start it on 127.0.0.1 at a free port, create the role
    `gan`; stop the server and delete the folder on the way out, whatever happened."""
    bindir = find_postgres_bin()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl, postgres) are neither on PATH nor in "
                 "/usr/lib/postgresql/*/bin (apt-get install postgresql)")
    if importlib.util.find_spec("psycopg2") is None:
        _missing("psycopg2 is not installed (pip install psycopg2-binary)")
    run_as: dict = {}
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    base = Path(tempfile.mkdtemp(prefix="gan-pg-", dir=_reachable_tmp()))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    data, log = base / "data", base / "postgres.log"

    def pg(*args: str, check: bool = True, timeout: float = PG_START_S) -> subprocess.CompletedProcess:
        return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True, check=check,
                              timeout=timeout, cwd=base, **run_as)

    started = None
    try:
        try:
            pg("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
               "-E", "UTF8", "--locale=C", "--no-sync")
        except subprocess.CalledProcessError as e:
            pytest.fail(f"initdb failed ({e.returncode}):\n{e.stdout}\n{e.stderr}")
        # Durability off (here and initdb --no-sync): the cluster lives for one test session.
        with open(data / "postgresql.conf", "a") as conf:  # appending keeps the file's owner
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "password_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\n"
                       "full_page_writes = off\n")
        for _ in range(3):  # the free port may be taken between picking and binding it
            port = free_port()
            r = pg("pg_ctl", "-D", str(data), "-l", str(log), "-o", f"-p {port}", "-w", "-t", str(PG_START_S),
                   "start", check=False, timeout=PG_START_S + 30)
            if r.returncode == 0:
                started = Postgres(bindir, base, port)
                break
            if "could not bind" not in (log.read_text(errors="replace") if log.exists() else ""):
                break
        if started is None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n{tail}")
        started.admin(f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'")
        yield started
    finally:
        pidfile = data / "postmaster.pid"
        if started is not None or pidfile.exists():
            try:
                stopped = pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop", check=False,
                             timeout=90).returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped and pidfile.exists():  # a server left running would outlive the test session
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster per test session; each test takes fresh databases from it."""
    with start_postgres() as pg:
        yield pg


# ---------------------------------------------------------------- MLflow


@contextlib.contextmanager
def start_mlflow_server(backend_uri: str, artifacts_dir: Path, log: Path) -> Iterator[Server]:
    """`mlflow server` on 127.0.0.1 at a free port, storing runs in `backend_uri` and artifacts
    (uploaded through the server) in `artifacts_dir`; up once /health answers, stopped on exit."""
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}  # tests stay offline
    server = Server([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
                     "--artifacts-destination", str(artifacts_dir), "--host", "127.0.0.1", "--port", str(port),
                     "--workers", "1"],
                    f"http://127.0.0.1:{port}", log, env=env)
    try:
        server.wait_ready("/health", SERVER_START_S)
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_server(tmp_path_factory) -> Iterator[Callable[[str, Path], Server]]:
    """Factory: `mlflow_server(backend_uri, artifacts_dir)` starts a server (log in a temp folder)
    and returns it; every server started is stopped when the test ends."""
    with contextlib.ExitStack() as stack:
        def start(backend_uri: str, artifacts_dir: Path) -> Server:
            log = tmp_path_factory.mktemp("mlflow-server") / "mlflow.log"
            return stack.enter_context(start_mlflow_server(backend_uri, artifacts_dir, log))

        yield start
