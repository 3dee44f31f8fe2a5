"""The first read of every connection (web/first_read.py), as `dateline serve` runs it.

A readers' stream whose whole head arrives in the first read is handed to its own protocol
without uvicorn's protocol ever being built. A head in pieces, a head that comes late, or a
head followed by something more goes the ordinary way and is served all the same. The limits
of the ordinary way are checked against a real process in tests/test_http_limits.py.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from conftest import Site
from live_helpers import InProcessServer, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import SSEStream

from dateline.live.connection import ReaderConnection
from dateline.web import first_read
from dateline.web.server import SLOW_AFTER_SECONDS, HttpProtocol


@pytest.fixture
def ordinary(monkeypatch: pytest.MonkeyPatch) -> list[HttpProtocol]:
    """Every `HttpProtocol` that FirstRead builds, from here on."""
    built: list[HttpProtocol] = []

    class Counted(HttpProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(first_read, "HttpProtocol", Counted)
    return built


def stream_head(slug: str) -> bytes:
    return (f"GET /stories/{slug}/live HTTP/1.1\r\nHost: dateline.test\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {data[-500:]!r}"
        data += chunk
    return data


def open_stream(server: InProcessServer, *pieces: bytes, pause: float = 0.1) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", server.port))
    for i, piece in enumerate(pieces):
        if i:
            time.sleep(pause)
        sock.sendall(piece)
    return sock, read_until(sock, b": live\n\n")


def test_a_stream_whose_head_comes_at_once_never_builds_the_ordinary_protocol(
    site: Site, serve, ordinary: list[HttpProtocol]  # noqa: F811
) -> None:
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    assert ordinary, "the API's requests went the ordinary way: the count can tell"
    before = len(ordinary)
    sock, head = open_stream(server, stream_head(slug))
    with sock:
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"text/event-stream" in head
        assert len(ordinary) == before
        (subscriber,) = server.subscribers()
        assert isinstance(subscriber, ReaderConnection)
        wait_for(lambda: server.call(lambda: subscriber.transport is not None), what="the stream to go live")
        api.post(slug, "Handed over at the first read")
        read_until(sock, b"Handed over at the first read")
        # Nothing of the first read stays behind the stream, or in uvicorn's connections.
        assert not any(isinstance(c, first_read.FirstRead) for c in server.call(
            lambda: list(server.server.server_state.connections)))
    wait_for(lambda: server.hub_count() == 0, what="the reader to leave the hub")


@pytest.mark.parametrize("how", ["in pieces", "late", "with another request behind it"])
def test_any_other_first_read_goes_the_ordinary_way_and_is_served(
    site: Site, serve, ordinary: list[HttpProtocol], how: str  # noqa: F811
) -> None:
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    before = len(ordinary)
    head = stream_head(slug)
    if how == "in pieces":
        sock, answer = open_stream(server, head[:20], head[20:])
    elif how == "late":  # nothing for longer than the grace: the ordinary limits take over
        sock, answer = open_stream(server, b"", head, pause=SLOW_AFTER_SECONDS + 0.3)
    else:
        sock, answer = open_stream(server, head + b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline.test\r\n\r\n")
    with sock:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"text/event-stream" in answer
        assert len(ordinary) == before + 1
        (subscriber,) = server.subscribers()
        assert isinstance(subscriber, ReaderConnection)  # handed over all the same, by HttpProtocol
        wait_for(lambda: server.call(lambda: subscriber.transport is not None), what="the stream to go live")
        api.post(slug, f"Served {how}")
        read_until(sock, f"Served {how}".encode())
    wait_for(lambda: server.hub_count() == 0, what="the reader to leave the hub")


def test_a_connection_that_closes_before_asking_anything_is_forgotten(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()

    def waiting() -> list[object]:
        return server.call(lambda: [c for c in server.server.server_state.connections
                                    if isinstance(c, first_read.FirstRead)])

    sock = socket.create_connection(("127.0.0.1", server.port))
    wait_for(lambda: len(waiting()) == 1, what="the connection to be waiting for its first read")
    sock.close()
    wait_for(lambda: not waiting(), what="the connection to leave uvicorn's connections")
    # ...and the connections waiting the grace, which share one timer
    assert server.call(lambda: len(server.server.server_state.first_reads.connections)) == 0


def test_connections_silent_past_the_grace_go_the_ordinary_way_on_one_timer(
    site: Site, serve, ordinary: list[HttpProtocol]  # noqa: F811
) -> None:
    """Silent connections made at different moments each become HttpProtocol once their own
    grace is over, not all at the first one's, and a head sent in time is not kept waiting."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    before = len(ordinary)
    first = socket.create_connection(("127.0.0.1", server.port))
    time.sleep(SLOW_AFTER_SECONDS / 2)
    second = socket.create_connection(("127.0.0.1", server.port))
    with first, second:
        wait_for(lambda: len(ordinary) == before + 1, what="the first one's grace to pass")
        assert len(ordinary) == before + 1, "the second one is still within its grace"
        with SSEStream(server.live_url(slug)):  # sent in time: handed over, not made to wait
            wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
            assert len(ordinary) == before + 1
        wait_for(lambda: len(ordinary) == before + 2, what="the second one's grace to pass")
        assert server.call(lambda: len(server.server.server_state.first_reads.connections)) == 0


def test_the_ordinary_limits_count_from_when_the_connection_was_made(
    site: Site, serve, ordinary: list[HttpProtocol]  # noqa: F811
) -> None:
    """A connection silent past the grace becomes HttpProtocol then; its header timeout is not
    restarted by that, so a client cannot stretch it by waiting before it sends anything."""
    server: InProcessServer = serve()
    before = len(ordinary)
    connected = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port)):
        wait_for(lambda: len(ordinary) == before + 1, what="the grace to pass")
        protocol = ordinary[-1]

        def remaining() -> float:
            assert protocol.deadline is not None and protocol.phase == "head"
            return protocol.deadline.when() - protocol.loop.time()

        left, elapsed = server.call(remaining), time.monotonic() - connected
        assert elapsed >= SLOW_AFTER_SECONDS
        assert left + elapsed == pytest.approx(protocol.limits.header_timeout, abs=0.3)
