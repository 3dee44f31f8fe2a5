"""A readers' stream on a connection of its own (live/connection.py), as `dateline serve` runs it.

The other live tests read streams through the same protocol (the in-process server runs
`web/server.py`'s, as `dateline serve` does); these look at the connection itself: it is handed
over whether it is a new connection or one kept alive from an earlier request, nothing of the
ordinary request path stays behind it, its task ends once it is live, and what a client sends
after the request is not served. The ASGI stream, for servers without this protocol, is
checked here too, on uvicorn's own.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from conftest import Site
from live_helpers import InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Event, SSEParser, SSEStream

from dateline.live.connection import ReaderConnection
from dateline.live.stream import StreamSubscriber
from dateline.web import server as web_server


def connections(server: InProcessServer) -> list[object]:
    return server.call(lambda: list(server.server.server_state.connections))


def pending_tasks(server: InProcessServer) -> int:
    return server.call(lambda: sum(not t.done() for t in server.server.server_state.tasks))


def test_a_readers_stream_is_handed_to_a_connection_of_its_own(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    missed = [api.post(slug, f"Missed {n}") for n in range(3)]
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(start)}) as stream:
        assert [e.json() for e in stream.events(3)] == missed  # the replay, through its own protocol
        (subscriber,) = server.subscribers()
        assert isinstance(subscriber, ReaderConnection)
        wait_for(lambda: server.call(lambda: subscriber.transport is not None), what="the stream to go live")
        # Nothing of the ordinary request path is left behind it: no task, no HTTP protocol
        # object on its socket, and its head no longer counts as half-open.
        wait_for(lambda: pending_tasks(server) == 0, what="its task to end")
        on_its_socket = [c for c in connections(server)
                         if c is not subscriber and getattr(c, "transport", None) is subscriber.socket]
        assert on_its_socket == [], on_its_socket
        assert subscriber in connections(server)  # a shutdown reaches it
        assert not web_server._Refusals.half_open
        live = [api.post(slug, f"Live {n}") for n in range(3)]
        assert [stream.next_event().json() for _ in live] == live
    wait_for(lambda: server.hub_count() == 0, what="the reader to leave the hub")
    wait_for(lambda: subscriber not in connections(server), what="its connection to be forgotten")


def http_request(path: str, *headers: str) -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: dateline.test", *headers]) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes]:
    """One whole response with a Content-Length, and whatever came after it."""
    data = buffered
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.lower().split(b"\r\n")
    length = int(next(line.split(b":")[1] for line in lines if line.startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def test_a_stream_asked_on_a_kept_alive_connection_is_handed_over_and_serves_nothing_after(
    site: Site, serve  # noqa: F811
) -> None:
    """A browser's EventSource often reuses the connection the page came over. The request
    pipelined after the stream's is never answered: the stream is the connection's last."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    first = api.post(slug, "Before the reader came")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(http_request("/healthz"))
        answer, rest = read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200") and rest == b""
        sock.sendall(http_request(f"/stories/{slug}/live", f"Last-Event-ID: {start}")
                     + http_request("/healthz"))
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        (subscriber,) = server.subscribers()
        assert isinstance(subscriber, ReaderConnection)
        second = api.post(slug, "After it came")
        received, deadline = b"", time.monotonic() + 15
        while b'"body":"After it came"' not in received and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.count(b"HTTP/1.1") == 1
    head, body = received.split(b"\r\n\r\n", 1)
    assert b"content-type: text/event-stream" in head and b"transfer-encoding: chunked" in head
    events = [i for i in SSEParser().feed(dechunk(body)) if isinstance(i, Event)]
    assert [e.json()["id"] for e in events] == [first["id"], second["id"]]


def dechunk(body: bytes) -> bytes:
    out = b""
    while b"\r\n" in body:
        size_line, rest = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0 or len(rest) < size + 2:
            break
        out, body = out + rest[:size], rest[size + 2:]
    return out


def test_no_such_story_is_a_problem_and_the_connection_closes(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(http_request("/stories/no-such-story/live"))
        answer, _ = read_response(sock)
        assert sock.recv(1) == b""  # closed after it: an EventSource stops for good
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 404 ") and b"content-type: application/problem+json" in head
    assert json.loads(body) == {"type": "about:blank", "title": "Not found", "status": 404,
                                "detail": "No live story at this address."}


def test_a_server_stopping_ends_its_readers_streams_cleanly(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    server.settle()
    with SSEStream(server.live_url(slug)) as stream:
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        server.stop()
        stream.read_to_end(timeout=15)
        assert stream.ended_cleanly  # the last chunk, then the close: the browser reconnects


@pytest.mark.parametrize("http", ["dateline", "httptools"])
def test_a_live_stream_is_written_straight_to_the_socket(site: Site, serve, http: str) -> None:  # noqa: F811
    """On its own protocol, or through ASGI on uvicorn's (another server's way, and a stream
    asked behind a pipelined request): the hub writes each event to the reader's transport, and
    ending the story's public stream (back to draft) still ends the response cleanly."""
    server: InProcessServer = serve() if http == "dateline" else serve(http=http)
    api = server.api()
    slug = api.story()
    server.settle()
    with SSEStream(server.live_url(slug)) as stream:
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        (subscriber,) = server.subscribers()
        assert isinstance(subscriber, ReaderConnection) == (http == "dateline")
        assert isinstance(subscriber, StreamSubscriber)
        wait_for(lambda: server.call(lambda: subscriber.transport is not None), what="the stream to go direct")
        assert server.call(lambda: subscriber.chunked) is True
        posted = [api.post(slug, f"Direct {n}") for n in range(3)]
        assert [stream.next_event().json() for _ in posted] == posted
        api.patch_story(slug, status="draft")
        (last,) = stream.read_to_end(timeout=10)  # the story's change, then a clean end
        assert isinstance(last, Event) and last.type == "story.updated" and last.json()["status"] == "draft"
        assert stream.ended_cleanly
    wait_for(lambda: server.hub_count() == 0, what="an empty hub")


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The cursor of every reader that got a task (`ReaderConnection.run`), from here on."""
    found: list[str | None] = []
    run = ReaderConnection.run

    async def counted(self: ReaderConnection, slug: str, cursor: str | None) -> None:
        found.append(cursor)
        await run(self, slug, cursor)

    monkeypatch.setattr(ReaderConnection, "run", counted)
    return found


def test_a_new_reader_of_a_story_already_looked_up_opens_without_a_task(
    site: Site, serve, runs: list[str | None]  # noqa: F811
) -> None:
    """The usual reader of a breaking story (no cursor, the story known) costs no task: its
    stream opens at once. The first reader (a lookup) and a resuming one (a replay) get one."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    server.settle()
    with SSEStream(server.live_url(slug)) as first:
        wait_for(lambda: server.hub_count() == 1, what="the first reader")
        assert runs == [None]  # it looked the story up
        with SSEStream(server.live_url(slug)) as second:
            wait_for(lambda: server.hub_count() == 2, what="the second reader")
            assert runs == [None]  # opened at once: no task
            before = api.newest_id(slug)
            posted = api.post(slug, "To both readers")
            assert first.next_event().json() == posted and second.next_event().json() == posted
            with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(before)}) as third:
                assert third.next_event().json() == posted  # the replay
                assert runs == [None, str(before)]  # a task, for the replay


def test_a_reader_resuming_inside_the_window_is_replayed_without_a_task(
    site: Site, serve, runs: list[str | None]  # noqa: F811
) -> None:
    """A reconnect wave's reader (a few seconds behind, the story known) costs no task: what
    it missed comes from the window in the same write as the head, exactly the log's replay,
    then live events once each. A cursor older than the window, or more missed than one write
    may carry (half the buffer), is replayed by a task, paced by the socket, as before."""
    server: InProcessServer = serve(live_window_events=12, stream_buffer_bytes=4096)
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    for n in range(2):
        api.post(slug, f"Missed {n}")
    server.settle()

    def resumed(cursor: int) -> list[tuple[int, str, object]]:
        """What a reader resuming from `cursor` is sent, up to a live post, and that post."""
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
            replayed = as_triples(stream.events(len(api.events(slug, cursor))))
            wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
            wait_for(lambda: pending_tasks(server) == 0, what="its replay to end")
            live = api.post(slug, "Live")
            (event,) = as_triples([stream.next_event()])
            assert event[2] == live, "the live post, once, after the replay"
        wait_for(lambda: server.hub_count() == 0, what="the reader to leave")
        return replayed

    expected = as_triples(api.events(slug, start))
    assert resumed(start) == expected  # the first asks the log's oldest id: a task
    assert runs == [str(start)]
    for cursor in (start, api.newest_id(slug)):  # two missed posts and a live one; nothing missed
        expected = as_triples(api.events(slug, cursor))
        assert resumed(cursor) == expected
    assert runs == [str(start)], "resumed inside the window without a task"

    for n in range(12):  # the window lets `start` go
        api.post(slug, f"Later {n}")
    server.settle()
    expected = as_triples(api.events(slug, start))
    assert resumed(start) == expected
    assert runs == [str(start)] * 2, "older than the window: a task reads the log"

    cursor = api.newest_id(slug)
    for n in range(3):  # about 3 KB: more than half the 4 KB buffer
        api.post(slug, f"Long {n} " + "x" * 1000)
    server.settle()
    expected = as_triples(api.events(slug, cursor))
    assert resumed(cursor) == expected
    assert runs == [str(start)] * 2 + [str(cursor)], "more than one write: a task paces the replay"
