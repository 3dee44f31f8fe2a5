"""A small server-sent events client for the live-stream tests, written from the standard.

`SSEParser` follows WHATWG HTML, "Interpreting an event stream" (9.2.6), step by step: UTF-8
decoding with replacement, one leading BOM ignored, lines ending in CRLF, LF or a lone CR,
comments, the `event`/`data`/`id`/`retry` fields, dispatch on an empty line, and an incomplete
event at the end of the stream discarded. It is fed bytes in chunks of any size, so a CR at the
end of one chunk and an LF at the start of the next are one line break.

`SSEStream` is one reader: a raw HTTP/1.1 socket (so a test can choose its receive buffer or
stop reading altogether), the response head, chunked transfer decoding, then the parser.
Nothing here knows Dateline; it only knows the two standards.
"""

from __future__ import annotations

import codecs
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Event:
    """A dispatched event: what a browser's `onmessage` / `addEventListener` receives."""

    type: str
    data: str
    last_event_id: str

    @property
    def id(self) -> int:
        return int(self.last_event_id)

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Comment:
    """A line starting with a colon (a keep-alive); browsers ignore it, tests look at it."""

    text: str


@dataclass
class SSEParser:
    last_event_id: str = ""
    retry_ms: int | None = None
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    _pending: str = ""
    _started: bool = False
    _data: str = ""
    _type: str = ""
    _id_buffer: str = ""

    def feed(self, chunk: bytes, final: bool = False) -> list[Event | Comment]:
        text = self._decoder.decode(chunk, final)
        if not self._started and (text or final):
            # One BOM at the very start is dropped; a second one, in this chunk or the next, is text.
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        self._pending += text
        out: list[Event | Comment] = []
        while True:
            line, rest = _split_line(self._pending, final)
            if line is None:
                break
            self._pending = rest
            self._process(line, out)
        if final:
            # End of the stream: an event without its closing blank line is not dispatched.
            self._pending = ""
            self._data = self._type = ""
        return out

    def close(self) -> list[Event | Comment]:
        return self.feed(b"", final=True)

    def _process(self, line: str, out: list[Event | Comment]) -> None:
        if line == "":
            self._dispatch(out)
            return
        if line.startswith(":"):
            out.append(Comment(line[1:]))
            return
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            self._type = value
        elif name == "data":
            self._data += value + "\n"
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry":
            if value and all("0" <= c <= "9" for c in value):
                self.retry_ms = int(value)
        # any other field is ignored

    def _dispatch(self, out: list[Event | Comment]) -> None:
        self.last_event_id = self._id_buffer
        if self._data == "":
            self._type = ""
            return
        data = self._data[:-1] if self._data.endswith("\n") else self._data
        out.append(Event(self._type or "message", data, self.last_event_id))
        self._data = self._type = ""


def _split_line(buffer: str, final: bool) -> tuple[str | None, str]:
    """The first complete line of `buffer` and the rest; (None, buffer) if there is none yet."""
    lf = buffer.find("\n")
    cr = buffer.find("\r", 0, lf if lf >= 0 else len(buffer))
    if cr >= 0:
        if cr + 1 < len(buffer):
            return buffer[:cr], buffer[cr + 2:] if buffer[cr + 1] == "\n" else buffer[cr + 1:]
        if final:
            return buffer[:cr], ""
        return None, buffer  # a CR last: the LF of a CRLF may be in the next chunk
    if lf >= 0:
        return buffer[:lf], buffer[lf + 1:]
    return None, buffer


def parse(payload: bytes | str, chunk_sizes: list[int] | None = None) -> tuple[list[Event | Comment], SSEParser]:
    """Parse a whole stream (optionally fed in chunks of the given sizes); items and the parser."""
    raw = payload.encode() if isinstance(payload, str) else payload
    parser = SSEParser()
    items: list[Event | Comment] = []
    position = 0
    for size in chunk_sizes or []:
        items += parser.feed(raw[position:position + size])
        position += size
    items += parser.feed(raw[position:])
    items += parser.close()
    return items, parser


# --- one reader over a socket -------------------------------------------------------------


class StreamClosed(Exception):
    """The server ended the response (or the connection)."""


class SSEStream:
    """GET an event stream over a raw socket and parse it as a browser would.

    `rcvbuf` shrinks the socket's receive buffer before connecting (a reader on a bad line);
    a stream that is never read is a reader that stopped reading.
    """

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, *, rcvbuf: int | None = None,
        timeout: float = 10.0, raw_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1".encode(), f"Host: {parts.netloc}".encode(),
                 b"Accept: text/event-stream", b"Cache-Control: no-cache"]
        lines += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
        lines += [k + b": " + v for k, v in raw_headers or []]
        self.sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        self.parser = SSEParser()
        self.items: list[Event | Comment] = []  # everything parsed so far, in order
        self._queue: list[Event | Comment] = []
        self._raw = b""
        self._chunked = False
        self._chunk_left = 0
        self._eof = False
        self.ended_cleanly = False  # the last chunk came (not just the connection closing)
        self.body_bytes = 0
        self.status = 0
        self.headers: dict[str, str] = {}
        self._read_head(timeout)

    # -- HTTP -------------------------------------------------------------------------------

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the server in time") from None
        except ConnectionResetError:
            data = b""
        return data

    def _read_head(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._raw:
            data = self._recv(deadline)
            if not data:
                raise StreamClosed("connection closed before the response head")
            self._raw += data
        head, self._raw = self._raw.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._content_left = int(self.headers.get("content-length", "-1"))

    def _body(self) -> bytes:
        """Decode what is buffered into body bytes (chunked or not); sets _eof at the end."""
        if not self._chunked:
            data, self._raw = self._raw, b""
            if self._content_left >= 0:
                self._content_left -= len(data)
                if self._content_left <= 0:
                    self._eof = True
            return data
        out = b""
        while self._raw:
            if self._chunk_left == 0:
                if b"\r\n" not in self._raw:
                    break
                size_line, rest = self._raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self._eof = self.ended_cleanly = True
                    self._raw = b""
                    break
                self._raw = rest
                self._chunk_left = size + 2  # the data and its CRLF
            before = self._chunk_left
            take = self._raw[:before]
            self._raw = self._raw[len(take):]
            self._chunk_left -= len(take)
            out += take[: max(0, min(len(take), before - 2))]  # not the chunk's closing CRLF
        return out

    def read_body(self, deadline: float) -> bytes:
        """The next bytes of the response body, unparsed; b"" once it has ended."""
        if self._eof:
            return b""
        body = self._body()
        if not body and not self._eof:
            data = self._recv(deadline)
            if not data:
                self._eof = True
            self._raw += data
            body = self._body()
        self.body_bytes += len(body)
        return body

    def _pump(self, deadline: float) -> None:
        """Read once from the socket and parse; raises StreamClosed at the end of the body."""
        if self._eof:
            raise StreamClosed("the response has ended")
        body = self.read_body(deadline)
        parsed = self.parser.feed(body, final=self._eof)
        self.items += parsed
        self._queue += parsed

    # -- reading ----------------------------------------------------------------------------

    def next_item(self, timeout: float = 10.0) -> Event | Comment:
        deadline = time.monotonic() + timeout
        while not self._queue:
            self._pump(deadline)
        return self._queue.pop(0)

    def next_event(self, timeout: float = 10.0) -> Event:
        """The next event, skipping comments; TimeoutError or StreamClosed if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next_item(max(0.001, deadline - time.monotonic()))
            if isinstance(item, Event):
                return item

    def events(self, count: int, timeout: float = 15.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        return [self.next_event(max(0.001, deadline - time.monotonic())) for _ in range(count)]

    def events_until(self, last_id: int, timeout: float = 15.0) -> list[Event]:
        """Events up to and including the one with id `last_id` (or beyond it)."""
        deadline = time.monotonic() + timeout
        got: list[Event] = []
        while not got or got[-1].id < last_id:
            got.append(self.next_event(max(0.001, deadline - time.monotonic())))
        return got

    def read_to_end(self, timeout: float = 15.0) -> list[Event | Comment]:
        """Everything until the server ends the response; TimeoutError if it does not."""
        deadline = time.monotonic() + timeout
        rest: list[Event | Comment] = []
        try:
            while True:
                rest.append(self.next_item(max(0.001, deadline - time.monotonic())))
        except StreamClosed:
            return rest + self._drain_queue()

    def _drain_queue(self) -> list[Event | Comment]:
        queued, self._queue = self._queue, []
        return queued

    @property
    def received_events(self) -> list[Event]:
        return [item for item in self.items if isinstance(item, Event)]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "SSEStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record(url: str, path: str) -> None:
    """Read a stream as fast as it comes and append its body bytes to a file, until it ends.

    Run as a separate process (`python sse_client.py URL FILE`): a reader with a CPU and an
    interpreter of its own, however busy the test process is. The file ends with a line
    `#closed` once the server has ended the stream.
    """
    stream = SSEStream(url)
    with open(path, "ab", buffering=0) as out:
        while True:
            try:
                body = stream.read_body(time.monotonic() + 3600)
            except TimeoutError:
                continue
            if not body and stream._eof:
                out.write(b"\n#closed\n")
                return
            out.write(body)


if __name__ == "__main__":
    import sys

    record(sys.argv[1], sys.argv[2])
