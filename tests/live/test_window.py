"""The window of recent events: readers who resume are replayed from memory, exactly.

First the window alone (what it holds, when it lets go, what it hides), then through a real
server: a resuming reader's replay costs no query when its cursor is in the window and is the
log's replay when it is not, and a wave of readers resuming at once costs a handful of
queries, not one each. Every replay is compared with the catch-up API, which reads the log.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event as sa_event

from conftest import Site
from dateline.accounts import users as accounts
from dateline.db import Database
from dateline.live import sse
from dateline.live.window import OVERHEAD_BYTES, RecentEvents
from dateline.stories import entries, story as stories
from dateline.stories.events import Event
from dateline.vocabulary import Audience
from live_helpers import InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import SSEStream


def event(event_id: int, story_id: int = 1, type: str = "entry.created", entry_id: int | None = None,
          **data: Any) -> tuple[Event, bytes]:
    body = json.dumps({"id": entry_id, **data})
    found = Event(event_id, story_id, type, body, entry_id)
    return found, sse.event(event_id, type, body)


def ids(found: tuple[list[Any], bool] | None) -> list[int]:
    assert found is not None, "the window should reach back that far"
    return [held.id for held in found[0]]


# --- the window alone -----------------------------------------------------------------------


def test_the_window_holds_every_event_above_its_start_and_refuses_cursors_below() -> None:
    window = RecentEvents(100, 1 << 20)
    window.begin(10)
    for n in range(11, 16):
        window.add(*event(n, entry_id=n))
    assert ids(window.after(1, 12, Audience.readers, 1 << 20)) == [13, 14, 15]
    assert ids(window.after(1, 10, Audience.readers, 1 << 20)) == [11, 12, 13, 14, 15]
    assert window.after(1, 9, Audience.readers, 1 << 20) is None  # before the window began
    assert ids(window.after(2, 10, Audience.readers, 1 << 20)) == []  # a story quiet since: nothing
    assert window.after(2, 9, Audience.readers, 1 << 20) is None
    assert ids(window.after(1, 15, Audience.readers, 1 << 20)) == []


def test_the_oldest_are_let_go_first_by_count_and_by_bytes_and_the_floor_follows() -> None:
    window = RecentEvents(4, 1 << 20)
    window.begin(0)
    for n in range(1, 7):
        window.add(*event(n, story_id=1 + n % 2, entry_id=n))
    # Six events, room for four: 1 (story 2's) and 2 (story 1's) are let go.
    assert [h.id for h in window.order] == [3, 4, 5, 6]
    assert window.after(1, 1, Audience.readers, 1 << 20) is None  # 2 was let go: the log replays it
    assert ids(window.after(1, 2, Audience.readers, 1 << 20)) == [4, 6]
    assert window.after(2, 0, Audience.readers, 1 << 20) is None
    assert ids(window.after(2, 1, Audience.readers, 1 << 20)) == [3, 5]
    assert window.covers(2, 1) and not window.covers(2, 0)

    frame = event(1)[1]
    small = RecentEvents(1000, 3 * (len(frame) + OVERHEAD_BYTES))
    small.begin(0)
    for n in range(1, 6):
        small.add(*event(n, entry_id=n))
    assert small.size <= small.max_bytes and [h.id for h in small.order] == [3, 4, 5]
    assert small.after(1, 1, Audience.readers, 1 << 20) is None
    assert ids(small.after(1, 2, Audience.readers, 1 << 20)) == [3, 4, 5]


def test_a_deleted_entry_leaves_the_window_as_it_leaves_the_logs_replay() -> None:
    window = RecentEvents(100, 1 << 20)
    window.begin(0)
    window.add(*event(1, entry_id=7, body="first"))
    window.add(*event(2, entry_id=8, body="second"))
    window.add(*event(3, type="entry.updated", entry_id=7, body="first, corrected"))
    window.add(*event(4, type="newsroom.editing", entry_id=8))
    size = window.size
    window.add(*event(5, type="entry.deleted", entry_id=7))
    assert ids(window.after(1, 0, Audience.readers, 1 << 20)) == [2, 5]  # its deletion stays
    assert window.after(1, 0, Audience.newsroom, 1 << 20) is None  # the newsroom replays from the log
    assert len(window.order) == 4, "a newsroom-only event takes no room"
    assert window.size < size + 200, "a deleted entry's events should no longer take room"


def test_a_restored_entry_sends_older_cursors_to_the_log_which_has_its_events_again() -> None:
    window = RecentEvents(100, 1 << 20)
    window.begin(0)
    window.add(*event(1, entry_id=7, body="first"))
    window.add(*event(2, entry_id=8, body="second"))
    window.add(*event(3, type="entry.deleted", entry_id=7))
    window.add(*event(4, type="entry.restored", entry_id=7, body="first"))
    # The log's replay from 0 now has 1 again (its entry is back): the window cannot say so.
    assert window.after(1, 0, Audience.readers, 1 << 20) is None
    assert window.after(1, 2, Audience.readers, 1 << 20) is None
    assert ids(window.after(1, 3, Audience.readers, 1 << 20)) == [4]
    window.add(*event(5, entry_id=9, body="third"))
    assert ids(window.after(1, 3, Audience.readers, 1 << 20)) == [4, 5]
    # Letting go of an event older than the restore leaves the floor where the restore put it.
    small = RecentEvents(4, 1 << 20)
    small.begin(0)
    for n, kind in enumerate(("entry.created", "entry.deleted", "entry.restored", "entry.created"), 1):
        small.add(*event(n, type=kind, entry_id=7 if n < 4 else 9))
    small.add(*event(5, story_id=2, entry_id=10))
    assert small.stories[1].floor == 2 and ids(small.after(1, 2, Audience.readers, 1 << 20)) == [3, 4]


def test_a_story_back_in_draft_is_hidden_from_readers_not_from_the_newsroom() -> None:
    window = RecentEvents(100, 1 << 20)
    window.begin(0)
    window.add(*event(1, entry_id=7))
    assert not window.hides(1, Audience.readers)
    window.add(*event(2, type="story.updated"), story_status="draft")
    assert window.hides(1, Audience.readers) and not window.hides(1, Audience.newsroom)
    window.add(*event(3, type="story.updated"), story_status="live")
    assert not window.hides(1, Audience.readers)


def test_a_replay_from_the_window_comes_in_batches_of_its_budget() -> None:
    window = RecentEvents(100, 1 << 20)
    window.begin(0)
    for n in range(1, 11):
        window.add(*event(n, entry_id=n, body="x" * 1000))
    frame_size = len(window.order[0].frame)
    found = window.after(1, 0, Audience.readers, 3 * frame_size)
    assert found is not None and ids(found) == [1, 2, 3] and found[1] is True
    found = window.after(1, 9, Audience.readers, 3 * frame_size)
    assert found is not None and ids(found) == [10] and found[1] is False


def test_the_window_off_answers_nothing() -> None:
    window = RecentEvents(0, 1 << 20)
    window.begin(0)
    window.add(*event(1, entry_id=1))
    assert window.after(1, 0, Audience.readers, 1 << 20) is None and not window.order


# --- through a real server ------------------------------------------------------------------


class QueryCounter:
    """Counts the statements the server's engine runs, and among them the replays' reads of
    the log (the follower's polls and the log's first id, asked every 10 s, are not those)."""

    def __init__(self, site: Site) -> None:
        self.engine = site.db.engine
        self.lock = threading.Lock()
        self.log_reads = 0
        self.statements = 0
        self.seen: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self.lock:
            self.statements += 1
            self.seen.append(statement)
            if "FROM events LEFT OUTER JOIN entries" in statement:
                self.log_reads += 1

    @contextmanager
    def counting(self) -> Iterator[QueryCounter]:
        sa_event.listen(self.engine, "before_cursor_execute", self)
        try:
            yield self
        finally:
            sa_event.remove(self.engine, "before_cursor_execute", self)


def resume(server: InProcessServer, slug: str, after: int, until: int) -> list[Any]:
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(after)}) as stream:
        return stream.events_until(until, timeout=30)


def test_a_reader_resuming_inside_the_window_is_replayed_without_reading_the_log(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    posts = [api.post(slug, f"Update {n}") for n in range(6)]
    api.edit(slug, posts[1]["id"], body="Update 1, corrected")
    api.delete(slug, posts[2]["id"])
    newest = api.newest_id(slug)
    server.settle()
    expected = api.events(slug, after=start)  # the log's replay, as visible now
    assert posts[2]["id"] not in [e["data"].get("id") for e in expected if e["type"] == "entry.created"]

    with QueryCounter(site).counting() as queries:
        got = resume(server, slug, start, newest)
    assert as_triples(got) == as_triples(expected), "the window's replay differs from the log's"
    assert queries.log_reads == 0, f"{queries.log_reads} reads of the event log for a resume inside the window"
    assert server.call(lambda: server.live.window.served) >= 1


def test_a_cursor_older_than_the_window_is_replayed_from_the_log_exactly(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve(live_window_events=5)
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    posts = [api.post(slug, f"Update {n}") for n in range(12)]
    api.delete(slug, posts[3]["id"])
    newest = api.newest_id(slug)
    server.settle()
    expected = api.events(slug, after=start)
    with QueryCounter(site).counting() as queries:
        got = resume(server, slug, start, newest)
    assert as_triples(got) == as_triples(expected)
    assert queries.log_reads >= 1, "a cursor the window does not reach must be replayed from the log"
    # ...and one inside the window, on the same server, needs the log no more.
    inside = expected[-3]["id"]
    with QueryCounter(site).counting() as queries:
        got = resume(server, slug, inside, newest)
    assert as_triples(got) == as_triples([e for e in expected if e["id"] > inside])
    assert queries.log_reads == 0
    window = api.http.get("/healthz").json()["window"]  # what an operator sizing it reads
    assert window["events"] == 5 and window["replays_from_the_log"] >= 1 and window["replays_from_memory"] >= 1


def test_a_server_starts_with_the_newest_of_the_log_in_its_window(site: Site, serve) -> None:  # noqa: F811
    first: InProcessServer = serve()
    api = first.api()
    slug = api.story()
    start = api.newest_id(slug)
    for n in range(8):
        api.post(slug, f"Before the restart {n}")
    newest = api.newest_id(slug)
    expected = api.events(slug, after=start)
    first.stop()

    second: InProcessServer = serve()  # a node started in the middle of a reconnect storm
    with QueryCounter(site).counting() as queries:
        got = resume(second, slug, start, newest)
    assert as_triples(got) == as_triples(expected)
    assert queries.log_reads == 0


def test_a_wave_of_resuming_readers_costs_a_handful_of_queries_not_one_each(site: Site, serve) -> None:  # noqa: F811
    """A lost node's readers all come back at once, each a few events behind: the story is
    looked up once (the others wait for that answer), and every replay comes from memory."""
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    posts = [api.post(slug, f"Update {n}") for n in range(10)]
    newest = api.newest_id(slug)
    server.settle()
    server.call(lambda: server.live.lookups.forget(slug))  # not even the story's id is known yet
    readers = 120
    cursors = [posts[n % 10]["id"] for n in range(readers)]
    expected = api.events(slug, after=0)

    def connect(cursor: int) -> SSEStream:
        return SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}, timeout=30)

    with QueryCounter(site).counting() as queries:
        with ThreadPoolExecutor(40) as pool:  # forty at a time, as a storm comes
            streams = list(pool.map(connect, cursors))
        try:
            for cursor, stream in zip(cursors, streams, strict=True):
                got = stream.events_until(newest, timeout=30) if cursor < newest else []
                assert as_triples(got) == as_triples([e for e in expected if e["id"] > cursor])
        finally:
            for stream in streams:
                stream.close()
    assert queries.log_reads == 0
    # The story's id and the log's first id, once each, and the follower's polls meanwhile.
    assert queries.statements <= 10, f"{queries.statements} queries for {readers} resuming readers"


def test_a_reader_a_moment_ahead_of_this_process_waits_for_its_follower_not_the_database(
    site: Site, serve  # noqa: F811
) -> None:
    """A reader coming from another node may carry an id this process's follower has not read
    yet (it polls every 30 s here, and the write below nudges nobody): the stream wakes the
    follower and waits for it, one read of the log for all such readers, instead of asking the
    database for its newest id reader by reader; and it gets no `reset`."""
    server: InProcessServer = serve(live_poll_seconds=30, broker="none")
    api = server.api()
    slug = api.story()
    api.post(slug, "Seen by this node")
    server.settle()
    other_node = Database(site.url)  # another node's writes: this process hears nothing of them
    try:
        with other_node.write() as conn:
            target = stories.get_story(conn, slug)
            rita = accounts.get_user(conn, "rita")
            assert target is not None and rita is not None
            ahead = entries.create_entry(conn, target, rita, kind="text", body="Posted through another node",
                                         fields={})
    finally:
        other_node.dispose()
    cursor = api.newest_id(slug)
    assert server.call(lambda: server.live.follower.last_id) < cursor
    with QueryCounter(site).counting() as queries, \
            SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
        later = api.post(slug, "And the next one")
        event = stream.next_event(timeout=15)
        assert (event.type, event.json()["id"]) == ("entry.created", later["id"]), "a reset, or a gap"
    assert ahead["id"] != later["id"]
    assert not [s for s in queries.seen if "max(events.id)" in s], "asked the database for the log's newest id"
