"""A small HTTP client for push services: HTTP/2 where the service speaks it, else
HTTP/1.1 with kept-alive connections, and a cap on requests in flight to each service.

Measured (`benchmarks/push_client.py`): a general-purpose async client, httpx, managed about
600 POSTs a second here, where one fan-out needs thousands, and this client about 12,700.
Push requests are all alike (a POST, a short answer), so this client does only that, on asyncio streams, with the `h2` library
for HTTP/2 framing. Each push service (an origin) gets one HTTP/2 connection, its requests
multiplexed, or a pool of HTTP/1.1 connections if ALPN says it speaks only that.

Endpoint hosts are resolved when sending and every address must be public, so a subscription
cannot make Dateline call into the private network, even through a DNS name that changes
after it was checked (`allow_loopback` is for the test push service alone). The connection
goes to the address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from hpack import NeverIndexedHeaderTuple

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 65_536
TIMEOUT = 15.0
RESOLVE_SECONDS = 300.0


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


class _Connection:
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
        chunks = []
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
    future: "asyncio.Future[Response]"
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


def _h2_header(name: str, value: str) -> tuple[str, str]:
    name = name.lower()
    # Never in the HPACK table: a credential must not share compression state with the
    # request paths, which subscribers choose.
    return NeverIndexedHeaderTuple(name, value) if name == "authorization" else (name, value)


class _H2Connection:
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
        self.h2.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)  # type: ignore[method-assign]
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


class _Service:
    """One push service (an origin): its checked address and its open connections."""

    def __init__(self, scheme: str, host: str, port: int, concurrency: int, allow_loopback: bool,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.allow_loopback = allow_loopback
        self.slots = asyncio.Semaphore(concurrency)
        self.idle: list[_Connection] = []
        self.address: str | None = None
        self.resolved_at = 0.0
        self._resolving = asyncio.Lock()
        self.ssl_context = ssl_context
        self.http2: _H2Connection | None = None
        self.speaks_h2: bool | None = None  # unknown until the first TLS handshake (ALPN)
        self._connecting = asyncio.Lock()

    async def _resolve(self) -> str:
        """The address to connect to, checked; looked up again after `RESOLVE_SECONDS`, for
        new connections (push services move)."""
        async with self._resolving:
            if self.address is None or time.monotonic() - self.resolved_at > RESOLVE_SECONDS:
                try:
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        self.host, self.port, type=socket.SOCK_STREAM)
                except socket.gaierror as exc:
                    raise PushHttpError(f"cannot resolve {self.host}: {exc.strerror}") from None
                addresses = [info[4][0] for info in infos]
                for address in addresses:
                    ip = ipaddress.ip_address(address.split("%")[0])
                    if not (ip.is_global or (self.allow_loopback and ip.is_loopback)):
                        raise PushHttpError(f"{self.host} resolves to a non-public address ({ip})", retry=False)
                self.address = addresses[0]
                self.resolved_at = time.monotonic()
            return self.address

    async def _connect(self) -> _Connection | _H2Connection:
        address = await self._resolve()
        context = None
        if self.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            context.set_alpn_protocols(["h2", "http/1.1"])
        reader, writer = await asyncio.open_connection(
            address, self.port, ssl=context, server_hostname=self.host if context else None,
            limit=MAX_HEADER_BYTES + 1024)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = writer.get_extra_info("ssl_object")
        self.speaks_h2 = tls is not None and tls.selected_alpn_protocol() == "h2"
        return _H2Connection(reader, writer) if self.speaks_h2 else _Connection(reader, writer)

    async def _shared_http2(self) -> _H2Connection | None:
        """The service's HTTP/2 connection, opened by the first request that needs it; None
        if the service speaks HTTP/1.1 only (or plain http)."""
        if self.speaks_h2 is False or self.scheme != "https":
            return None
        if self.http2 is not None and not self.http2.closed:
            return self.http2
        async with self._connecting:
            if self.http2 is None or self.http2.closed:
                connection = await asyncio.wait_for(self._connect(), TIMEOUT)
                if isinstance(connection, _Connection):
                    self.idle.append(connection)  # HTTP/1.1 after all: the first of the pool
                    return None
                self.http2 = connection
        return self.http2

    @property
    def authority(self) -> str:
        return self.host if self.port == (443 if self.scheme == "https" else 80) else f"{self.host}:{self.port}"

    def _head(self, target: str, headers: list[tuple[str, str]], length: int) -> bytes:
        return (
            f"POST {target} HTTP/1.1\r\nHost: {self.authority}\r\nContent-Length: {length}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        ).encode("latin-1")

    async def post(self, target: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        async with self.slots:
            try:
                http2 = await self._shared_http2()
                if http2 is not None:
                    return await asyncio.wait_for(http2.request(self.authority, target, headers, body), TIMEOUT)
            except _FAILURES as exc:
                raise _as_push_error(exc, self.host) from None
            head = self._head(target, headers, len(body))
            if self.idle:
                try:
                    return await self._exchange(self.idle.pop(), head, body)
                except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise _as_push_error(exc, self.host) from None
                    # Not a byte of answer: a kept-alive connection the service had closed.
                    # Once more, on a new one.
                except _FAILURES as exc:
                    raise _as_push_error(exc, self.host) from None
            try:
                connection = await asyncio.wait_for(self._connect(), TIMEOUT)
                if isinstance(connection, _H2Connection):  # HTTP/2 now, after HTTP/1.1 before
                    self.http2 = connection
                    return await asyncio.wait_for(connection.request(self.authority, target, headers, body), TIMEOUT)
                return await self._exchange(connection, head, body)
            except _FAILURES as exc:
                raise _as_push_error(exc, self.host) from None

    async def _exchange(self, connection: _Connection, head: bytes, body: bytes) -> Response:
        try:
            response, keep = await asyncio.wait_for(connection.request(head, body), TIMEOUT)
        except BaseException:
            connection.close()
            raise
        if keep:
            self.idle.append(connection)
        else:
            connection.close()
        return response

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
        if self.http2 is not None:
            self.http2.close()
            self.http2 = None


_FAILURES = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError,
             PushHttpError)


def _as_push_error(exc: BaseException, host: str) -> PushHttpError:
    if isinstance(exc, PushHttpError):
        return exc
    if isinstance(exc, TimeoutError):
        return PushHttpError(f"{host} did not answer within {TIMEOUT:.0f} s")
    return PushHttpError(f"{host}: {exc.__class__.__name__} {exc}".strip())


class PushClient:
    def __init__(self, concurrency: int = 16, allow_loopback: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.concurrency = concurrency
        self.allow_loopback = allow_loopback
        self.ssl_context = ssl_context  # tests: trust the test push service's certificate
        self.services: dict[tuple[str, str, int], _Service] = {}

    async def post(self, endpoint: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        parts = urlsplit(endpoint)
        scheme = parts.scheme
        if scheme not in ("https", "http") or (scheme == "http" and not self.allow_loopback):
            raise PushHttpError("push endpoints must be https", retry=False)
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port)
        service = self.services.get(key)
        if service is None:
            service = self.services[key] = _Service(
                scheme, host, port, self.concurrency, self.allow_loopback, self.ssl_context)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return await service.post(target, headers, body)

    def close(self) -> None:
        for service in self.services.values():
            service.close()
        self.services.clear()

    async def aclose(self) -> None:
        self.close()
        await asyncio.sleep(0)  # the transports finish closing on the next turn of the loop
