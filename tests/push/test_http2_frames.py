"""The push client's HTTP/2 framing against a service that answers with hand-made frames:
the legal but unusual shapes (padding, priority, a header block split over CONTINUATION, an
informational answer first) are read right, and every malformed or hostile frame ends the
request with an error, a GOAWAY to the service and nothing left running."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import hpack
import pytest

from dateline.push.connections import MAX_HEADER_BYTES, PushHttpError, Response, Unprocessed
from dateline.push.http2 import H2Connection

DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 5, 7, 8, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes = b"", length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return struct.pack(">I", size)[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def headers_block(*fields: tuple[bytes, bytes]) -> bytes:
    return hpack.Encoder().encode(list(fields))


Frame = tuple[int, int, int, bytes]  # kind, flags, stream, payload


async def read_frames(reader: asyncio.StreamReader, until: Callable[[int, int, int], bool]) -> list[Frame]:
    """The client's frames, after its preface, until `until(kind, flags, stream)` holds."""
    assert await reader.readexactly(len(PREFACE)) == PREFACE
    frames: list[Frame] = []
    while True:
        head = await reader.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        kind, flags, stream = head[3], head[4], int.from_bytes(head[5:], "big")
        frames.append((kind, flags, stream, await reader.readexactly(length)))
        if until(kind, flags, stream):
            return frames


Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def exchange(answer: Answer, body: bytes = b"an encrypted message") -> tuple[Any, list[Frame]]:
    """One request through H2Connection to a service that plays `answer`. Returns the
    request's result (a Response or the exception it raised) and every frame the client
    sent, checking that no task of the client's failed unseen."""
    sent: list[Frame] = []
    unseen: list[dict[str, Any]] = []
    served = asyncio.Event()

    async def service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x3, 10)))
        sent.extend(await read_frames(reader, lambda kind, flags, stream: stream == 1 and bool(flags & END_STREAM)))
        await answer(reader, writer)
        await writer.drain()
        try:  # whatever the client still says before it closes (a GOAWAY)
            while data := await asyncio.wait_for(reader.read(65_536), 2):
                offset = 0
                while offset + 9 <= len(data):
                    length = int.from_bytes(data[offset:offset + 3], "big")
                    sent.append((data[offset + 3], data[offset + 4], int.from_bytes(data[offset + 5:offset + 9], "big"),
                                 data[offset + 9:offset + 9 + length]))
                    offset += 9 + length
        except (TimeoutError, ConnectionError):
            pass
        writer.close()
        await writer.wait_closed()
        served.set()

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unseen.append(context))
        server = await asyncio.start_server(service, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        connection = H2Connection(reader, writer)
        try:
            result: Any = await asyncio.wait_for(
                connection.request("push.example", "/push/1", [("ttl", "60"), ("urgency", "high")], body), 5)
        except PushHttpError as exc:
            result = exc
        await asyncio.sleep(0.2)
        connection.close()
        await asyncio.wait_for(served.wait(), 5)
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return result

    result = asyncio.run(main())
    assert unseen == [], unseen
    return result, sent


def answer_with(*frames: bytes) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"".join(frames))
    return answer


def test_the_request_goes_out_as_one_post_with_its_headers_and_body() -> None:
    block = headers_block((b":status", b"201"), (b"location", b"/m/1"))
    result, sent = exchange(answer_with(raw_frame(HEADERS, END_HEADERS | END_STREAM, 1, block)))
    assert result == Response(201, {":status": "201", "location": "/m/1"}, b"")
    request = [payload for kind, _, stream, payload in sent if kind == HEADERS and stream == 1]
    fields: dict[Any, Any] = dict(hpack.Decoder().decode(request[0]))
    assert fields == {":method": "POST", ":scheme": "https", ":authority": "push.example", ":path": "/push/1",
                      "content-length": str(len(b"an encrypted message")), "ttl": "60", "urgency": "high"}
    data = b"".join(payload for kind, _, stream, payload in sent if kind == DATA and stream == 1)
    assert data == b"an encrypted message"
    settings = next(payload for kind, flags, _, payload in sent if kind == SETTINGS and not flags)
    assert (0x2, 0) in [struct.unpack_from(">HI", settings, i) for i in range(0, len(settings), 6)]  # no server push


def test_padding_priority_continuation_and_an_informational_answer_are_read_right() -> None:
    informational = headers_block((b":status", b"100"))
    block = headers_block((b":status", b"400"), (b"content-type", b"text/plain"), (b"x-reason", b"x" * 300))
    # pad length, priority (dependency and weight), the block's first part, the padding
    padded_head = bytes([7]) + b"\x00\x00\x00\x00\x10" + block[:100] + b"\x00" * 7
    result, _ = exchange(answer_with(
        raw_frame(HEADERS, END_HEADERS, 1, informational),
        raw_frame(HEADERS, PADDED | PRIORITY, 1, padded_head),
        raw_frame(CONTINUATION, 0, 1, block[100:200]),
        raw_frame(CONTINUATION, END_HEADERS, 1, block[200:]),
        raw_frame(DATA, PADDED, 1, bytes([3]) + b"bad " + b"\x00" * 3),
        raw_frame(DATA, END_STREAM, 1, b"token"),
    ))
    assert isinstance(result, Response), result
    assert (result.status, result.headers["x-reason"], result.body) == (400, "x" * 300, b"bad token")


def test_a_goaway_before_the_request_leaves_it_unprocessed_to_be_sent_elsewhere() -> None:
    result, _ = exchange(answer_with(raw_frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0))))
    assert isinstance(result, Unprocessed), result


def test_a_refused_stream_is_unprocessed_and_another_reset_is_an_error() -> None:
    refused, _ = exchange(answer_with(raw_frame(RST_STREAM, 0, 1, struct.pack(">I", 0x7))))
    assert isinstance(refused, Unprocessed), refused
    reset, _ = exchange(answer_with(raw_frame(RST_STREAM, 0, 1, struct.pack(">I", 0x2))))
    assert isinstance(reset, PushHttpError) and not isinstance(reset, Unprocessed), reset


CREATED = headers_block((b":status", b"201"))
ENDS = END_HEADERS | END_STREAM
HOSTILE = {
    "a GOAWAY too short to read": raw_frame(GOAWAY, 0, 0, b"\x00\x00"),
    "a status that is not three digits": raw_frame(HEADERS, ENDS, 1, headers_block((b":status", b"\xb200"))),
    "no status at all": raw_frame(HEADERS, ENDS, 1, headers_block((b"server", b"x"))),
    "a frame over the size we allow": raw_frame(DATA, 0, 1, b"", length=20_000) + b"\x00" * 20_000,
    "a server push we refused": raw_frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + CREATED),
    "a CONTINUATION with no HEADERS before it": raw_frame(CONTINUATION, END_HEADERS, 1, CREATED),
    "a header block broken off by another frame": raw_frame(HEADERS, 0, 1, CREATED)
    + raw_frame(DATA, END_STREAM, 1, b"x"),
    "a stream's DATA on the connection": raw_frame(DATA, 0, 0, b"x"),
    "headers beyond the limit, over many CONTINUATIONs": raw_frame(HEADERS, 0, 1, CREATED)
    + b"".join(raw_frame(CONTINUATION, 0, 1, b"\x00" * 4_000) for _ in range(MAX_HEADER_BYTES // 4_000 + 2)),
    "padding longer than the frame": raw_frame(DATA, PADDED | END_STREAM, 1, bytes([200]) + b"x"),
    "a header block hpack cannot decode": raw_frame(HEADERS, ENDS, 1, b"\xff\xff\xff\xff\xff"),
    "a window beyond 2^31-1": raw_frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, 2**31)),
}


@pytest.mark.parametrize("frames", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_malformed_answer_fails_the_request_and_the_service_is_told(frames: bytes) -> None:
    result, sent = exchange(answer_with(frames))
    assert isinstance(result, PushHttpError) and not isinstance(result, Unprocessed), result
    goaways = [payload for kind, _, stream, payload in sent if kind == GOAWAY]
    assert [struct.unpack(">II", payload)[1] for payload in goaways] == [0x1]  # PROTOCOL_ERROR, once
