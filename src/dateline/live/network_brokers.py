"""The brokers between nodes: Redis pub/sub, core NATS and PostgreSQL's LISTEN/NOTIFY.

What they share is `NetworkBroker`: coalesced announcing (the writing thread raises a flag;
one message goes out for however many commits came meanwhile), the node id on every
message (a node ignores its own), and a connection kept up with jittered backoff that
nudges its own node once it is back. Each subclass says only how to connect, listen and
publish. See brokers.py for which one a setting names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..config import redact_url

log = logging.getLogger("dateline.live")

CHANNEL = "dateline.log"  # the Redis channel and NATS subject; `?channel=` in the URL overrides
PG_CHANNEL = "dateline_log"  # LISTEN/NOTIFY names are identifiers
CONNECT_TIMEOUT = 5.0  # seconds for the first connection; a node does not start without it
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds between reconnection attempts, doubling
HEALTH_SECONDS = 5.0  # an idle connection is checked this often, so a dead one is noticed


class BrokerUnavailable(Exception):
    """The broker could not be reached when the node started."""


class NetworkBroker:
    """What the Redis, NATS and PostgreSQL brokers share: the coalesced announcing, the
    node id on every message, and a connection kept up with backoff. Subclasses say how to
    connect, listen and publish."""

    kind = "network"

    def __init__(self, url: str) -> None:
        self.url = url
        self.node = secrets.token_hex(8).encode()
        self.sent = 0  # messages published: announcing is coalesced, so at most one per commit
        self._on_nudge: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = asyncio.Event()
        self._flagged = False  # set by the writing thread; cleared in the event loop
        self._connected = False
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self, on_nudge: Callable[[], None]) -> None:
        self._on_nudge = on_nudge
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
        except ImportError:
            raise BrokerUnavailable(
                f"the {self.kind} broker needs its client library: pip install 'dateline[{self.kind}]'"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any failure means the same to the operator
            await self._disconnect()
            raise BrokerUnavailable(
                f"cannot reach the broker at {redact_url(self.url)}: {_reason(exc)}"
            ) from None
        self._connected = True
        self._tasks = [self._loop.create_task(self._keep_listening(), name=f"{self.kind}-broker-listen"),
                       self._loop.create_task(self._keep_publishing(), name=f"{self.kind}-broker-publish")]

    def announce(self) -> None:
        # Writing thread: one call_soon_threadsafe for a run of commits, none while one is due.
        if self._flagged or self._loop is None or self._closing:
            return
        self._flagged = True
        try:
            self._loop.call_soon_threadsafe(self._due.set)
        except RuntimeError:
            pass  # the loop has closed: the process is stopping

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await task
        self._connected = False
        await self._disconnect()

    def _heard(self, sender: bytes) -> None:
        if sender != self.node:
            self._on_nudge()

    async def _keep_publishing(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            self._flagged = False  # commits from here on need another message
            try:
                await self._publish()
                self.sent += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the poll covers it; the listener reconnects
                log.debug("broker: publish failed (%s)", _reason(exc))

    async def _keep_listening(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                await self._listen()  # returns or raises when the connection is lost
                raise ConnectionError("connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving on the poll; reconnect
                if self._connected:
                    log.warning("broker: lost %s (%s); following the log by polling until it is back",
                                redact_url(self.url), _reason(exc))
                self._connected = False
            await self._disconnect()
            while True:
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter
                delay = min(delay * 2, BACKOFF_MAX)
                try:
                    await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - still down
                    await self._disconnect()
            log.warning("broker: reconnected to %s", redact_url(self.url))
            self._connected = True
            delay = BACKOFF_FIRST
            self._on_nudge()  # whatever was posted elsewhere while we were away: read it now

    # --- what each broker does ------------------------------------------------------------

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _publish(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError


def _channel_of(url: str) -> tuple[str, str]:
    """The URL without `channel=`, and the channel it names (else the default)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = next((v for k, v in query if k == "channel" and v), CHANNEL)
    rest = urlencode([(k, v) for k, v in query if k != "channel"])
    return urlunsplit(parts._replace(query=rest)), channel


class RedisBroker(NetworkBroker):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._address, self.channel = _channel_of(url)
        self._client: Any = None
        self._pubsub: Any = None

    async def _connect(self) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(
            self._address, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=HEALTH_SECONDS * 2,
            socket_keepalive=True, health_check_interval=HEALTH_SECONDS,
        )
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        await self._client.ping()

    async def _listen(self) -> None:
        while True:
            message = await self._pubsub.get_message(timeout=HEALTH_SECONDS)
            if message is not None and message.get("type") == "message":
                self._heard(message["data"])

    async def _publish(self) -> None:
        await self._client.publish(self.channel, self.node)

    async def _disconnect(self) -> None:
        for closing in (self._pubsub, self._client):
            if closing is not None:
                with contextlib.suppress(Exception):  # already broken
                    await closing.aclose()
        self._pubsub = self._client = None


class NatsBroker(NetworkBroker):
    """Core NATS. nats-py's own reconnecting is off: reconnection is the shared loop's, as for
    the other brokers, and its disconnect callback tells that loop the connection is gone."""

    kind = "nats"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._address, self.subject = _channel_of(url)
        self._nc: Any = None
        self._lost: asyncio.Event = asyncio.Event()

    async def _connect(self) -> None:
        import nats

        self._lost = asyncio.Event()

        async def disconnected() -> None:
            self._lost.set()

        async def on_message(message: Any) -> None:
            self._heard(message.data)

        async def quiet(exc: Exception) -> None:
            log.debug("broker: nats: %s", _reason(exc))

        # Reconnection is ours (as for the other brokers), so one loop decides what
        # `connected` says and when the log is read after a gap.
        self._nc = await nats.connect(
            self._address, connect_timeout=CONNECT_TIMEOUT, allow_reconnect=False,
            ping_interval=int(HEALTH_SECONDS), max_outstanding_pings=2,
            disconnected_cb=disconnected, error_cb=quiet, name=f"dateline-{os.getpid()}",
        )
        await self._nc.subscribe(self.subject, cb=on_message)
        await self._nc.flush(timeout=CONNECT_TIMEOUT)

    async def _listen(self) -> None:
        await self._lost.wait()

    async def _publish(self) -> None:
        await self._nc.publish(self.subject, self.node)

    async def _disconnect(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):  # already broken
                await self._nc.close()
        self._nc = None


class PostgresBroker(NetworkBroker):
    """LISTEN/NOTIFY on the nodes' own database: no other server, a notification delivered
    to every listening session once the NOTIFY's transaction commits."""

    kind = "postgresql"

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        _, _, rest = database_url.partition("://")
        self._address = "postgresql://" + rest  # libpq's own form (no `+psycopg`)
        self._listener: Any = None
        self._publisher: Any = None

    async def _connect(self) -> None:
        import psycopg

        self._listener = await psycopg.AsyncConnection.connect(
            self._address, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT))
        await self._listener.execute(f"LISTEN {PG_CHANNEL}")
        self._publisher = await psycopg.AsyncConnection.connect(
            self._address, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT))

    async def _listen(self) -> None:
        while True:
            async for notice in self._listener.notifies(timeout=HEALTH_SECONDS):
                self._heard(notice.payload.encode())
            await self._listener.execute("SELECT 1")  # idle: make sure the session is still there

    async def _publish(self) -> None:
        await self._publisher.execute("SELECT pg_notify(%s, %s)", (PG_CHANNEL, self.node.decode()))

    async def _disconnect(self) -> None:
        for closing in (self._listener, self._publisher):
            if closing is not None:
                with contextlib.suppress(Exception):  # already broken
                    await closing.close()
        self._listener = self._publisher = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TimeoutError):
        text = text or f"no answer within {CONNECT_TIMEOUT:g} s"
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


