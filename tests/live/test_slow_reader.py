"""A reader that stops reading is dropped with bounded memory; the others are not slowed.

The real app runs under uvicorn in this process, so the test can look into its hub while two
real sockets read: one normal reader, and one with a tiny receive buffer that never reads (a
stalled phone). ~150 updates of ~10 KB are posted through the API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any


from conftest import Site
from dateline.accounts import users as accounts
from dateline.stories import entries, story as stories
from dateline.db import Database
from dateline.live import sse
from dateline.live.hub import Hub
from dateline.live.stream import StreamSubscriber
from live_helpers import InProcessServer, ReaderProcess, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Event, SSEStream

BUFFER = 65_536
POSTS = 150
MAX_POSTS = 1000
BODY = 10_000


def test_slow_reader_is_dropped_and_catches_up_later(site: Site, serve, tmp_path: Path) -> None:  # noqa: F811
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER)
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    server.settle()  # start after the setup's events
    slow = SSEStream(server.live_url(slug), rcvbuf=4096)  # reads the response head, then nothing
    normal: ReaderProcess | None = None
    try:
        wait_for(lambda: server.hub_count() == 1, what="the slow reader in the hub")
        (slow_sub,) = server.subscribers()
        # The normal reader runs in a process of its own, so that it keeps up however busy
        # this one (server, poster and sampler threads) or the machine is.
        normal = ReaderProcess(server.live_url(slug), tmp_path)
        wait_for(lambda: server.hub_count() == 2, what="both readers in the hub")
        (normal_sub,) = [s for s in server.subscribers() if s is not slow_sub]
        subscribers = [slow_sub, normal_sub]

        # A sampler watches every reader's buffer while the updates go out.
        done = threading.Event()
        largest: dict[int, int] = {id(s): 0 for s in subscribers}

        def sample() -> None:
            while not done.is_set():
                sizes = server.call(lambda: [(id(s), s.pending_bytes) for s in subscribers])
                for key, size in sizes:
                    largest[key] = max(largest[key], size)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            # ~150 updates; more if the kernel's socket buffers (a few MB on loopback) have
            # not filled up yet: the test is about what happens once they have.
            # One update at a time: each is handed to the readers before the next is posted,
            # so what decides a drop is how each reader reads (a burst of several updates in
            # one follower read is another matter: see test_a_burst_...).
            posted = []
            while len(posted) < POSTS or (not slow_sub.dropped and len(posted) < MAX_POSTS):
                posted.append(api.post(slug, f"Update {len(posted)}: " + "x" * BODY))
                server.settle()
            newest = api.newest_id(slug)

            def normal_done() -> bool:
                got, closed = normal.received()  # type: ignore[union-attr]
                return closed or (bool(got) and got[-1].id >= newest)

            wait_for(normal_done, timeout=60, what="the normal reader to get every update")
        finally:
            done.set()
            sampler.join(30)
        normal_events, normal_closed = normal.received()
        assert not normal_closed, "the normal reader was dropped"

        # The normal reader got everything, in order; the log and the API agree.
        expected = api.events(slug, after=start)
        assert len(expected) == len(posted) and [e["data"] for e in expected] == posted
        assert as_triples(normal_events) == as_triples(expected)

        # The slow one was dropped, and it had buffered no more than the limit allows
        # (it is dropped by the frame that takes it over the limit).
        largest_frame = max(len(e.data) for e in normal_events) + 100
        assert slow_sub.dropped and not normal_sub.dropped
        wait_for(lambda: server.hub_count() == 1, what="the slow reader to leave the hub")
        assert BUFFER < slow_sub.pending_bytes <= BUFFER + largest_frame
        if slow_sub.transport is None:  # through ASGI send: its own queue (direct: the socket's buffer)
            assert slow_sub.pending_bytes == sum(len(f) for f in slow_sub.pending) + sum(len(f) for _, f, _ in slow_sub.held)
        else:
            assert slow_sub.transport.is_closing(), "a dropped reader's socket is closed at once"
        assert max(largest.values()) <= BUFFER + largest_frame, largest

        # Readers that close leave the hub at once.
        normal.stop()
        wait_for(lambda: server.hub_count() == 0, what="an empty hub")

        # The slow reader's connection was closed by the server: reading now, it gets what was
        # already on its way, a gap-free beginning of the story, then the end of the stream.
        slow_items = slow.read_to_end(timeout=30)
        got = [e for e in slow_items if isinstance(e, Event)]
        assert len(got) < len(posted)
        assert as_triples(got) == as_triples(expected[: len(got)])
        last = slow.parser.last_event_id or str(start)

        # It reconnects with its last id and catches up exactly.
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": last}) as again:
            rest = again.events(len(posted) - len(got), timeout=30)
        assert as_triples(got + rest) == as_triples(expected)
    finally:
        slow.close()
        if normal is not None:
            normal.stop()


def test_stream_survives_a_reader_that_vanishes_mid_event(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER)
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    readers = [SSEStream(server.live_url(slug), rcvbuf=4096) for _ in range(3)]
    wait_for(lambda: server.hub_count() == 3, what="three readers")
    for reader in readers:
        reader.close()  # gone without reading, with updates in flight
        api.post(slug, "y" * BODY)
    wait_for(lambda: server.hub_count() == 0, what="an empty hub")
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as stream:
        entry = api.post(slug, "Still serving")
        assert stream.next_event().json() == entry


def test_a_burst_of_events_does_not_drop_readers_that_keep_up(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER, broker="none", live_poll_seconds=30)
    api = server.api()
    slug = api.story()
    server.settle()
    with SSEStream(server.live_url(slug)) as reader:
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        # Five ~20 KB updates written by another process (no commit listener here)...
        elsewhere = Database(site.url)
        try:
            with elsewhere.write() as conn:
                story = stories.get_story(conn, slug)
                rita = accounts.get_user(conn, "rita")
                assert story is not None and rita is not None
                for i in range(5):
                    entries.create_entry(conn, story, rita, kind="text", body=f"{i} " + "z" * BODY, fields={})
        finally:
            elsewhere.dispose()
        # ...then this process's follower is nudged (a broker's nudge, or its poll).
        server.call(server.live.follower.nudge)
        got = reader.events(5, timeout=15)  # StreamClosed if the reader was dropped
    assert [e["id"] for e in api.events(slug)][-5:] == [e.id for e in got]


def test_events_held_during_a_replay_do_not_drop_the_reader() -> None:
    """What LiveEndpoint does with a resuming reader, on the real Hub and StreamSubscriber."""

    async def scenario() -> None:
        hub = Hub()
        reader = StreamSubscriber(story_id=7, last_id=0, max_pending=BUFFER)
        hub.add(reader)
        # While its replay runs, the follower publishes ten ~10 KB events of the story...
        for event_id in range(1, 11):
            data = '{"id":%d,"body":"%s"}' % (event_id, "w" * BODY)
            hub.publish(7, event_id, sse.event(event_id, "entry.created", data))
            await asyncio.sleep(0)  # the follower yields between events
        # ...which its replay read from the log and sent too: the replay ends at id 10.
        reader.last_id = 10
        reader.release()
        assert not reader.dropped and not reader.closed
        assert reader.take() == b""  # and none is sent twice

    asyncio.run(scenario())


def test_a_burst_overflowing_the_held_events_during_a_replay_is_replayed_again(site: Site, serve) -> None:  # noqa: F811
    """A reader resumes from an old cursor; while its replay is on its way, a burst of posts
    bigger than its buffer arrives. The held events overflow and are forgotten, so the stream
    must replay once more from the log (`while subscriber.replay_again` in LiveEndpoint):
    every event still arrives exactly once, in order.

    The replay's first read of the log is held open (after it has read) until the whole burst
    has been handed to the hub: then the burst is neither in that read nor among the held
    events, and only the second replay can deliver it. The window of recent events is off, so
    that the replay reads the log.
    """
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER, live_window_events=0)
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    history = [api.post(slug, f"Earlier {n}") for n in range(3)]
    server.settle()

    read_done, gate = threading.Event(), threading.Event()
    lookups = server.live.lookups
    original = lookups.story_events
    calls: list[int] = []

    def story_events(story_id: int, after: int, audience: Any, max_bytes: int) -> Any:
        batch = original(story_id, after, audience, max_bytes)
        calls.append(after)
        if len(calls) == 1:  # the first replay: read what is there now, then wait for the burst
            read_done.set()
            assert gate.wait(30), "the test never opened the gate"
        return batch

    lookups.story_events = story_events  # type: ignore[method-assign]
    try:
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(start)}) as stream:
            assert read_done.wait(15), "the stream never started its replay"
            (subscriber,) = server.subscribers()
            assert server.call(lambda: subscriber.catching_up)
            burst = [api.post(slug, f"Burst {n}: " + "b" * BODY) for n in range(2 * BUFFER // BODY)]
            assert sum(len(e["body"]) for e in burst) > BUFFER
            server.settle()  # the follower has handed the whole burst to the hub
            assert server.call(lambda: subscriber.replay_again), "the held events did not overflow"
            gate.set()
            sentinel = api.post(slug, "After the burst")
            got = stream.events_until(api.newest_id(slug), timeout=30)
            expected = api.events(slug, after=start)
            assert [e["data"] for e in expected] == [*history, *burst, sentinel]
            assert [e.id for e in got] == [e["id"] for e in expected], "events lost or sent twice"
            assert as_triples(got) == as_triples(expected)
            assert not subscriber.dropped
    finally:
        gate.set()
        lookups.story_events = original  # type: ignore[method-assign]
    assert calls[0] == start and len(calls) >= 2, calls  # it read the log again, after the replay
