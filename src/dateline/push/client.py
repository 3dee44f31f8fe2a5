"""A small HTTP client for push services: HTTP/2 where the service speaks it, as many
requests in flight as it allows, else HTTP/1.1 with a capped pool of kept-alive connections.

Measured (`benchmarks/push_client.py`): a general-purpose async client, httpx, managed about
600 POSTs a second here, where one fan-out needs thousands, and this client about 12,700.
Push requests are all alike (a POST, a short answer), so this client does only that, on asyncio
streams, its HTTP/2 framed by hand for that one shape (`http2.py`). Each push service (an origin) gets
HTTP/2 connections, its requests multiplexed, or a pool of HTTP/1.1 connections if ALPN says it speaks only that.

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
from urllib.parse import urlsplit

from .connections import MAX_HEADER_BYTES, Http1Connection, PushHttpError, Response, Unprocessed
from .http2 import H2Connection

__all__ = ["PushClient", "PushHttpError", "Response"]

TIMEOUT = 15.0
CONNECT_SECONDS = 5.0  # per address: a service with several tries the next
SETTINGS_SECONDS = 1.0  # a new HTTP/2 connection: how long to wait for the service's SETTINGS
RESOLVE_SECONDS = 300.0
MAX_HTTP2_CONNECTIONS = 16  # per service and process: with MAX_STREAMS, up to 2,048 in flight
UNPROCESSED_ATTEMPTS = 3  # sends of a request the service said it never acted on


class _Service:
    """One push service (an origin): its checked addresses and its open connections.

    HTTP/2: as many requests in flight as the service allows on a connection (its
    SETTINGS_MAX_CONCURRENT_STREAMS, at most `MAX_STREAMS`), and more connections, up to
    `MAX_HTTP2_CONNECTIONS`, when one is full. With a real round trip to the service this is
    what sets the pace: 16 in flight at 40 ms is 400 a second, 1,000 in flight 25,000.
    Each connection carries at most `MAX_STREAMS`, so one lost packet stalls no more than that many (see `http2.py`).
    HTTP/1.1: a pool of at most `concurrency` connections, a request each at a time.
    """

    def __init__(self, scheme: str, host: str, port: int, concurrency: int, allow_loopback: bool,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.allow_loopback = allow_loopback
        self.slots = asyncio.Semaphore(concurrency)  # HTTP/1.1 only
        self.idle: list[Http1Connection] = []
        self.addresses: list[str] = []
        self.resolved_at = 0.0
        self._resolving = asyncio.Lock()
        self.ssl_context = ssl_context
        self.http2: list[H2Connection] = []
        self.speaks_h2: bool | None = None  # unknown until the first TLS handshake (ALPN)
        self._connecting = asyncio.Lock()
        self._room = asyncio.Event()  # an HTTP/2 stream slot freed, or a connection opened or ended

    async def _resolve(self) -> list[str]:
        """The addresses to connect to, all checked; looked up again after
        `RESOLVE_SECONDS`, for new connections (push services move)."""
        async with self._resolving:
            if not self.addresses or time.monotonic() - self.resolved_at > RESOLVE_SECONDS:
                try:
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        self.host, self.port, type=socket.SOCK_STREAM)
                except socket.gaierror as exc:
                    raise PushHttpError(f"cannot resolve {self.host}: {exc.strerror}") from None
                addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))  # str already: IPv4 and IPv6 hosts
                for address in addresses:
                    ip = ipaddress.ip_address(address.split("%")[0])
                    if not (ip.is_global or (self.allow_loopback and ip.is_loopback)):
                        raise PushHttpError(f"{self.host} resolves to a non-public address ({ip})", retry=False)
                self.addresses = addresses
                self.resolved_at = time.monotonic()
            return self.addresses

    async def _connect(self) -> Http1Connection | H2Connection:
        """A new connection, to the first of the service's addresses that answers: one that
        refuses or does not answer within `CONNECT_SECONDS` is tried last next time."""
        addresses = await self._resolve()
        context = None
        if self.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            context.set_alpn_protocols(["h2", "http/1.1"])
        failure: BaseException | None = None
        for address in list(addresses):
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    address, self.port, ssl=context, server_hostname=self.host if context else None,
                    limit=MAX_HEADER_BYTES + 1024), CONNECT_SECONDS)
                break
            except (OSError, TimeoutError) as exc:
                failure = exc
                if address in self.addresses and len(self.addresses) > 1:
                    self.addresses.remove(address)
                    self.addresses.append(address)
        else:
            assert failure is not None
            raise failure
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = writer.get_extra_info("ssl_object")
        self.speaks_h2 = tls is not None and tls.selected_alpn_protocol() == "h2"
        if not self.speaks_h2:
            return Http1Connection(reader, writer)
        connection = H2Connection(reader, writer, self._room.set)
        # A service sends its SETTINGS at once: waiting for them (a moment) means its limit
        # on streams is known before the first request, and none is refused for exceeding it.
        try:
            await asyncio.wait_for(connection.settings_arrived.wait(), SETTINGS_SECONDS)
        except TimeoutError:
            pass  # then 100 at first, as RFC 9113 suggests, until they come
        return connection

    async def _http2(self) -> H2Connection | None:
        """An HTTP/2 connection with room for one more request, opening one if all are full;
        None if the service speaks HTTP/1.1 only (or plain http)."""
        while self.speaks_h2 is not False and self.scheme == "https":
            self.http2 = [connection for connection in self.http2 if connection.usable]
            for connection in self.http2:
                if connection.has_room:
                    connection.claim()
                    return connection
            if len(self.http2) < MAX_HTTP2_CONNECTIONS and not self._connecting.locked():
                async with self._connecting:
                    try:
                        opened = await asyncio.wait_for(self._connect(), TIMEOUT)
                    finally:
                        self._room.set()  # those waiting for this connection: look again (or try)
                    if isinstance(opened, Http1Connection):
                        self.idle.append(opened)  # HTTP/1.1 after all: the first of the pool
                        return None
                    self.http2.append(opened)
                continue
            self._room.clear()
            await self._room.wait()
        return None

    @property
    def authority(self) -> str:
        return self.host if self.port == (443 if self.scheme == "https" else 80) else f"{self.host}:{self.port}"

    def _head(self, target: str, headers: list[tuple[str, str]], length: int) -> bytes:
        return (
            f"POST {target} HTTP/1.1\r\nHost: {self.authority}\r\nContent-Length: {length}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        ).encode("latin-1")

    async def post(self, target: str, headers: list[tuple[str, str]], body: bytes) -> Response:
        for attempt in range(UNPROCESSED_ATTEMPTS):
            try:
                # One timeout for both: no task of its own per request (asyncio.wait_for's).
                async with asyncio.timeout(TIMEOUT):
                    http2 = await self._http2()
                    if http2 is None:
                        break
                    return await http2.request(self.authority, target, headers, body, claimed=True)
            except Unprocessed as exc:
                if attempt == UNPROCESSED_ATTEMPTS - 1:
                    raise exc from None
                continue  # never acted on: at once, on another connection
            except _FAILURES as exc:
                raise _as_push_error(exc, self.host) from None
        async with self.slots:
            return await self._post_http1(target, headers, body)

    async def _post_http1(self, target: str, headers: list[tuple[str, str]], body: bytes) -> Response:
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
            if isinstance(connection, H2Connection):  # HTTP/2 now, after HTTP/1.1 before
                self.http2.append(connection)
                return await asyncio.wait_for(connection.request(self.authority, target, headers, body), TIMEOUT)
            return await self._exchange(connection, head, body)
        except _FAILURES as exc:
            raise _as_push_error(exc, self.host) from None

    async def _exchange(self, connection: Http1Connection, head: bytes, body: bytes) -> Response:
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
        for http2 in self.http2:
            http2.close()
        self.http2.clear()


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
