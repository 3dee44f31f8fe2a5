"""Connections, transactions and migrations, for SQLite and PostgreSQL alike.

Writes go through `Database.write()`: one transaction that holds the change and its event.
On SQLite it starts with BEGIN IMMEDIATE, so writers queue for the lock up front instead of
failing half-way (on PostgreSQL, `events.append` orders the commits).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from .config import ConfigError, Settings

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutOfDate(RuntimeError):
    """The database needs `dateline init` before this version can use it."""


APPENDED = "dateline_appended"  # in a connection's info: this transaction appended events


def mark_appended(conn: Connection) -> None:
    """The transaction on `conn` appends to the event log: tell the listeners after commit."""
    conn.info[APPENDED] = True


def normalize_url(url: str) -> str:
    """Plain `postgresql://` URLs use psycopg 3 (the `postgresql` extra installs it)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._commit_listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        # SQLite has one writer at a time, and its busy handler is not first come, first
        # served: under a burst of posts a writer could keep losing the race past the busy
        # timeout. Writers of this process queue here instead, in order; only other
        # processes' writers meet the busy handler.
        self._writers: AbstractContextManager[Any] = threading.RLock() if self.is_sqlite else nullcontext()
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 15}
            )
            self._configure_sqlite(sqlite_synchronous.upper())
        else:
            if importlib.util.find_spec("psycopg") is None:
                raise ConfigError("PostgreSQL needs its driver: pip install 'dateline[postgresql]'")
            self.engine = create_engine(
                self.url, pool_size=10, max_overflow=30, pool_pre_ping=True, pool_timeout=15
            )

        # Statements this process has sent, for /healthz: what a reconnect storm costs the
        # database is read there (benchmarks/reconnect_storm.py).
        self.queries = 0
        self._queries_lock = threading.Lock()

        @event.listens_for(self.engine, "before_cursor_execute")
        def count(*_: Any) -> None:
            with self._queries_lock:
                self.queries += 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url, settings.sqlite_synchronous)

    def _configure_sqlite(self, synchronous: str) -> None:
        @event.listens_for(self.engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite would otherwise defer it).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so an acknowledged write survives a power cut.
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("dateline_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; once it has committed, if it appended events to the log
        (`mark_appended`), the commit listeners learn that the log has grown."""
        with self._writers, self.engine.connect().execution_options(dateline_write=True) as conn:
            conn.info.pop(APPENDED, None)  # left by a transaction that rolled back
            with conn.begin():
                yield conn
            appended = conn.info.pop(APPENDED, False)
        if appended:
            for listener in list(self._commit_listeners):
                listener()

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: Callable[[], None]) -> None:
        with self._listeners_lock:
            if listener in self._commit_listeners:
                self._commit_listeners.remove(listener)

    # --- migrations -------------------------------------------------------------------

    def _alembic_config(self, conn: Connection) -> AlembicConfig:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        return config

    @contextmanager
    def migrating(self) -> Iterator[Connection]:
        """The transaction migrations run in. On SQLite, with foreign keys off, as SQLite asks
        for schema changes: Alembic's batch mode rebuilds a table by copying it and dropping
        the old one, and with foreign keys on, that drop would first delete every row that
        refers to it (ON DELETE CASCADE: a story's entries). Checked before the commit."""
        with self.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:  # before BEGIN: inside a transaction the pragma does nothing
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with conn.begin():
                    yield conn
                    if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                        raise RuntimeError("a migration left rows that refer to rows no longer there")
            finally:
                if sqlite:
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]

    def migrate(self) -> None:
        """Create the schema or bring it up to date (`dateline init`)."""
        with self.migrating() as conn:
            command.upgrade(self._alembic_config(conn), "head")

    def schema_status(self) -> tuple[str | None, str]:
        """(current revision, newest revision)."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()
        return current, head or ""

    def check_schema(self) -> None:
        current, head = self.schema_status()
        if current != head:
            where = "is empty" if current is None else f"is at revision {current}"
            raise SchemaOutOfDate(
                f"the database {where}, this version needs {head}: run `dateline init` first"
            )

    def dispose(self) -> None:
        self.engine.dispose()
