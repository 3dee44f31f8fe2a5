"""What every `dateline` command shares: one-line errors, the --database option, and finding
the database the operator meant (never a new empty one made by mistake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ..config import ConfigError, Settings
from ..db import Database, SchemaOutOfDate, normalize_url
from ..errors import Refused
from ..live.brokers import BrokerUnavailable
from ..push import subscriptions

EXPECTED_ERRORS = (ConfigError, SchemaOutOfDate, Refused, BrokerUnavailable)


class DatelineGroup(click.Group):
    """Turns expected failures into one-line messages, and runs `serve` by default."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, args or ["serve"])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unknown error"
            raise click.ClickException(f"cannot use the database: {reason}") from None


database_option = click.option(
    "--database", "database_url", envvar="DATELINE_DATABASE_URL", metavar="URL",
    help="sqlite:///file.db (default: dateline.db here) or postgresql://… [env DATELINE_DATABASE_URL]",
)


def settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)  # a ConfigError is the group's one-line message


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL, made absolute (a relative one is in the current folder)."""
    url = make_url(normalize_url(database_url))
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().absolute()


def require_existing(database_url: str) -> None:
    """Refuse a SQLite file that is not there: opening it would create an empty one, often a
    stray `dateline.db` in whatever folder the shell was in."""
    path = sqlite_file(database_url)
    if path is not None and not path.exists():
        raise click.ClickException(
            f"no database at {path}; run `dateline init` first, or point DATELINE_DATABASE_URL "
            "(or --database) at the one you made"
        )


def require_folder(database_url: str) -> Path | None:
    """The SQLite file `init` is about to create (None if it exists, or is not SQLite). Its
    folder must exist already: a typo in the path should not make a new tree of folders."""
    path = sqlite_file(database_url)
    if path is None or path.exists():
        return None
    if not path.parent.is_dir():
        raise click.ClickException(
            f"no folder {path.parent} for the database {path.name}: create it first "
            f"(mkdir -p {path.parent}), or check DATELINE_DATABASE_URL"
        )
    return path


def schema_checked(database_url: str | None) -> Database:
    """The database of a chore: it must be initialised already (`dateline init`)."""
    chosen = settings(database_url=database_url)
    require_existing(chosen.database_url)
    db = Database.from_settings(chosen)
    db.check_schema()
    return db


def ready_database(chosen: Settings, db: Database | None = None) -> Database:
    """Migrate the schema and make sure a VAPID key pair exists (it signs notifications)."""
    db = db or Database.from_settings(chosen)
    db.migrate()
    with db.write() as conn:
        subscriptions.ensure_key(conn)
    return db
