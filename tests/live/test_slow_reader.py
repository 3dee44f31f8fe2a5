"""A reader that stops reading is dropped with bounded memory; the others are not slowed.

The real app runs under uvicorn in this process, so the test can look into its hub while two
real sockets read: one normal reader, and one with a tiny receive buffer that never reads (a
stalled phone). ~150 updates of ~10 KB are posted through the API.
"""

from __future__ import annotations

import threading
import time

from conftest import Site
from live_helpers import InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Event, SSEStream

BUFFER = 65_536
POSTS = 150
MAX_POSTS = 1000
BODY = 10_000


def test_slow_reader_is_dropped_and_catches_up_later(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER)
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    server.settle()  # start after the setup's events
    slow = SSEStream(server.live_url(slug), rcvbuf=4096)  # reads the response head, then nothing
    normal = None
    try:
        wait_for(lambda: server.hub_count() == 1, what="the slow reader in the hub")
        (slow_sub,) = server.subscribers()
        normal = SSEStream(server.live_url(slug))
        wait_for(lambda: server.hub_count() == 2, what="both readers in the hub")
        (normal_sub,) = [s for s in server.subscribers() if s is not slow_sub]
        subscribers = [slow_sub, normal_sub]

        # The normal reader reads in a thread; a sampler watches every reader's buffer.
        normal_events: list[Event] = []
        done = threading.Event()
        largest: dict[int, int] = {id(s): 0 for s in subscribers}
        errors: list[BaseException] = []

        def read() -> None:
            try:
                while not done.is_set():
                    try:
                        normal_events.append(normal.next_event(timeout=0.5))
                    except TimeoutError:
                        pass
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def sample() -> None:
            while not done.is_set():
                sizes = server.call(lambda: [(id(s), s.pending_bytes) for s in subscribers])
                for key, size in sizes:
                    largest[key] = max(largest[key], size)
                time.sleep(0.002)

        threads = [threading.Thread(target=read), threading.Thread(target=sample)]
        for thread in threads:
            thread.start()
        try:
            # ~150 updates; more if the kernel's socket buffers (up to a few MB on loopback)
            # have not filled up yet: the test is about what happens once they have.
            posted = []
            while len(posted) < POSTS or (not slow_sub.dropped and len(posted) < MAX_POSTS):
                posted.append(api.post(slug, f"Update {len(posted)}: " + "x" * BODY))
            newest = api.newest_id(slug)
            wait_for(lambda: bool(normal_events) and normal_events[-1].id >= newest or bool(errors),
                     timeout=60, what="the normal reader to get every update")
        finally:
            done.set()
            for thread in threads:
                thread.join(30)
        assert not errors, errors

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
        assert slow_sub.pending_bytes == sum(len(f) for f in slow_sub.pending) + sum(len(f) for _, f in slow_sub.held)
        assert max(largest.values()) <= BUFFER + largest_frame, largest

        # Readers that close leave the hub at once.
        normal.close()
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
            normal.close()


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
