"""The two ways of speaking to a push service: one HTTP/1.1 connection a request at a
time, or an HTTP/2 connection with its requests multiplexed, as many at once as the service
allows (`client.PushClient` picks by ALPN and keeps them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from hpack.struct import HeaderWeaklyTyped, NeverIndexedHeaderTuple

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 65_536
# Per HTTP/2 connection, however many the service would allow: h2 counts a connection's open
# streams on every new one, so a request costs more the more share its connection (measured,
# with the service 40 ms away: 837 µs of CPU a message with up to 1,000 a connection, 798 µs
# with 128; benchmarks/push_fanout.py).
MAX_STREAMS = 128
STREAMS_BEFORE_SETTINGS = 100  # until the service's SETTINGS arrive (RFC 9113 recommends at least this)


class PushHttpError(Exception):
    """The request got no HTTP answer (refused, reset, timed out, not allowed)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Unprocessed(PushHttpError):
    """The service says it never acted on this request (a stream past its GOAWAY, or refused
    with REFUSED_STREAM): sending it again, on another connection, cannot deliver it twice."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Http1Connection:
    """One kept-alive HTTP/1.1 connection: one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> tuple[Response, bool]:
        """Send one request; returns the answer and whether the connection may be reused."""
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        if len(raw) > MAX_HEADER_BYTES:
            raise PushHttpError("the push service sent oversized headers")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise PushHttpError(f"the push service answered something other than HTTP: {lines[0][:60]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        status = int(parts[1])
        keep = parts[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body_out = await self._chunked()
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY_BYTES:
                raise PushHttpError("the push service sent an oversized answer")
            body_out = await self.reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            body_out = b""
        else:  # delimited by the end of the connection
            body_out = await self.reader.read(MAX_BODY_BYTES)
            keep = False
        return Response(status, headers, body_out), keep

    async def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise PushHttpError("the push service sent an oversized answer")
            chunks.append((await self.reader.readexactly(size + 2))[:-2])

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Stream:
    future: asyncio.Future[Response]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


def _h2_header(name: str, value: str) -> HeaderWeaklyTyped:
    name = name.lower()
    # Never in the HPACK table: a credential must not share compression state with the
    # request paths, which subscribers choose.
    return NeverIndexedHeaderTuple(name, value) if name == "authorization" else (name, value)


class _GracefulH2(h2.connection.H2Connection):
    """h2, reading on after a GOAWAY. A service that goes away (a deploy, a connection's age)
    still answers the requests up to the GOAWAY's last stream id; h2 would close the
    connection at once and refuse those answers, so each of them would end unknown, to be
    sent again (twice, if the service had delivered it) or dropped (lost)."""

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:  # hyperframe's GoAwayFrame
        event = h2.events.ConnectionTerminated()
        event.error_code = h2.errors._error_code_from_int(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class H2Connection:
    """One HTTP/2 connection to a push service, shared by many requests: at most as many at
    once as the service's SETTINGS_MAX_CONCURRENT_STREAMS (and `MAX_STREAMS`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_room: Callable[[], None] = lambda: None) -> None:
        self.writer = writer
        self.on_room = on_room  # a stream slot freed, or the connection ended: the service's waiters
        # The service's first SETTINGS (how many streams it allows); also set once closed.
        self.settings_arrived = asyncio.Event()
        self.going_away = False  # GOAWAY received: no new requests here
        self.claimed = 0
        # Our requests are built here from checked parts: h2's per-request checks of them
        # (lower case, no connection headers) would only spend time.
        self.h2 = _GracefulH2(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
            normalize_outbound_headers=False))
        # h2 never indexes an Authorization header, so the VAPID token (about 450 bytes) is
        # encoded afresh in every request; Huffman-coding it in pure Python cost about 150 µs
        # a request, more than the message's encryption. Plain literals cost nothing to encode
        # and about 100 more bytes on the wire.
        encode = self.h2.encoder.encode
        self.h2.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)  # type: ignore[method-assign]  # on purpose: no Huffman
        self.h2.initiate_connection()
        writer.write(self.h2.data_to_send())
        self.streams: dict[int, _Stream] = {}
        self.closed = False
        self._room = asyncio.Event()  # set when flow-control window or a stream slot frees up
        self._reader = asyncio.get_running_loop().create_task(self._read(reader))

    @property
    def limit(self) -> int:
        allowed = min(self.h2.remote_settings.max_concurrent_streams, MAX_STREAMS)
        return allowed if self.settings_arrived.is_set() else min(allowed, STREAMS_BEFORE_SETTINGS)

    @property
    def usable(self) -> bool:
        return not (self.closed or self.going_away)

    @property
    def has_room(self) -> bool:
        return self.usable and len(self.streams) + self.claimed < self.limit

    def claim(self) -> None:
        """Hold a stream slot for a request about to be made (`request(claimed=True)`), so
        that requests choosing a connection at once do not all choose this one."""
        self.claimed += 1

    async def request(self, authority: str, target: str, headers: list[tuple[str, str]], body: bytes,
                      claimed: bool = False) -> Response:
        if claimed:
            self.claimed -= 1  # its stream is registered below, before anything is awaited
        while len(self.streams) >= self.limit and self.usable:
            self._room.clear()
            await self._room.wait()
        if not self.usable:
            raise Unprocessed("the HTTP/2 connection is closing; not sent")
        stream_id = self.h2.get_next_available_stream_id()
        stream = _Stream(asyncio.get_running_loop().create_future())
        self.streams[stream_id] = stream
        try:
            # The path and length change with every request: kept out of the HPACK table, so
            # the headers every request shares (the VAPID token above all) stay in it and cost
            # a byte or two each instead of being encoded again.
            self.h2.send_headers(stream_id, [
                (":method", "POST"), (":scheme", "https"), (":authority", authority),
                NeverIndexedHeaderTuple(":path", target), NeverIndexedHeaderTuple("content-length", str(len(body))),
                *(_h2_header(name, value) for name, value in headers),
            ])
            sent = 0
            while sent < len(body):
                window = self.h2.local_flow_control_window(stream_id)
                if window <= 0:
                    self.writer.write(self.h2.data_to_send())
                    self._room.clear()
                    await self._room.wait()
                    if self.closed:
                        raise ConnectionResetError("the HTTP/2 connection closed")
                    continue
                size = min(window, len(body) - sent, self.h2.max_outbound_frame_size)
                self.h2.send_data(stream_id, body[sent:sent + size])
                sent += size
            self.h2.end_stream(stream_id)
            self.writer.write(self.h2.data_to_send())
            return await stream.future
        except BaseException:
            if stream_id in self.streams and not self.closed:
                del self.streams[stream_id]  # given up (a timeout): tell the service
                try:
                    self.h2.reset_stream(stream_id)
                    self.writer.write(self.h2.data_to_send())
                except h2.exceptions.H2Error:
                    pass
            raise

    async def _read(self, reader: asyncio.StreamReader) -> None:
        reason = "the connection closed before an answer"
        try:
            while data := await reader.read(65_536):
                for event in self.h2.receive_data(data):
                    self._handle(event)
                self.writer.write(self.h2.data_to_send())
                if self.going_away and not self.streams:
                    break  # every answer it still owed has come
        except (OSError, h2.exceptions.H2Error, PushHttpError) as exc:
            reason = f"{reason} ({exc})"
        finally:
            self.closed = True
            for stream in self.streams.values():
                if not stream.future.done():
                    stream.future.set_exception(PushHttpError(reason))
            self.streams.clear()
            self._room.set()
            self.settings_arrived.set()
            self.on_room()
            self.writer.close()

    def _handle(self, event: h2.events.Event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.ResponseReceived) and stream:
            for name, value in event.headers:
                stream.headers[str(name)] = str(value)
            stream.status = int(stream.headers.get(":status", "0"))
        elif isinstance(event, h2.events.DataReceived):
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream:
                stream.body += event.data
                if len(stream.body) > MAX_BODY_BYTES:
                    raise PushHttpError("the push service sent an oversized answer")
        elif isinstance(event, h2.events.StreamEnded) and stream:
            del self.streams[event.stream_id]
            stream.future.set_result(Response(stream.status, stream.headers, bytes(stream.body)))
            self._freed()
        elif isinstance(event, h2.events.StreamReset) and stream:
            del self.streams[event.stream_id]
            refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
            kind = Unprocessed if refused else PushHttpError
            stream.future.set_exception(kind(f"the push service reset the request (code {event.error_code})"))
            self._freed()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_arrived.set()
            self._freed()
        elif isinstance(event, h2.events.WindowUpdated):
            self._room.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._going_away(event)

    def _freed(self) -> None:
        self._room.set()
        if self.usable:
            self.on_room()

    def _going_away(self, event: h2.events.ConnectionTerminated) -> None:
        """Requests past `last_stream_id` were never acted on: they go again elsewhere. Those
        up to it are still answered here, then the connection closes."""
        self.going_away = True
        last = event.last_stream_id if event.last_stream_id is not None else 2**31
        for stream_id in [sid for sid in self.streams if sid > last]:
            self.streams.pop(stream_id).future.set_exception(
                Unprocessed(f"the push service went away (code {event.error_code}) before this request"))
        self._room.set()
        self.on_room()  # waiting requests: to another connection

    def close(self) -> None:
        self.closed = True
        self._reader.cancel()
        self.writer.close()
