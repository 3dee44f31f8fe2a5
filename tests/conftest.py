"""Fixtures: a real database per test (SQLite and PostgreSQL), an app, named personas.

Every API test runs twice, on SQLite and on the PostgreSQL server of this machine. Without
PostgreSQL the second run is skipped with a message; under CI (CI=true) it fails instead.

Personas, one per role: ada (admin), eve (editor), rita and ron (reporters).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from dateline.accounts import users as accounts
from dateline.accounts.users import Role
from dateline.app import create_app
from dateline.config import Settings
from dateline.db import Database, normalize_url
from dateline.schema import metadata

POSTGRES_URL = os.environ.get("DATELINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # "gw0", "gw1"... under pytest -n
PERSONAS = {"ada": Role.admin, "eve": Role.editor, "rita": Role.reporter, "ron": Role.reporter}
PASSWORD = "correct horse battery"
PASSWORD_HASH = accounts.hash_password(PASSWORD)


def missing_service(what: str) -> NoReturn:
    """Skip on a laptop without the service; fail under CI, where it must be there."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: the service must be running)")
    pytest.skip(what)


@dataclass
class Site:
    """A migrated database with the personas and their API tokens."""

    url: str
    db: Database
    tokens: dict[str, str]

    def auth(self, persona: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[persona]}"}


def _add_personas(db: Database) -> dict[str, str]:
    tokens = {}
    with db.write() as conn:
        for name, role in PERSONAS.items():
            user = accounts.create_user(conn, name, PASSWORD, role, name.title())
            tokens[name] = accounts.create_token(conn, user, "tests")
    return tokens


# --- SQLite: migrate a template once, copy it per test -------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    tokens = _add_personas(db)
    db.dispose()
    return path, tokens


# --- PostgreSQL: one database per test session, emptied between tests ---------------------


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[tuple[str, dict[str, str]]]:
    admin_url = normalize_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not here"
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.__class__.__name__}")
    # One database per pytest-xdist worker (gw0, gw1...): workers never share rows or ids.
    name = f"dateline_test_{XDIST_WORKER}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    db.migrate()
    tokens = _add_personas(db)
    db.dispose()
    yield url, tokens
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database of its own (not migrated): SQLite in the test's
    folder, or a PostgreSQL database created for the test and dropped after it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin_url = normalize_url(POSTGRES_URL)
    name = f"dateline_empty_{uuid.uuid4().hex[:12]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not here"
        missing_service(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.__class__.__name__}")
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


CONTENT_TABLES = (
    "idempotency_keys", "events", "entry_revisions", "entries", "stories", "sessions", "login_failures",
    "push_subscriptions", "push_keys", "push_notifications", "push_deliveries", "media", "rate_counters",
)


class PostgresReset:
    """Empties the worker's PostgreSQL database between tests, as a fresh migrated one with
    the personas: DELETE (children first) and the id sequences set back to 1. For a few rows,
    about a third of the cost of TRUNCATE ... RESTART IDENTITY (~70 ms a test here), which
    pays a fixed price per table. One engine for the session: no connection set up per test."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(normalize_url(url))
        tables = [t for t in reversed(metadata.sorted_tables) if t.name in CONTENT_TABLES]
        assert {t.name for t in tables} == set(CONTENT_TABLES), "CONTENT_TABLES names a table schema.py lacks"
        with self.engine.connect() as conn:
            sequences = [conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": t.name}).scalar()
                         for t in tables if "id" in t.c]
        statements = [f"DELETE FROM {t.name}" for t in tables]
        statements += [f"SELECT setval('{seq}', 1, false)" for seq in sequences if seq]
        # Tests may change personas (disable, role, password) or add users: put them back.
        statements += ["DELETE FROM users WHERE username NOT IN ('ada', 'eve', 'rita', 'ron')",
                       "UPDATE users SET disabled = false",
                       "DELETE FROM api_tokens WHERE label != 'tests'",  # and tokens revoked or used
                       "UPDATE api_tokens SET revoked_at = NULL, last_used_at = NULL"]
        self.script = ";\n".join(statements)

    def __call__(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self.script)
            for name, role in PERSONAS.items():
                conn.execute(text("UPDATE users SET role = :r, password_hash = :h WHERE username = :n"),
                             {"r": role.value, "h": PASSWORD_HASH, "n": name})

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres_reset(postgres_database: tuple[str, dict[str, str]]) -> Iterator[PostgresReset]:
    reset = PostgresReset(postgres_database[0])
    yield reset
    reset.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "sqlite":
        template, tokens = request.getfixturevalue("sqlite_template")
        path = tmp_path / "dateline.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
    else:
        url, tokens = request.getfixturevalue("postgres_database")
        request.getfixturevalue("postgres_reset")()
    db = Database(url)
    yield Site(url, db, tokens)
    db.dispose()


@pytest.fixture
def pg_site(postgres_database: tuple[str, dict[str, str]], postgres_reset: PostgresReset) -> Iterator[Site]:
    """PostgreSQL alone, emptied: for tests of several nodes, which only it can serve."""
    url, tokens = postgres_database
    postgres_reset()
    db = Database(url)
    yield Site(url, db, tokens)
    db.dispose()


@pytest.fixture
def settings(site: Site, tmp_path: Path) -> Settings:
    return Settings.from_env({}, database_url=site.url, media_dir=str(tmp_path / "media"))


@pytest.fixture
def client(site: Site, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, site.db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def live_story(client: TestClient, site: Site) -> str:
    """A live story created by eve; returns its slug."""
    response = client.post(
        "/api/v1/stories",
        json={"headline": "Second night of protests", "dateline": "DRAVONNE", "status": "live"},
        headers=site.auth("eve"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["slug"])


def table_counts(db: Database) -> dict[str, int]:
    """Rows in every table: to show that a refused request changed nothing."""
    with db.read() as conn:
        return {t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar_one() for t in metadata.sorted_tables}


def past_this_second() -> None:
    """Wait until the second of every change made so far is over: only then may an answer
    carry `Last-Modified` (web/http_cache.py)."""
    time.sleep(1.001 - time.time() % 1)


# --- real server processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`dateline serve` in a subprocess, the way an operator runs it."""

    def __init__(self, database_url: str, port: int | None = None, *extra: str,
                 env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.extra = extra
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()
        self.media_dir = tempfile.mkdtemp(prefix="dateline-media-")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "ServerProcess":
        env = {**os.environ, "DATELINE_DATABASE_URL": self.database_url, "DATELINE_LOG_LEVEL": "warning",
               "DATELINE_MEDIA_DIR": self.media_dir, **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dateline", "serve", "--port", str(self.port), *self.extra],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/api/v1/stories", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL to every process of the server: no shutdown handler runs, as in a crash."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        shutil.rmtree(self.media_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collectable_after_each_test() -> Iterator[None]:
    """The app's start-up calls gc.freeze() (app.py: right for a server process, which starts
    once). A test process starts hundreds of apps: without this, everything alive at each start
    (apps, engines, sockets, earlier tests' leftovers) would stay in the permanent generation,
    never collected, and a leaked socket's ResourceWarning would never show."""
    yield
    gc.unfreeze()
