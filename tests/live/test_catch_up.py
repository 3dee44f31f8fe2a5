"""A resuming reader's replay is paced by its socket: bounded memory, no leak of a draft.

Real uvicorn in this process (so a test can look at the server's side of each connection)
and real sockets: readers with a tiny receive buffer that read slowly, or not at all, while
they catch up on a story of many long updates.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from conftest import Site
from dateline import times
from dateline.accounts import users as accounts
from dateline.live import sse
from dateline.stories import entries, story as stories
from live_helpers import InProcessServer, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Event, SSEStream, StreamClosed

BUFFER = 65_536
BODY = 10_000


def long_story(site: Site, slug: str, count: int, body: int = BODY) -> None:
    """`count` long updates, written straight to the database (quicker than the API)."""
    with site.db.write() as conn:
        story = stories.get_story(conn, slug)
        rita = accounts.get_user(conn, "rita")
        assert story is not None and rita is not None
        for n in range(count):
            entries.create_entry(conn, story, rita, kind="text", body=f"Bulletin {n}: " + "x" * body, fields={})


def buffered(server: InProcessServer) -> int:
    """The most bytes any connection of the server holds, waiting for its reader."""
    def sizes() -> int:
        connections = server.server.server_state.connections
        return max((c.transport.get_write_buffer_size() for c in connections  # type: ignore[attr-defined]
                    if getattr(c, "transport", None) is not None and not c.transport.is_closing()),  # type: ignore[attr-defined]
                   default=0)
    return server.call(sizes)


def test_a_catch_up_holds_one_small_batch_at_a_time(site: Site, serve) -> None:  # noqa: F811
    """Before: the replay read 500 events at once and wrote them all to the connection, so a
    reader that did not read held megabytes of the server's memory for as long as it stayed."""
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER, stream_stall_seconds=60)
    api = server.api()
    slug = api.story()
    long_story(site, slug, 400)  # 4 MB: more than the kernel's socket buffers take
    expected = api.events(slug)
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}, rcvbuf=4096) as stream:
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        (subscriber,) = server.subscribers()
        largest = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the reader takes nothing meanwhile
            largest = max(largest, buffered(server))
            time.sleep(0.01)
        # At most a batch (half the reader's buffer, and one event) above what makes the
        # connection stop taking writes (uvicorn: 64 KiB).
        assert largest <= 65_536 + BUFFER // 2 + BODY + 1000, largest
        assert server.call(lambda: subscriber.catching_up and not subscriber.dropped)
        got = stream.events(len(expected), timeout=60)  # now it reads: everything, in order
        assert [e.id for e in got] == [e["id"] for e in expected]
        entry = api.post(slug, "And now live")
        assert stream.next_event().json() == entry


def test_a_slow_but_steady_reader_is_served_to_the_end(site: Site, serve) -> None:  # noqa: F811
    """A reader that takes far longer than the stall limit to drain each batch, but keeps
    reading, is never dropped."""
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER, stream_stall_seconds=1)
    api = server.api()
    slug = api.story()
    long_story(site, slug, 60)
    expected = api.events(slug)
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}, rcvbuf=4096) as stream:
        got: list[Event] = []
        while len(got) < len(expected):
            time.sleep(0.05)
            stream.sock.settimeout(5)
            data = stream.sock.recv(2048)  # 40 KB/s: a batch takes over a second to drain
            assert data, f"dropped after {len(got)} of {len(expected)} events"
            stream._raw += data
            got += [i for i in stream.parser.feed(stream._body()) if isinstance(i, Event)]
        assert [e.id for e in got] == [e["id"] for e in expected]
        assert server.hub_count() == 1


def test_a_reader_that_takes_nothing_is_dropped_after_the_stall_limit(site: Site, serve) -> None:  # noqa: F811
    """Before: it waited for the reader for ever, holding what it had read of the log."""
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER, stream_stall_seconds=1)
    api = server.api()
    slug = api.story()
    long_story(site, slug, 600)  # more than one read of the log used to hold
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}, rcvbuf=4096):
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        (subscriber,) = server.subscribers()
        wait_for(lambda: server.hub_count() == 0, timeout=15, what="the stalled reader to be dropped")
        assert subscriber.dropped and subscriber.catching_up
        assert buffered(server) == 0  # its connection, and what it held, are gone
    with SSEStream(server.live_url(slug)) as other:  # the server serves on
        entry = api.post(slug, "Still serving")
        assert other.next_event().json() == entry


def test_a_draft_does_not_leak_through_a_replay_in_progress(site: Site, serve) -> None:  # noqa: F811
    """A reader resumes from 0 on a story of 1,200 events and reads slowly; meanwhile an
    editor sets the story back to draft and posts. Before: the replay went on reading the
    log, and the reader got the post the page and the API answered 404 for."""
    server: InProcessServer = serve(stream_buffer_bytes=BUFFER)
    api = server.api()
    slug = api.story()
    long_story(site, slug, 1200)
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}, rcvbuf=4096) as stream:
        first = stream.events(5, timeout=30)  # the replay is under way
        (subscriber,) = server.subscribers()
        assert server.call(lambda: subscriber.catching_up)
        api.patch_story(slug, status="draft")
        secret = api.post(slug, "Embargoed: the minister resigns at noon")
        assert api.http.get(f"/api/v1/stories/{slug}/entries/{secret['id']}").status_code == 404
        rest = stream.read_to_end(timeout=60)  # now it reads as fast as it can
    got = first + [i for i in rest if isinstance(i, Event)]
    assert "Embargoed" not in "".join(e.data for e in got)
    assert secret["id"] not in {e.json().get("id") for e in got if e.type.startswith("entry.")}
    assert len(got) < 1201, "the replay went on after the story left"
    wait_for(lambda: server.hub_count() == 0, what="the stream to end")


def test_the_newsroom_catch_up_validator_covers_newsroom_events(site: Site, serve) -> None:  # noqa: F811
    """Before: the ETag was the story's newest *public* event, so a member revalidating got a
    304 while a held post (or who is editing) was waiting."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    api.patch_story(slug, requires_approval=True)
    entry = api.post(slug, "Published", who="eve")
    path = f"/api/v1/stories/{slug}/events"
    member, reader = site.auth("eve"), {}

    def get(headers: dict[str, str], etag: str | None = None) -> Any:
        extra = {"If-None-Match": etag} if etag else {}
        return api.http.get(path, headers={**headers, **extra})

    seen = {who: get(h) for who, h in (("member", member), ("reader", reader))}
    assert seen["member"].headers["ETag"] != seen["reader"].headers["ETag"]
    for change in ("held post", "editing"):
        if change == "held post":
            api._call("POST", f"{path[:-7]}/entries", "rita", 201, json={"body": "Held for approval"})
        else:
            api._call("POST", f"{path[:-7]}/entries/{entry['id']}/editing", "eve", 204)
        again = get(member, seen["member"].headers["ETag"])
        assert again.status_code == 200, f"a member got a 304 with a {change} waiting"
        assert len(again.json()["events"]) == len(seen["member"].json()["events"]) + 1
        seen["member"] = again
        # Readers see nothing new: their copy is still good.
        assert get(reader, seen["reader"].headers["ETag"]).status_code == 304


def test_replay_sees_no_event_once_the_stream_is_closed(site: Site, serve) -> None:  # noqa: F811
    """Events the follower hands over after a stream was ended (its story to draft) are not
    written to it, not even the ones held during a replay."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    server.settle()
    with SSEStream(server.live_url(slug)) as stream:
        wait_for(lambda: server.hub_count() == 1, what="the reader in the hub")
        (subscriber,) = server.subscribers()
        done = threading.Event()

        def close_then_publish() -> None:
            subscriber.close()
            frame = sse.event(10**9, "entry.created", '{"id":1}')
            subscriber.deliver(10**9, frame, True, sse.chunk(frame))
            done.set()

        server.call(close_then_publish)
        assert done.wait(5)
        try:
            items = stream.read_to_end(timeout=10)
        except StreamClosed:
            items = []
        assert not [i for i in items if isinstance(i, Event)]


def test_after_a_prune_a_reader_older_than_the_log_gets_reset_expired_at_once(site: Site, serve) -> None:  # noqa: F811
    """The server prunes (retention); a reader whose story changed since its cursor, and whose
    cursor the log no longer reaches, is told to reload, even though a resume a moment ago
    had filled the server's cache of the log's first id. A reader of a story that has not
    changed since its cursor is not (or the page it reloads would reset again, for ever)."""
    server: InProcessServer = serve(event_retention_days=1)
    api = server.api()
    slug, quiet = api.story(), api.story()
    quiet_cursor = api.newest_id(quiet)  # what its page was rendered at: it changes no more
    cursor = api.newest_id(slug)
    early = api.post(slug, "Missed by the reader, then pruned")
    api.post(slug, "Kept: the newest event of the log")
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
        assert stream.next_event().json() == early  # resumable so far; the cache is filled
    assert server.live.pruner.prune_now(now=times.now() + timedelta(days=2)) > 0
    api.post(slug, "After the prune")
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
        reset = stream.next_event()
        assert (reset.type, reset.json()) == ("reset", {"reason": "expired"})
        assert reset.id == api.newest_id(slug)
    assert early["id"] not in {e["data"].get("id") for e in api.events(slug)}  # it was pruned
    server.settle()
    with SSEStream(server.live_url(quiet), headers={"Last-Event-ID": str(quiet_cursor)}) as stream:
        entry = api.post(quiet, "The quiet story wakes up")
        assert stream.next_event().json() == entry  # no reset: it had missed nothing
