"""The `dateline` command: serve, demo, init, and the newsroom's chores.

Every option also reads a DATELINE_* environment variable (see docs/configuration.md).
Errors print one line and exit non-zero; a traceback means a bug.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import resource
import sys
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from . import __version__
from .accounts import sessions
from .accounts import users as accounts
from .accounts.users import Role
from .config import ConfigError, Settings, env_name
from .db import Database, SchemaOutOfDate
from .errors import Refused
from .live.brokers import BrokerUnavailable, probe
from .push import subscriptions
from .times import iso
from .web.public_url import public_url_warning

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


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)  # a ConfigError is the group's one-line message


def _schema_checked(database_url: str | None) -> Database:
    """The database of a chore: it must be initialised already (`dateline init`)."""
    db = Database.from_settings(_settings(database_url=database_url))
    db.check_schema()
    return db


def _ready_database(settings: Settings, db: Database | None = None) -> Database:
    """Migrate the schema and make sure a VAPID key pair exists (it signs notifications)."""
    db = db or Database.from_settings(settings)
    db.migrate()
    with db.write() as conn:
        subscriptions.ensure_key(conn)
    return db


@click.group(cls=DatelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dateline")
def main() -> None:
    """Dateline: live news coverage. Run `dateline demo` to see it at work."""


@main.command()
@database_option
@click.option("--host", envvar="DATELINE_HOST", help="Address to listen on [env DATELINE_HOST; default 127.0.0.1]")
@click.option("--port", envvar="DATELINE_PORT", type=int, help="Port [env DATELINE_PORT; default 8000]")
@click.option("--workers", envvar="DATELINE_WORKERS", type=click.IntRange(0, 256),
              help="Server processes sharing the port [env DATELINE_WORKERS; default one per core]")
@click.option("--broker", envvar="DATELINE_BROKER", metavar="URL",
              help="local, none, postgresql, redis://host:port/db or nats://host:port "
                   "[env DATELINE_BROKER; default local]")
def serve(database_url: str | None, host: str | None, port: int | None, workers: int | None,
          broker: str | None) -> None:
    """Run the server (the database must be initialised with `dateline init`)."""
    import uvicorn

    from .app import create_app
    from .web.server import HttpProtocol

    settings = _settings(database_url=database_url, host=host, port=port, workers=workers, broker=broker)
    db = Database.from_settings(settings)
    db.check_schema()
    asyncio.run(probe(settings.broker, settings.database_url))  # one clear line if it is unreachable
    # Every live reader is an open file: take all the system allows (the workers inherit it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    count = settings.workers or os.cpu_count() or 1
    if (warning := public_url_warning(settings.public_url, settings.host)) is not None:
        click.echo(warning, err=True)
    click.echo(
        f"Dateline {__version__} on http://{settings.host}:{settings.port}/ ({count} "
        f"process{'es' if count > 1 else ''})", err=True,
    )
    options: dict[str, Any] = dict(
        host=settings.host, port=settings.port, log_level=settings.log_level, proxy_headers=True,
        server_header=False, timeout_graceful_shutdown=2,  # live streams never end by themselves
        http=HttpProtocol,  # limits on slow and unfinished requests (web/server.py)
    )
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # A worker busy fanning an update out to 19,000 readers on a starved core can miss
        # uvicorn's 5 s ping and be killed, dropping all its readers at once; 30 s is still
        # quick to replace one that really hangs.
        options["timeout_worker_healthcheck"] = 30
    if count == 1:
        try:
            uvicorn.run(create_app(settings, db), **options)
        finally:
            db.dispose()  # ours: the app disposes only a database it opened itself
        return
    db.dispose()
    # Each worker builds its own app from the environment: hand it the options given here.
    os.environ.update({env_name(k): str(getattr(settings, k)) for k in ("database_url", "host", "port", "broker")})
    uvicorn.run("dateline.app:create_app", factory=True, workers=count, **options)


@main.command()
@database_option
def init(database_url: str | None) -> None:
    """Create the database, or migrate it to this version."""
    settings = _settings(database_url=database_url)
    db = Database.from_settings(settings)
    before, head = db.schema_status()
    _ready_database(settings, db)
    if before == head:
        click.echo(f"The database is up to date (revision {head}).")
    else:
        click.echo(f"The database is ready (revision {head}).")


@main.command()
@click.option("--database", "database_url", envvar="DATELINE_DATABASE_URL", metavar="URL",
              default="sqlite:///dateline-demo.db", show_default=True, help="Where the demo keeps its data.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.2, 3600),
              help="Seconds between the simulated reporter's posts.")
def demo(database_url: str, host: str, port: int, interval: float) -> None:
    """Serve a sample live story, with a simulated reporter posting every few seconds."""
    import threading

    import uvicorn

    from .app import create_app
    from .demo import SimulatedReporter, seed, wait_until_up

    settings = _settings(database_url=database_url, host=host, port=port)
    db = _ready_database(settings)
    slug, password, token = seed(db)
    base = f"http://{host}:{port}"
    click.echo(
        f"\n  Reader:      {base}/stories/{slug}\n"
        f"  Front page:  {base}/\n"
        f"  Editor:      user 'editor', password {password}\n"
        f"  API token:   {token}\n"
        f"  Try:         curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
        f"                 -d '{{\"body\": \"Hello from the newsroom\"}}' {base}/api/v1/stories/{slug}/entries\n"
    )
    reporter = SimulatedReporter(base, token, slug, interval)

    def start_when_up() -> None:
        if wait_until_up(base):
            reporter.start()

    threading.Thread(target=start_when_up, name="demo-start", daemon=True).start()
    try:
        uvicorn.run(create_app(settings, db), host=host, port=port, log_level="warning")
    finally:
        reporter.stop()
        db.dispose()  # ours: the app disposes only a database it opened itself


@main.group()
def user() -> None:
    """Newsroom accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="reporter", show_default=True)
@click.option("--display-name", help="Name shown on posts (default: NAME).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@database_option
def user_add(name: str, role: str, display_name: str | None, password_stdin: bool, database_url: str | None) -> None:
    """Create an account and print its password."""
    db = _schema_checked(database_url)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else accounts.generate_password()
    with db.write() as conn:
        created = accounts.create_user(conn, name, password, Role(role), display_name)
    if password_stdin:
        click.echo(f"Created {created.role.value} {created.username}.", err=True)
    else:
        click.echo(f"Created {created.role.value} {created.username}; the password is:", err=True)
        click.echo(password)


@user.command("list")
@database_option
def user_list(database_url: str | None) -> None:
    """List the accounts."""
    db = _schema_checked(database_url)
    with db.read() as conn:
        for u in accounts.list_users(conn):
            click.echo(f"{u.username}\t{u.role.value}\t{'disabled' if u.disabled else 'active'}\t{u.display_name}")


def _set_disabled(name: str, disabled: bool, database_url: str | None) -> None:
    db = _schema_checked(database_url)
    with db.write() as conn:
        found = accounts.require_user(conn, name)
        accounts.update_user(conn, found, disabled=disabled)
        if disabled:
            sessions.end_all(conn, found.id)  # signed out everywhere; its tokens stop working
    click.echo(f"{'Disabled' if disabled else 'Enabled'} {found.username}.", err=True)


@user.command("disable")
@click.argument("name")
@database_option
def user_disable(name: str, database_url: str | None) -> None:
    """Disable an account: its sessions end and its tokens stop working, at once."""
    _set_disabled(name, True, database_url)


@user.command("enable")
@click.argument("name")
@database_option
def user_enable(name: str, database_url: str | None) -> None:
    """Enable a disabled account again (its tokens work again unless revoked)."""
    _set_disabled(name, False, database_url)


@user.command("set-password")
@click.argument("name")
@database_option
def user_set_password(name: str, database_url: str | None) -> None:
    """Set a new password, asked for at a prompt (or read as one line from standard input);
    the user's sessions end."""
    db = _schema_checked(database_url)
    with db.read() as conn:
        found = accounts.require_user(conn, name)
    if sys.stdin.isatty():
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    password_hash = accounts.new_password_hash(password)
    with db.write() as conn:
        accounts.store_password_hash(conn, found, password_hash)
        sessions.end_all(conn, found.id)
    click.echo(f"New password set for {found.username}; their sessions have ended.", err=True)


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (shown in listings).")
@database_option
def token_create(name: str, label: str, database_url: str | None) -> None:
    """Create an API token for the user NAME and print it alone on stdout."""
    db = _schema_checked(database_url)
    with db.write() as conn:
        found = accounts.get_user(conn, name)
        if found is None:
            raise click.ClickException(f"no user named {name!r}; create one with `dateline user add {name}`")
        if found.disabled:
            raise click.ClickException(f"the account {name!r} is disabled")
        new_token = accounts.create_token(conn, found, label or "cli")
    click.echo(new_token)  # only once it is committed


@token.command("list")
@click.option("--user", "name", help="Only this user's tokens.")
@database_option
def token_list(name: str | None, database_url: str | None) -> None:
    """List API tokens, never the tokens themselves: id, prefix, user, label, created, last
    used (to the hour), state."""
    db = _schema_checked(database_url)
    with db.read() as conn:
        owner = accounts.require_user(conn, name) if name is not None else None
        for t in accounts.list_tokens(conn, owner):
            state = f"revoked {iso(t.revoked_at)}" if t.revoked_at else "active"
            used = iso(t.last_used_at) if t.last_used_at else "never used"
            click.echo(f"{t.id}\t{t.prefix}…\t{t.username}\t{t.label}\t{iso(t.created_at)}\t{used}\t{state}")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(1, 2**62))
@database_option
def token_revoke(token_id: int, database_url: str | None) -> None:
    """Revoke the token ID (from `dateline token list`): it stops working at once; its user
    stays enabled."""
    db = _schema_checked(database_url)
    with db.write() as conn:
        found = accounts.get_token(conn, token_id)
        if found is None:
            raise click.ClickException(f"no token {token_id}; `dateline token list` shows them")
        revoked = accounts.revoke_token(conn, token_id)
    said = "Revoked" if revoked else "Already revoked:"
    click.echo(f"{said} token {token_id} ({found.prefix}…, {found.username}, {found.label}).", err=True)


@main.group()
def push() -> None:
    """Browser notifications."""


@push.command("rotate-keys")
@database_option
def push_rotate_keys(database_url: str | None) -> None:
    """Make a new VAPID key pair. Browsers subscribed with the old key must subscribe again."""
    db = _schema_checked(database_url)
    with db.write() as conn:
        public = subscriptions.create_key(conn)
    click.echo(f"New VAPID public key: {public}")


@main.group()
def media() -> None:
    """Uploaded photos."""


@media.command("import")
@click.option("--media-dir", envvar="DATELINE_MEDIA_DIR", metavar="FOLDER",
              help="The folder the photos are in [env DATELINE_MEDIA_DIR; default media]")
@database_option
def media_import(media_dir: str | None, database_url: str | None) -> None:
    """Copy the photos of the media folder into the database (those not there already), for
    a site moving to DATELINE_MEDIA_STORE=database, before it runs on several nodes."""
    from pathlib import Path

    from .stories.media import import_folder

    settings = _settings(database_url=database_url, media_dir=media_dir)
    folder = Path(settings.media_dir)
    if not folder.is_dir():
        raise click.ClickException(f"no folder {str(folder)!r} (DATELINE_MEDIA_DIR): nothing to import")
    db = Database.from_settings(settings)
    try:
        db.check_schema()
        try:
            result = import_folder(folder, db)
        except OSError as exc:
            raise click.ClickException(f"cannot read the media folder: {exc.strerror}: {exc.filename}") from None
    finally:
        db.dispose()
    for name in result.refused:
        click.echo(f"Skipped {name}: not a photo Dateline stored.", err=True)
    click.echo(f"Copied {result.copied} photo file{'' if result.copied == 1 else 's'} into the database "
               f"({result.already} already there).")
    if not settings.media_in_database:
        click.echo("The servers still serve photos from the folder: set DATELINE_MEDIA_STORE=database.", err=True)


@main.command()
@click.option("--days", type=click.IntRange(0), default=None,
              help="Delete events older than this many days [default: DATELINE_EVENT_RETENTION_DAYS; 0 keeps them]")
@database_option
def prune(days: int | None, database_url: str | None) -> None:
    """Delete old events from the log, and stale "who is editing" ones (servers do it every minute)."""
    from .live.pruner import prune_log
    from .times import now

    settings = _settings(database_url=database_url)
    db = Database.from_settings(settings)
    try:
        db.check_schema()
        deleted, _ = prune_log(db, now(), settings.event_retention_days if days is None else days)
    finally:
        db.dispose()
    click.echo(f"Deleted {deleted} event{'' if deleted == 1 else 's'}.")


@main.command("config")
def config_dump() -> None:
    """Print every setting in effect, secrets redacted."""
    for name, value in _settings().dump().items():
        click.echo(f"{name}={value}")
