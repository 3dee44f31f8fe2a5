"""What a push service answers, how a request fails, and HTTP/1.1: one kept-alive
connection a request at a time, for a service that does not speak HTTP/2 (`http2.py`;
`client.PushClient` picks by ALPN and keeps the connections)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 65_536


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
