"""The HTTP connection as `dateline serve` runs it: uvicorn's httptools protocol, with limits
on clients that send a request slowly, or never finish it.

uvicorn waits for ever for the rest of a request: a connection that sends half a request
line, or half a body, and then nothing, holds a file descriptor until the process runs out.
Here every connection is *half-open* from the moment it connects (or starts its next
request) until its request has fully arrived, and while it is:

- its head (request line and headers) must arrive within `header_timeout_seconds`, and be at
  most `MAX_HEAD_BYTES`;
- its body must arrive within `body_timeout_seconds` of the head (time the server itself
  spends not reading, while a handler is busy, does not count);
- one address may hold at most `max_half_open_per_address` *slow* ones in this process (still
  half-open `SLOW_AFTER_SECONDS` after starting a request, or `SILENT_SLOW_AFTER_SECONDS`, at most half the
  header timeout, after connecting without sending a byte); while it does, each of its connections that turns
  slow is refused with 429 then and there. A connection that sends its request within the
  second is served whatever its neighbours do: a browser sends its head in one round trip, so
  a burst of readers behind one address (a mobile carrier's NAT, when a story breaks) is
  never counted, even when this process is too busy to read their heads within the second
  (what waits unread in the kernel is the server's time, not the client's). A client that
  holds connections open without finishing them is counted, and one that opens more than
  its share holds each for a second at most. An IPv6 address counts with its /64 (one
  subscriber's network). Addresses trusted as proxies (uvicorn's `FORWARDED_ALLOW_IPS`) are
  exempt: every reader behind a proxy shares its address.

A request answered before its body has arrived (a 413) is closed gently: the answer is sent,
then the rest of the body is read and dropped for a few seconds, so the client, still
sending, is not reset before it reads why. The live stream sends no body: once its head is
in, no limit here applies to it, however long it stays open.

A readers' live stream (`GET /stories/{slug}/live`) is seen here, once its head is in, and
handed to a protocol of its own (`live/connection.py`): this object, its parser and the
request's scope are let go, and the reader costs only what its stream needs to stay open.
Most readers never get this far. A connection starts as `web/first_read.py`'s protocol, which
hands a stream whose whole head came in the first read straight over. Only the others become
this protocol, with their limits counted from when the connection was made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import Settings
from . import handover
from .addresses import address_key, is_trusted_proxy, unread_bytes

log = logging.getLogger("dateline")

MAX_HEAD_BYTES = 65_536  # request line and headers: a browser's are a few kilobytes
LINGER_QUIET_SECONDS = 2.0  # after an early answer: close once the client sends nothing for this long
LINGER_MAX_SECONDS = 30.0  # ... and at the latest this long after the answer
REFUSAL_LOG_INTERVAL = 60.0
SLOW_AFTER_SECONDS = 1.0  # half-open this long: counted against its address...
SILENT_SLOW_AFTER_SECONDS = 5.0  # ...or this long (at most half the header timeout) when it has sent nothing

Phase = Literal["head", "body"] | None
@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_half_open: int  # per address and process; 0: no limit

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.header_timeout_seconds, settings.body_timeout_seconds,
                   settings.max_half_open_per_address)


@functools.cache
def process_limits() -> ConnectionLimits:
    """The limits of this process, from its environment (as each worker builds its app)."""
    return ConnectionLimits.from_settings(Settings.from_env())


def _answer(status: bytes, text: str, *headers: bytes) -> bytes:
    body = text.encode()
    lines = [b"HTTP/1.1 " + status, b"content-type: text/plain; charset=utf-8",
             b"content-length: " + str(len(body)).encode(), *headers, b"connection: close", b"", b""]
    return b"\r\n".join(lines) + body


REQUEST_TIMEOUT = _answer(b"408 Request Timeout", "The request took too long to arrive.")
HEAD_TOO_LARGE = _answer(b"431 Request Header Fields Too Large", "The request's headers are too large.")
TOO_MANY = _answer(b"429 Too Many Requests", "Too many unfinished requests from this address.",
                   b"retry-after: 5")


class _Refusals:
    """Half-open connections of each address, in this process; and when a refusal was logged."""

    half_open: ClassVar[Counter[str]] = Counter()
    last_logged = 0.0


class _UntilTheBodyEnds(asyncio.Transport):
    """The transport a request's handler sees while the request's body is still arriving:
    closing it closes gently (`HttpProtocol.close_gently`)."""

    def __init__(self, protocol: HttpProtocol, transport: asyncio.Transport) -> None:
        super().__init__()
        self._protocol = protocol
        self._transport = transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._protocol.close_gently()

    def abort(self) -> None:
        self._transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits above (`dateline serve` passes it as `http=`)."""

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits = process_limits()
        self.phase: Phase = None
        self.deadline: asyncio.TimerHandle | None = None
        self.address: str | None = None  # counted against the limit of its address (not a proxy's)
        self.counted = False
        self.slow_timer: asyncio.TimerHandle | None = None
        self.head_bytes = 0
        self.began = False  # a byte of the current request has arrived
        self.silent_grace = False  # given the longer grace of a connection that has sent nothing
        self.lingering_since = 0.0
        self.last_data = 0.0
        self.handed_over = False  # to a reader's stream (live/connection.py): nothing more here

    # --- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport, made_at: float | None = None) -> None:  # type: ignore[override]
        """`made_at`: when the connection was made, if that was earlier (web/first_read.py had
        it first): its limits count from then."""
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address and self.limits.max_half_open and not is_trusted_proxy(address, self.config.forwarded_allow_ips):
            self.address = address_key(address)  # refused only once slow itself (`_count_as_slow`)
        self._start("head", self.limits.header_timeout, 0.0 if made_at is None else time.monotonic() - made_at)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.handed_over or self.transport.is_closing():
            return  # refused, or timed out: nothing more is read
        if self.lingering_since:
            self.last_data = time.monotonic()
            return  # the rest of a body already answered: dropped
        if self.phase == "head":
            self.head_bytes += len(data)
        super().data_received(data)
        if self.handed_over:
            self.parser = None  # it and this object go with the garbage
            return
        if self.phase == "head" and self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()
        elif self.phase == "body" and self.deadline is None and not self.lingering_since:
            # Armed here, once the data at hand is parsed: a request without a body, the live
            # stream's among them, is complete by now and never needs the timer.
            self._start("body", self.limits.body_timeout)

    def handle_websocket_upgrade(self) -> None:
        self._finish()  # the connection is another protocol's from here on
        super().handle_websocket_upgrade()

    # --- the request, as the parser reads it ---------------------------------------------

    def on_message_begin(self) -> None:
        if self.handed_over:
            return  # pipelined behind a reader's stream: a stream never ends for the next one
        super().on_message_begin()
        self.began = True
        if self.phase is None:  # the next request on a kept-alive connection
            self.head_bytes = 0
            self._start("head", self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        if not self.handed_over:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.handed_over:
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self.handed_over:
            super().on_body(body)

    def on_headers_complete(self) -> None:
        if self.handed_over or self._reader_stream():
            return
        super().on_headers_complete()
        self.phase = "body"  # its timer is armed in data_received, if the body has not all come
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if self.cycle is not None and self.cycle.scope is self.scope:
            self.cycle.transport = _UntilTheBodyEnds(self, self.transport)

    def on_message_complete(self) -> None:
        if self.handed_over:
            return
        super().on_message_complete()
        if self.cycle is not None:
            self.cycle.transport = self.transport
        self._finish()

    def on_response_complete(self) -> None:
        if self.phase == "body" and self.cycle is not None and self.cycle.response_complete:
            # answered before its body arrived: the connection cannot go on
            self.server_state.total_requests += 1
            self.close_gently()
            return
        super().on_response_complete()

    def _reader_stream(self) -> bool:
        """A readers' live stream, on a connection with nothing else in flight: hand it over."""
        if self.parser.get_method() != b"GET" or self.parser.should_upgrade() or self.root_path:
            return False
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            return False  # behind an answer still being written: the ordinary way
        target = handover.reader_stream(self.url)
        live = handover.live_of(self.app) if target else None
        if target is None or live is None:
            return False
        self._finish()  # its head is in: no longer half-open
        self.handed_over = True
        self.connections.discard(self)
        self.cycle = None  # type: ignore[assignment]
        slug, query_string = target
        live.take_over(self.transport, self.server_state, slug, self.headers, query_string, self.flow.write_paused)
        return True

    # --- limits ----------------------------------------------------------------------------

    def _start(self, phase: Phase, seconds: float, elapsed: float = 0.0) -> None:
        self.phase = phase
        if self.address is not None and not self.counted and self.slow_timer is None:
            self.slow_timer = self.loop.call_later(max(0.0, SLOW_AFTER_SECONDS - elapsed), self._count_as_slow)
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(max(0.0, seconds - elapsed), self._too_slow)

    def _count_as_slow(self) -> None:
        """Still half-open after the grace: count it against its address."""
        self.slow_timer = None
        if self.phase is None or self.address is None or self.transport.is_closing():
            return
        if not self.began and not self.silent_grace:
            # Nothing sent yet: a client busy elsewhere (a phone, a loaded machine) connects
            # and writes a moment later. Half-sent requests are what is counted at once.
            self.silent_grace = True
            grace = min(SILENT_SLOW_AFTER_SECONDS, self.limits.header_timeout / 2)
            self.slow_timer = self.loop.call_later(max(0.0, grace - SLOW_AFTER_SECONDS), self._count_as_slow)
            return
        if unread_bytes(self.transport):
            # What it sent waits in the kernel: this process, busy (a storm of readers
            # connecting at once), has not read it yet. The server's time, not the client's.
            self.slow_timer = self.loop.call_later(SLOW_AFTER_SECONDS, self._count_as_slow)
            return
        if _Refusals.half_open[self.address] >= self.limits.max_half_open:
            # Its address holds its share of slow connections already: this one goes too, so
            # connections opened faster than they time out cannot pile up either.
            self._log_refusal(self.address)
            self.transport.write(TOO_MANY)
            self.transport.close()
            return
        self.counted = True
        _Refusals.half_open[self.address] += 1

    def _finish(self) -> None:
        """The request has arrived, or the connection is gone: no longer half-open."""
        self.phase = None
        self.began = self.silent_grace = False
        if self.slow_timer is not None:
            self.slow_timer.cancel()
            self.slow_timer = None
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if self.counted and self.address is not None:
            self.counted = False
            _Refusals.half_open[self.address] -= 1
            if _Refusals.half_open[self.address] <= 0:
                del _Refusals.half_open[self.address]

    def _too_slow(self) -> None:
        self.deadline = None
        if self.transport.is_closing() or self.lingering_since:
            return
        answering = self.phase == "head" and self.cycle is not None and not self.cycle.response_complete
        if self.flow.read_paused or answering:
            # The server is not reading (a handler busy with the body), or is still answering the
            # request before this one on the connection: not the client's time.
            self._start(self.phase, self.limits.body_timeout if self.phase == "body" else self.limits.header_timeout)
            return
        cycle = self.cycle if self.phase == "body" else None
        if self.began and (cycle is None or not cycle.response_started):  # a request began: say why it ends
            self.transport.write(REQUEST_TIMEOUT)
        if cycle is not None:  # its handler hears that the client is gone, and answers no more
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def close_gently(self) -> None:
        """Close once the client has had its answer: stop sending (FIN), then drop what it still
        sends until it goes quiet or the time is up, so it is not reset before it reads."""
        transport = self.transport
        if self.phase != "body" or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        if self.lingering_since:
            return
        if self.deadline is not None:
            self.deadline.cancel()
        self.lingering_since = self.last_data = time.monotonic()
        transport.write_eof()
        self.flow.resume_reading()
        self.deadline = self.loop.call_later(LINGER_QUIET_SECONDS, self._linger)

    def _linger(self) -> None:
        now = time.monotonic()
        quiet_until = self.last_data + LINGER_QUIET_SECONDS
        end = min(quiet_until, self.lingering_since + LINGER_MAX_SECONDS)
        if now >= end or self.transport.is_closing():
            self.deadline = None
            self.transport.close()
            return
        self.deadline = self.loop.call_later(end - now, self._linger)

    @staticmethod
    def _log_refusal(address: str) -> None:
        now = time.monotonic()
        if now - _Refusals.last_logged >= REFUSAL_LOG_INTERVAL:
            _Refusals.last_logged = now
            log.warning("refusing connections from %s: too many unfinished requests at once "
                        "(DATELINE_MAX_HALF_OPEN_PER_ADDRESS); further refusals are not logged for a minute",
                        address)
