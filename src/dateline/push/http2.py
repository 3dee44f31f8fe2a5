"""HTTP/2 to a push service (RFC 9113), written for the one request a push is: a POST with
the same headers as the rest of its batch, a body under 4 KB, an answer of a status and a
few headers. Framing by hand costs a few microseconds a request; a general HTTP/2 library
spent more on each request than the message's encryption (docs/performance.md). `hpack`
decodes the answers' headers; the requests' headers need no compression state at all.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import hpack

from .connections import MAX_BODY_BYTES, MAX_HEADER_BYTES, PushHttpError, Response, Unprocessed

# Per connection, however many the service would allow: many streams on one TCP connection
# all stall together when it loses a packet, and a connection's share of a batch is then
# late together. The service's own limit wins when lower.
MAX_STREAMS = 128
STREAMS_BEFORE_SETTINGS = 100  # until the service's SETTINGS arrive (RFC 9113 recommends at least this)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
REFUSED_STREAM, PROTOCOL_ERROR, CANCEL = 0x7, 0x1, 0x8
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
# What we receive: an answer's body up to MAX_BODY_BYTES fits its stream's window, so no
# stream ever needs a WINDOW_UPDATE from us; the connection's is topped up in large steps.
OUR_STREAM_WINDOW = MAX_BODY_BYTES + 1
OUR_CONNECTION_WINDOW = 1 << 24
_frame_head = struct.Struct(">I B I")  # length (24 bits) and type packed in the first word
_setting = struct.Struct(">HI")


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return _frame_head.pack(len(payload) << 8 | kind, flags, stream_id) + payload


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The static table's names (RFC 7541 appendix A) that push requests use.
_STATIC_NAMES = {":authority": 1, ":path": 4, "authorization": 23, "content-encoding": 26,
                 "content-length": 28, "content-type": 31}


def header_field(name: str, value: str) -> bytes:
    """One header, a literal never added to the service's table (its table stays empty, and
    a credential shares no compression state with anything), not Huffman-coded (coding the
    VAPID token in Python cost more than it saves on the wire). Never-indexed for the
    Authorization header, so intermediaries do not index it either (RFC 7541 6.2.3)."""
    first = 0x10 if name == "authorization" else 0x00
    raw = value.encode("latin-1")
    index = _STATIC_NAMES.get(name)
    named = _hpack_int(index, 4, first) if index else bytes([first]) + _hpack_int(len(name), 7, 0) + name.encode()
    return named + _hpack_int(len(raw), 7, 0) + raw


# ":method: POST" and ":scheme: https" by their static indexes, after a table size update to
# 0: the service's decoder then expects no table of ours, whatever it later allows.
_POST_HTTPS = b"\x20\x83\x87"


@dataclass
class _Stream:
    future: asyncio.Future[Response]
    window: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


class ProtocolError(PushHttpError):
    pass


class H2Connection:
    """One HTTP/2 connection to a push service, shared by many requests: at most as many at
    once as the service's SETTINGS_MAX_CONCURRENT_STREAMS (and `MAX_STREAMS`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_room: Callable[[], None] = lambda: None) -> None:
        self.writer = writer
        self.on_room = on_room  # a stream slot freed, or the connection ended: the service's waiters
        # The service's first SETTINGS (how many streams it allows); also set once closed.
        self.settings_arrived = asyncio.Event()
        self.going_away = False  # GOAWAY received (or stream ids used up): no new requests here
        self.closed = False
        self.claimed = 0
        self.streams: dict[int, _Stream] = {}
        self.next_stream_id = 1
        self.max_streams = MAX_WINDOW  # the service's SETTINGS_MAX_CONCURRENT_STREAMS
        self.max_frame = 16_384
        self.initial_window = DEFAULT_WINDOW  # of each stream we open, by the service's SETTINGS
        self.window = DEFAULT_WINDOW  # the connection's, for what we send
        self.unacknowledged = 0  # received on the connection and not yet given back
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = MAX_HEADER_BYTES
        self._blocks: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self._out: list[bytes] = []  # written once a turn of the loop: one TLS record for many
        self._room = asyncio.Event()  # set when flow-control window or a stream slot frees up
        self._loop = asyncio.get_running_loop()
        settings = _setting.pack(0x2, 0) + _setting.pack(0x4, OUR_STREAM_WINDOW)  # no server push
        self._send(PREFACE + frame(SETTINGS, 0, 0, settings)
                   + frame(WINDOW_UPDATE, 0, 0, (OUR_CONNECTION_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big")))
        self._reader = self._loop.create_task(self._read(reader))

    @property
    def limit(self) -> int:
        allowed = min(self.max_streams, MAX_STREAMS)
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

    # --- sending ---------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if self._out and not self.writer.is_closing():
            self.writer.write(b"".join(self._out))
        self._out.clear()

    def _header_block(self, authority: str, target: str, headers: list[tuple[str, str]], length: int) -> bytes:
        key = (authority, tuple(headers))
        shared = self._blocks.get(key)
        if shared is None:  # once a batch: every request of a batch carries the same headers
            if len(self._blocks) > 16:
                self._blocks.clear()
            shared = self._blocks[key] = b"".join(header_field(name.lower(), value) for name, value in headers)
        return (_POST_HTTPS + header_field(":authority", authority) + header_field(":path", target)
                + header_field("content-length", str(length)) + shared)

    async def request(self, authority: str, target: str, headers: list[tuple[str, str]], body: bytes,
                      claimed: bool = False) -> Response:
        if claimed:
            self.claimed -= 1  # its stream is registered below, before anything is awaited
        while len(self.streams) >= self.limit and self.usable:
            self._room.clear()
            await self._room.wait()
        if not self.usable:
            raise Unprocessed("the HTTP/2 connection is closing; not sent")
        stream_id = self.next_stream_id
        self.next_stream_id += 2
        if self.next_stream_id > MAX_WINDOW:
            self.going_away = True  # ids used up: the next request opens another connection
        stream = self.streams[stream_id] = _Stream(self._loop.create_future(), self.initial_window)
        try:
            block = self._header_block(authority, target, headers, len(body))
            flags = END_HEADERS if body else END_HEADERS | END_STREAM
            if len(block) <= self.max_frame:
                self._send(frame(HEADERS, flags, stream_id, block))
            else:
                self._send(frame(HEADERS, flags & ~END_HEADERS, stream_id, block[:self.max_frame]))
                for start in range(self.max_frame, len(block), self.max_frame):
                    piece = block[start:start + self.max_frame]
                    last = start + self.max_frame >= len(block)
                    self._send(frame(CONTINUATION, END_HEADERS if last else 0, stream_id, piece))
            sent = 0
            while sent < len(body):
                size = min(self.window, stream.window, len(body) - sent, self.max_frame)
                if size <= 0:
                    self._room.clear()
                    await self._room.wait()
                    if self.closed or stream.future.done():
                        break  # the answer (an error, or the connection's end) is in the future
                    continue
                self.window -= size
                stream.window -= size
                last = sent + size == len(body)
                self._send(frame(DATA, END_STREAM if last else 0, stream_id, body[sent:sent + size]))
                sent += size
            return await stream.future
        except BaseException:
            if self.streams.pop(stream_id, None) is not None and not self.closed:
                # Given up (a timeout): tell the service.
                self._send(frame(RST_STREAM, 0, stream_id, CANCEL.to_bytes(4, "big")))
                self._freed()
            raise

    # --- receiving -------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        reason = "the connection closed before an answer"
        buffer = b""
        block: list[bytes] = []  # a header block still waiting for its CONTINUATION
        block_stream, block_ends = 0, False
        try:
            while data := await reader.read(65_536):
                buffer = buffer + data if buffer else data
                offset = 0
                while len(buffer) - offset >= 9:
                    word, flags, stream_id = _frame_head.unpack_from(buffer, offset)
                    length, kind = word >> 8, word & 0xFF
                    if length > 16_384:  # our SETTINGS_MAX_FRAME_SIZE is the default
                        raise ProtocolError("the push service sent an oversized frame")
                    if len(buffer) - offset - 9 < length:
                        break
                    payload = buffer[offset + 9:offset + 9 + length]
                    offset += 9 + length
                    stream_id &= MAX_WINDOW
                    if kind in (DATA, HEADERS, CONTINUATION, RST_STREAM) and not stream_id:
                        raise ProtocolError("the push service sent a stream's frame on the connection")
                    if block and (kind != CONTINUATION or stream_id != block_stream):
                        raise ProtocolError("the push service broke off a header block")
                    if kind in (HEADERS, CONTINUATION):
                        if kind == HEADERS:
                            payload = _unpadded(payload, flags, 5 if flags & PRIORITY_FLAG else 0)
                            block_stream, block_ends = stream_id, bool(flags & END_STREAM)
                        elif not block:
                            raise ProtocolError("the push service sent a CONTINUATION out of place")
                        block.append(payload)
                        if sum(map(len, block)) > MAX_HEADER_BYTES:
                            raise ProtocolError("the push service sent oversized headers")
                        if flags & END_HEADERS:
                            self._on_headers(stream_id, b"".join(block), end=block_ends)
                            block = []
                    else:
                        self._on_frame(kind, flags, stream_id, payload)
                buffer = buffer[offset:]
                if self.going_away and not self.streams:
                    break  # every answer it still owed has come
        except (OSError, PushHttpError, hpack.HPACKError) as exc:
            reason = f"{reason} ({exc})"
            if isinstance(exc, (ProtocolError, hpack.HPACKError)) and not self.writer.is_closing():
                self._send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, PROTOCOL_ERROR)))
                self._flush()
        finally:
            self.closed = True
            for stream in self.streams.values():
                if not stream.future.done():
                    stream.future.set_exception(PushHttpError(reason))
            self.streams.clear()
            self._room.set()
            self.settings_arrived.set()
            self.on_room()
            self._flush()
            self.writer.close()

    def _on_headers(self, stream_id: int, block: bytes, end: bool) -> None:
        fields = self.decoder.decode(block, raw=True)  # always: the table is the connection's
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # an answer to a request given up on
        if not stream.status:
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in fields}
            status = headers.get(":status", "")
            if not (len(status) == 3 and status.isascii() and status.isdigit()):
                raise ProtocolError("the push service answered without a status")
            if 100 <= int(status) < 200 and not end:
                return  # informational: the answer follows
            stream.status, stream.headers = int(status), headers
        if end:
            self._finish(stream_id, stream)

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if kind == DATA:
            self.unacknowledged += len(payload)
            if self.unacknowledged > OUR_CONNECTION_WINDOW // 2:
                self._send(frame(WINDOW_UPDATE, 0, 0, self.unacknowledged.to_bytes(4, "big")))
                self.unacknowledged = 0
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            stream.body += _unpadded(payload, flags, 0)
            if len(stream.body) > MAX_BODY_BYTES:
                del self.streams[stream_id]
                self._send(frame(RST_STREAM, 0, stream_id, CANCEL.to_bytes(4, "big")))
                stream.future.set_exception(PushHttpError("the push service sent an oversized answer"))
                self._freed()
            elif flags & END_STREAM:
                self._finish(stream_id, stream)
        elif kind == SETTINGS:
            if flags & ACK:
                return
            if len(payload) % 6:
                raise ProtocolError("the push service sent malformed SETTINGS")
            for offset in range(0, len(payload), 6):
                self._setting(*_setting.unpack_from(payload, offset))
            self._send(frame(SETTINGS, ACK, 0))
            self.settings_arrived.set()
            self._freed()
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & MAX_WINDOW
            if stream_id == 0:
                self.window += increment
            elif stream_id in self.streams:
                self.streams[stream_id].window += increment
            self._room.set()
        elif kind == RST_STREAM:
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                code = int.from_bytes(payload[:4], "big")
                error = Unprocessed if code == REFUSED_STREAM else PushHttpError
                stream.future.set_exception(error(f"the push service reset the request (code {code})"))
                self._freed()
        elif kind == PING:
            if not flags & ACK:
                self._send(frame(PING, ACK, 0, payload[:8]))
        elif kind == GOAWAY:
            if len(payload) < 8:
                raise ProtocolError("the push service sent a malformed GOAWAY")
            last, code = struct.unpack_from(">II", payload)
            self._going_away(last & MAX_WINDOW, code)
        elif kind == PUSH_PROMISE:
            raise ProtocolError("the push service pushed, after we said not to")
        # PRIORITY and frame types this version does not know: ignored, as RFC 9113 says.

    def _setting(self, code: int, value: int) -> None:
        if code == 0x3:
            self.max_streams = value
        elif code == 0x4:
            if value > MAX_WINDOW:
                raise ProtocolError("the push service set a window beyond 2^31-1")
            for stream in self.streams.values():
                stream.window += value - self.initial_window
            self.initial_window = value
        elif code == 0x5:
            if not 16_384 <= value <= 16_777_215:
                raise ProtocolError("the push service set an impossible frame size")
            self.max_frame = value
        # HEADER_TABLE_SIZE: ours is 0 whatever it allows; the others do not concern a client.

    def _finish(self, stream_id: int, stream: _Stream) -> None:
        del self.streams[stream_id]
        if not stream.future.done():
            stream.future.set_result(Response(stream.status, stream.headers, bytes(stream.body)))
        self._freed()

    def _freed(self) -> None:
        self._room.set()
        if self.usable:
            self.on_room()

    def _going_away(self, last_stream_id: int, code: int) -> None:
        """Requests past `last_stream_id` were never acted on: they go again elsewhere. Those
        up to it are still answered here, then the connection closes."""
        self.going_away = True
        for stream_id in [sid for sid in self.streams if sid > last_stream_id]:
            self.streams.pop(stream_id).future.set_exception(
                Unprocessed(f"the push service went away (code {code}) before this request"))
        self._room.set()
        self.on_room()  # waiting requests: to another connection

    def close(self) -> None:
        self.closed = True
        self._reader.cancel()
        self._flush()
        self.writer.close()


def _unpadded(payload: bytes, flags: int, skip: int) -> bytes:
    """A frame's payload without its padding (and a HEADERS frame's priority fields)."""
    if not flags & PADDED:
        return payload[skip:] if skip else payload
    pad = payload[0] if payload else 0
    if pad + 1 + skip > len(payload):
        raise ProtocolError("the push service padded a frame beyond its length")
    return payload[1 + skip:len(payload) - pad]
