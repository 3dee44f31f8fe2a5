"""The two ways of speaking to a push service: one HTTP/1.1 connection a request at a
time, or one HTTP/2 connection with its requests multiplexed (`client.PushClient` picks by
ALPN and keeps them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hpack.struct import HeaderWeaklyTyped, NeverIndexedHeaderTuple

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 65_536


class PushHttpError(Exception):
    """The request got no HTTP answer (refused, reset, timed out, not allowed)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


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


class H2Connection:
    """One HTTP/2 connection to a push service, shared by all its requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        # Our requests are built here from checked parts: h2's per-request checks of them
        # (lower case, no connection headers) would only spend time.
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
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

    async def request(self, authority: str, target: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        while len(self.streams) >= self.h2.remote_settings.max_concurrent_streams and not self.closed:
            self._room.clear()
            await self._room.wait()
        if self.closed:
            raise ConnectionResetError("the HTTP/2 connection is closed")
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
        except (OSError, h2.exceptions.H2Error, PushHttpError) as exc:
            reason = f"{reason} ({exc})"
        finally:
            self.closed = True
            for stream in self.streams.values():
                if not stream.future.done():
                    stream.future.set_exception(PushHttpError(reason))
            self.streams.clear()
            self._room.set()
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
            self._room.set()
        elif isinstance(event, h2.events.StreamReset) and stream:
            del self.streams[event.stream_id]
            stream.future.set_exception(PushHttpError(f"the push service reset the request (code {event.error_code})"))
            self._room.set()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._room.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise PushHttpError(f"the push service ended the connection (code {event.error_code})")

    def close(self) -> None:
        self.closed = True
        self._reader.cancel()
        self.writer.close()
