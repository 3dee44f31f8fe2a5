"""Every connection of `dateline serve` starts here, as a small protocol that waits for its first read.

A reader's browser sends `GET /stories/{slug}/live` as soon as it connects, and the whole head
fits in one packet. When a story breaks, or when a node goes down and its readers come back
somewhere else, a hundred thousand of those arrive at once. Each of them only needs to be
handed to its stream's own protocol (live/connection.py). uvicorn's protocol, built for every
connection, does work before the head is even read: two loggers, flow control, the socket's two
addresses, a parser, and the limits' two timers. So a connection starts as a `FirstRead`.

If its first read is the complete head of a readers' stream and nothing more, the head is
parsed here (by httptools, as uvicorn parses it) and the connection is handed over. Anything
else becomes `HttpProtocol` (web/server.py) at once and is fed what came: another request, a
head that arrives in pieces, a body, or one second with nothing sent. Its limits then count from
when the connection was made, so every promise web/server.py makes about slow and unfinished
requests holds for every connection. `benchmarks/fanout/accept.py` measures what accepting a
reader costs (and `benchmarks/fanout/run.py`, as `connect_cpu_us_per_reader`). Any other
connection pays for this object once, before it becomes HttpProtocol; the grace's timer is
one for all the connections of a server (`Waiting`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httptools
from uvicorn.config import Config

from . import handover
from .server import MAX_HEAD_BYTES, SLOW_AFTER_SECONDS, HttpProtocol

HEAD_END = b"\r\n\r\n"
log = logging.getLogger("dateline")


class _Head:
    """What the parser reads of a head: the request target, and of the headers only what a
    readers' stream reads (`Last-Event-ID`, its name lowercased as uvicorn gives it). A
    browser sends a dozen others, and a wave of readers would keep each for nothing."""

    __slots__ = ("url", "headers", "complete")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 13 and name.lower() == b"last-event-id":
            self.headers.append((b"last-event-id", value))

    def on_message_complete(self) -> None:
        self.complete = True


class Waiting:
    """The connections of one server that have sent nothing yet, oldest first, and one timer
    for them all, set for when the oldest has waited the grace: a wave of readers, each
    sending its head at once, costs no timer of its own."""

    __slots__ = ("loop", "connections", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: dict[FirstRead, None] = {}  # in the order they were made
        self.timer: asyncio.TimerHandle | None = None

    def add(self, connection: FirstRead) -> None:
        self.connections[connection] = None
        if self.timer is None:
            self.timer = self.loop.call_later(SLOW_AFTER_SECONDS, self._expire)

    def discard(self, connection: FirstRead) -> None:
        self.connections.pop(connection, None)

    def _expire(self) -> None:
        """Those that have waited the grace go the ordinary way; the timer is set again for
        the oldest of the others."""
        self.timer = None
        now = time.monotonic()
        late = []
        for connection in self.connections:
            if now - connection.made_at < SLOW_AFTER_SECONDS:
                wait = connection.made_at + SLOW_AFTER_SECONDS - now
                self.timer = self.loop.call_later(max(wait, 0.001), self._expire)
                break
            late.append(connection)
        for connection in late:
            del self.connections[connection]
        for connection in late:  # each on its own, as a timer of its own would have been
            try:
                connection._ordinary(b"")
            except Exception:
                log.exception("a connection could not go the ordinary way; closed")
                if connection.transport is not None:
                    connection.transport.abort()


class FirstRead(asyncio.Protocol):
    """A new connection's protocol until its first read (`dateline serve` passes it as `http=`)."""

    __slots__ = ("config", "server_state", "app_state", "loop", "transport", "made_at", "waiting")

    def __init__(self, config: Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.made_at = 0.0
        # One per server, kept beside uvicorn's own record of its connections.
        waiting: Waiting | None = getattr(server_state, "first_reads", None)
        if waiting is None:
            waiting = server_state.first_reads = Waiting(self.loop)
        self.waiting = waiting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        self.made_at = time.monotonic()
        self.server_state.connections.add(self)  # a shutdown closes it (`shutdown`)
        # Nothing yet after the grace: the limits of the ordinary way take over from here.
        self.waiting.add(self)

    def data_received(self, data: bytes) -> None:
        self.waiting.discard(self)
        if not self._reader_stream(data):
            self._ordinary(data)

    def eof_received(self) -> bool:
        return False  # gone before it asked for anything: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.discard(self)
        self.server_state.connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn is stopping: nothing has been asked on this connection yet."""
        if self.transport is not None:
            self.transport.close()

    def _reader_stream(self, data: bytes) -> bool:
        """Hand the connection over if `data` is a readers' stream's whole head and nothing more."""
        # Pages, files and the API bail out here, before any parsing: they are parsed once, by HttpProtocol.
        if not data.startswith(b"GET /stories/") or len(data) > MAX_HEAD_BYTES or data.find(HEAD_END) != len(data) - 4:
            return False
        if self.config.root_path:
            return False
        head = _Head()
        parser = httptools.HttpRequestParser(head)
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:  # an upgrade (HttpParserUpgrade) among them
            return False
        if not head.complete or parser.should_upgrade() or parser.get_http_version() != "1.1":
            return False
        target = handover.reader_stream(head.url)
        live = handover.live_of(self.config.loaded_app) if target else None
        if target is None or live is None or self.transport is None or self.transport.is_closing():
            return False
        self.server_state.connections.discard(self)
        slug, query_string = target
        live.take_over(self.transport, self.server_state, slug, head.headers, query_string, False)
        return True

    def _ordinary(self, data: bytes) -> None:
        """From here on the connection is `HttpProtocol`'s, as if it had been from the start."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.server_state.connections.discard(self)
        protocol = HttpProtocol(self.config, self.server_state, self.app_state, self.loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport, made_at=self.made_at)
        if data:
            protocol.data_received(data)
