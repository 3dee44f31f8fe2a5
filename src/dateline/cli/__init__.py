"""The `dateline` command: serve, demo, init, and the newsroom's chores.

Every option also reads a DATELINE_* environment variable (see docs/configuration.md).
Errors print one line and exit non-zero; a traceback means a bug.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import resource
from typing import Any

import click

from .. import __version__
from ..config import env_name
from ..db import Database
from ..live.brokers import probe
from ..push import subscriptions
from ..web.public_url import public_url_warning
from . import accounts
from .common import DatelineGroup, database_option, ready_database, require_existing, require_folder, schema_checked
from .common import settings as _settings


@click.group(cls=DatelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dateline")
def main() -> None:
    """Dateline: live news coverage. Run `dateline demo` to see it at work."""


main.add_command(accounts.user)
main.add_command(accounts.token)


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
    from uvicorn.supervisors.multiprocess import Multiprocess

    from ..app import create_app
    from ..web import listening
    from ..web.first_read import FirstRead

    settings = _settings(database_url=database_url, host=host, port=port, workers=workers, broker=broker)
    require_existing(settings.database_url)
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
        backlog=settings.listen_backlog,  # a wave of readers reconnecting at once
        server_header=False, timeout_graceful_shutdown=2,  # live streams never end by themselves
        # A reader's stream is handed over at its first read; anything else gets the limits on
        # slow and unfinished requests (web/first_read.py, web/server.py).
        http=FirstRead,
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
    if not (settings.listen_reuseport and listening.available()):
        uvicorn.run("dateline.app:create_app", factory=True, workers=count, **options)
        return
    # What uvicorn.run does for several workers, with a listening socket for each (web/listening.py).
    config = uvicorn.Config("dateline.app:create_app", factory=True, workers=count, **options)
    try:
        reserved = listening.reserve(settings.host, settings.port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    try:
        Multiprocess(config, sockets=[listening.OwnSocket(reserved)]).run()  # type: ignore[list-item]
    except KeyboardInterrupt:
        pass
    finally:
        reserved.close()


@main.command()
@database_option
def init(database_url: str | None) -> None:
    """Create the database, or migrate it to this version. A new SQLite file's folder must
    exist already."""
    settings = _settings(database_url=database_url)
    new_file = require_folder(settings.database_url)
    db = Database.from_settings(settings)
    try:
        before, head = db.schema_status()
        ready_database(settings, db)
    finally:
        db.dispose()
    if new_file is not None:
        click.echo(f"Created the database {new_file}: it is ready (revision {head}).")
    elif before == head:
        click.echo(f"The database is up to date (revision {head}).")
    elif before is None:
        click.echo(f"The database is ready (revision {head}).")
    else:
        click.echo(f"Migrated the database from revision {before}: it is ready (revision {head}).")


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

    from ..app import create_app
    from ..demo import SimulatedReporter, seed, wait_until_up

    settings = _settings(database_url=database_url, host=host, port=port)
    require_folder(settings.database_url)
    db = ready_database(settings)
    seeded = seed(db)
    slug, token = seeded.slug, seeded.token
    base = f"http://{host}:{port}"
    click.echo(
        f"\n  Reader:      {base}/stories/{slug}\n"
        f"  Front page:  {base}/\n"
        f"  Newsroom:    {base}/newsroom: user '{seeded.username}' (role {seeded.role}), password {seeded.password}\n"
        f"  API token:   {token}\n"
        f"  Try:         curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n"
        f"                 -d '{{\"body\": \"Hello from the newsroom\"}}' {base}/api/v1/stories/{slug}/entries\n"
    )
    reporter = SimulatedReporter(base, token, slug, interval, start=seeded.posted)

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
def push() -> None:
    """Browser notifications."""


@push.command("rotate-keys")
@database_option
def push_rotate_keys(database_url: str | None) -> None:
    """Make a new VAPID key pair. Browsers subscribed with the old key must subscribe again."""
    db = schema_checked(database_url)
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

    from ..stories.media import import_folder

    settings = _settings(database_url=database_url, media_dir=media_dir)
    folder = Path(settings.media_dir)
    if not folder.is_dir():
        raise click.ClickException(f"no folder {str(folder)!r} (DATELINE_MEDIA_DIR): nothing to import")
    require_existing(settings.database_url)
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
    from ..live.pruner import prune_log
    from ..times import now

    settings = _settings(database_url=database_url)
    require_existing(settings.database_url)
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
