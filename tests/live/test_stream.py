"""Resuming the live stream: exactly the events after the reader's id, then the live ones.

Every test reads a real stream over a socket from the real app served by uvicorn in this
process, on both databases, and compares what arrives with the catch-up API
(`GET /api/v1/stories/{slug}/events?after=`), which reads the same log.
"""

from __future__ import annotations

import random
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest

from conftest import Site
from dateline.accounts import users as accounts
from dateline.stories import entries, story as stories
from dateline.vocabulary import EVENT_TYPES, NEWSROOM_PREFIX
from live_helpers import Api, InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Comment, Event, SSEStream, StreamClosed


GAUGE = {"kind": "counter", "title": "People evacuated", "source": "Civil protection",
         "rows": [{"label": "Evacuated", "count": 1200}]}


def build_history(api: Api) -> tuple[str, str]:
    """A story with an event of every type readers get, interleaved with another story's."""
    slug = api.story(headline="Floods in the valley")
    other = api.story(headline="Port strike")
    first = api.post(slug, "The river is rising.")
    second = api.post(slug, "Evacuations ordered.", kind="quote", speaker="The mayor")
    api.post(other, "Dockers walk out.")
    api.edit(slug, first["id"], body="The river is rising fast.")
    third = api.post(slug, "Roads closed.", key_event=True)
    api.patch_story(slug, summary="The valley floods.")
    api.patch_story(slug, facts=["The river crested at 6.2 m.", "Two villages are cut off."])
    api.delete(slug, second["id"])
    api.post(other, "Talks resume.")
    gauge = api._call("POST", f"/api/v1/stories/{slug}/blocks", "eve", 201, json=GAUGE).json()
    api.edit(slug, third["id"], body="Main roads closed.")
    api._call("PATCH", f"/api/v1/stories/{slug}/blocks/{gauge['id']}", "eve", 200,
              json={"rows": [{"label": "Evacuated", "count": 3400}]})
    api.edit(slug, first["id"], pinned=True)
    fourth = api.post(slug, "Shelters open.")
    api.delete(slug, fourth["id"])
    api._call("POST", f"/api/v1/stories/{slug}/entries/{fourth['id']}/restore", "eve", 200)
    api._call("DELETE", f"/api/v1/stories/{slug}/blocks/{gauge['id']}", "eve", 204)
    api.patch_story(slug, facts=[])
    api.patch_story(slug, headline="Floods: the valley evacuated")
    return slug, other


def test_the_history_holds_every_event_type_readers_get(site: Site, serve) -> None:  # noqa: F811
    """So that the resume test below covers every kind of event the follower reads: a new
    type the follower cannot hold would stop live delivery for every story."""
    api = serve().api()
    slug, _ = build_history(api)
    public = {t for t in EVENT_TYPES if not t.startswith(NEWSROOM_PREFIX)}
    assert {e["type"] for e in api.events(slug)} == public
    # A process starting now reads them all into its recent-events window, and serves.
    again = serve()
    with SSEStream(again.live_url(slug), headers={"Last-Event-ID": "0"}) as stream:
        assert as_triples(stream.events(len(api.events(slug)))) == as_triples(api.events(slug))


def test_resume_from_every_id_replays_exactly_what_the_events_api_has(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug, other = build_history(api)
    story_ids = [e["id"] for e in api.events(slug)]
    all_ids = sorted(set(story_ids) | {e["id"] for e in api.events(other)})
    assert len(story_ids) >= 10
    for n, cursor in enumerate([0, *all_ids]):
        expected = api.events(slug, after=cursor)
        # The API's answer, checked on its own: the story's events above the cursor.
        assert expected == [e for e in api.events(slug) if e["id"] > cursor]
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
            got = stream.events(len(expected))
            assert as_triples(got) == as_triples(expected), f"resuming after {cursor}"
            assert all(e.id > cursor for e in got)
            # Then live, with nothing in between: the next event is the one posted now.
            sentinel = api.post(slug, f"Sentinel {n}")
            live = stream.next_event()
            assert (live.type, live.json()) == ("entry.created", sentinel), f"resuming after {cursor}"
            assert live.id == api.newest_id(slug)


def test_resume_across_many_replay_batches(site: Site, serve) -> None:  # noqa: F811
    """1,200 events missed (more than one replay batch, more than one API page)."""
    server = serve()
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    with site.db.write() as conn:
        story = stories.get_story(conn, slug)
        rita = accounts.get_user(conn, "rita")
        assert story is not None and rita is not None
        for i in range(1200):
            entries.create_entry(conn, story, rita, kind="text", body=f"Bulletin {i}", fields={})
    expected = api.events(slug, after=start)
    assert len(expected) == 1200
    # The follower has handed the 1,200 to the hub before the reader comes (see
    # test_a_burst_of_events_does_not_drop_readers_that_keep_up for a reader already there).
    server.settle()
    with SSEStream(server.live_url(slug, f"last_event_id={start}")) as stream:
        got = stream.events(1200, timeout=60)
        assert as_triples(got) == as_triples(expected)
        entry = api.post(slug, "And now live")
        assert stream.next_event().json() == entry


def test_replay_leaves_out_entries_deleted_since(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    doomed = api.post(slug, "Unconfirmed report of a second bridge collapse.")
    api.edit(slug, doomed["id"], body="Unconfirmed: second bridge damaged.")
    kept = api.post(slug, "The first bridge is closed.")
    after_created = api.newest_id(slug)
    api.delete(slug, doomed["id"])
    for cursor in (start, start + 1):  # before the doomed entry, and between its two events
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(cursor)}) as stream:
            got = stream.events_until(api.newest_id(slug))
        assert [(e.type, e.json()["id"]) for e in got] == [
            ("entry.created", kept["id"]), ("entry.deleted", doomed["id"])
        ]
        assert "bridge collapse" not in str([e.data for e in got])
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(after_created)}) as stream:
        assert [(e.type, e.json()["id"]) for e in stream.events(1)] == [("entry.deleted", doomed["id"])]


def test_header_wins_over_query_parameter(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    ids = [api.post(slug, f"Update {i}")["id"] for i in range(4)]
    events = api.events(slug)
    # The story's creation, then the four updates: the cursors below sit between updates.
    assert [(e["type"], e["data"]["id"]) for e in events[1:]] == [("entry.created", i) for i in ids]
    low, high = events[1]["id"], events[3]["id"]  # after entry 1, after entry 3
    cases = [
        ({"Last-Event-ID": str(high)}, f"last_event_id={low}", high),
        ({"Last-Event-ID": str(low)}, f"last_event_id={high}", low),
        ({}, f"last_event_id={low}", low),
        ({}, f"lastEventID={high}", high),
    ]
    for headers, query, cursor in cases:
        with SSEStream(server.live_url(slug, query), headers=headers) as stream:
            expected = api.events(slug, after=cursor)
            got = stream.events(len(expected))
            assert as_triples(got) == as_triples(expected), (headers, query)
            sentinel = api.post(slug, "Sentinel")
            assert stream.next_event().json() == sentinel, (headers, query)


def test_no_cursor_starts_from_now(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    api.post(slug, "Before the reader came")
    for headers, query in (({}, ""), ({"Last-Event-ID": ""}, ""), ({}, "last_event_id=")):
        server.settle()  # "Before" is published: the stream must start after it
        with SSEStream(server.live_url(slug, query), headers=headers) as stream:
            entry = api.post(slug, "After")
            event = stream.next_event()
            assert (event.type, event.json()) == ("entry.created", entry)


GARBAGE = ["abc", "-1", "1e9", "12abc", "0x10", "1.5", " 5 6", "9" * 19, "1" * 4000, "\u00e9t\u00e9"]


@pytest.mark.parametrize("how", ["header", "query"])
def test_garbage_or_future_id_gets_a_reset_never_an_error(site: Site, serve, how: str) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    api.post(slug, "Something happened")
    cases: list[tuple[str | int, str]] = [(value, "unreadable") for value in GARBAGE]
    cases += [(1, "unknown"), (10**9, "unknown"), ("9" * 18, "unknown")]  # ints: newest + n
    for value, reason in cases:
        if isinstance(value, int):
            value = str(api.newest_id(slug) + value)  # from the future: another database
        if how == "header":
            stream = SSEStream(server.live_url(slug), raw_headers=[(b"Last-Event-ID", value.encode())])
        else:
            stream = SSEStream(server.live_url(slug, urlencode({"last_event_id": value})))
        with stream:
            assert stream.status == 200, value[:40]
            reset = stream.next_event()
            assert (reset.type, reset.json()) == ("reset", {"reason": reason}), value[:40]
            assert reset.id == api.newest_id(slug), value[:40]
            # The stream goes on from now: the next update arrives, and nothing before it.
            entry = api.post(slug, "After the reset")
            event = stream.next_event()
            assert (event.type, event.json()) == ("entry.created", entry), value[:40]


@pytest.mark.parametrize("how", ["query", "header"])
def test_superscript_digit_gets_a_reset(site: Site, serve, how: str) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    api.post(slug, "Something happened")
    if how == "query":
        stream = SSEStream(server.live_url(slug, "last_event_id=%C2%B2"))
    else:  # the header is read as latin-1: byte B2 is '²'
        stream = SSEStream(server.live_url(slug), raw_headers=[(b"Last-Event-ID", b"\xb2")])
    with stream:
        assert stream.status == 200
        first = stream.next_event(timeout=5)
        assert (first.type, first.json()) == ("reset", {"reason": "unreadable"})


def test_writer_posting_while_reader_resumes_no_gap_no_duplicate(site: Site, serve) -> None:  # noqa: F811
    """A reader drops and resumes 40 times at random moments while a writer keeps posting.

    Everything it received, across all its connections, must be the story's log exactly:
    strictly increasing ids, none missing, none twice.
    """
    server = serve()
    api = server.api()
    writer_api = server.api()
    slug = api.story()
    start = api.newest_id(slug)
    stop = threading.Event()
    failures: list[BaseException] = []
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)

    def writer() -> None:
        wrng = random.Random(seed + 1)
        posted: list[int] = []
        try:
            while not stop.is_set():
                if posted and wrng.random() < 0.3:
                    writer_api.edit(slug, wrng.choice(posted), body=f"Edited {wrng.random()}")
                else:
                    posted.append(writer_api.post(slug, f"Post {len(posted)}")["id"])
                time.sleep(wrng.uniform(0, 0.01))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    thread = threading.Thread(target=writer, name="writer")
    thread.start()
    received: list[Event] = []
    last = str(start)
    try:
        for _ in range(40):
            time.sleep(rng.uniform(0, 0.05))  # away while the writer posts
            if rng.random() < 0.5:
                stream = SSEStream(server.live_url(slug), headers={"Last-Event-ID": last})
            else:  # a first connection passes the id it was rendered at in the query
                stream = SSEStream(server.live_url(slug, f"last_event_id={last}"))
            with stream:
                for _ in range(rng.randint(1, 5)):
                    event = stream.next_event(timeout=15)
                    received.append(event)
                    last = event.last_event_id
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures
    newest = api.newest_id(slug)
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": last}) as stream:
        if int(last) < newest:
            received += stream.events_until(newest)
    ids = [e.id for e in received]
    assert all(a < b for a, b in zip(ids, ids[1:])), f"ids not strictly increasing (seed {seed}): {ids}"
    assert as_triples(received) == as_triples(api.events(slug, after=start)), f"seed {seed}"
    assert len(received) > 40


def test_heartbeat_on_an_idle_stream(site: Site, serve) -> None:  # noqa: F811
    server = serve(heartbeat_seconds=1)
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as stream:
        assert stream.next_item() == Comment(" live")
        beat = stream.next_item(timeout=15)
        assert beat == Comment("")
        assert stream.received_events == []
        entry = api.post(slug, "Still here")  # the stream still works after the keep-alive
        assert stream.next_event().json() == entry


def test_disconnected_readers_leave_the_hub_at_once(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slugs = [api.story(), api.story()]
    server.settle()  # start after the setup's events
    streams = [SSEStream(server.live_url(slugs[i % 2])) for i in range(6)]
    try:
        wait_for(lambda: server.hub_count() == 6, what="6 readers in the hub")
        for i, stream in enumerate(streams[:4]):
            stream.close()
            wait_for(lambda: server.hub_count() == 5 - i, what=f"{5 - i} readers left")
        entry = api.post(slugs[0], "For whoever is left")
        assert streams[4].next_event().json() == entry  # streams[4] reads slugs[0]
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: server.hub_count() == 0 and not server.live.hub.stories, what="an empty hub")


def test_too_many_readers_are_told_to_retry_later(site: Site, serve) -> None:  # noqa: F811
    server = serve(max_streams=2)
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as a, SSEStream(server.live_url(slug)) as b:
        wait_for(lambda: server.hub_count() == 2, what="two readers")
        with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}) as shed:
            assert shed.status == 200  # a browser gives up on anything else
            assert shed.read_to_end() == []  # no event, and the server closes
            assert shed.parser.retry_ms is not None and shed.parser.retry_ms >= 5000
        entry = api.post(slug, "The two readers are still served")
        assert a.next_event().json() == entry and b.next_event().json() == entry


def test_open_stream_gets_no_draft_content(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as stream:
        api.patch_story(slug, status="draft")
        unpublished = stream.next_event()
        assert (unpublished.type, unpublished.json()["status"]) == ("story.updated", "draft")
        secret = api.post(slug, "Embargoed: the minister resigns at noon")
        assert api.http.get(f"/api/v1/stories/{slug}/entries/{secret['id']}").status_code == 404
        api.patch_story(slug, status="live")  # a marker: anything before it was sent while draft
        try:
            after_draft = stream.next_event()
        except StreamClosed:
            return  # the stream was ended when the story went back to draft: fine
        assert (after_draft.type, after_draft.json().get("status")) == ("story.updated", "live"), (
            f"an anonymous reader received {after_draft.type} {after_draft.data[:80]} from a draft story"
        )


def test_a_newsroom_stream_ends_when_its_session_does(site: Site, serve) -> None:  # noqa: F811
    """Let in by a session, a newsroom stream does not outlive it: signed out here, it ends
    within a heartbeat; a reader's stream is not affected."""
    from conftest import PASSWORD

    server = serve(heartbeat_seconds=1)
    api = server.api()
    slug = api.story()
    server.settle()
    with httpx.Client(base_url=server.base_url) as browser:
        signed = browser.post("/api/v1/session", json={"username": "eve", "password": PASSWORD})
        assert signed.status_code == 200
        cookie = f"dateline_session={browser.cookies['dateline_session']}"
        with SSEStream(f"{server.base_url}/newsroom/stories/{slug}/live", headers={"Cookie": cookie}) as desk, \
                SSEStream(server.live_url(slug)) as reader:
            wait_for(lambda: server.hub_count() == 2, what="the desk and a reader")
            entry = api.post(slug, "Before signing out")
            assert desk.next_event().json() == entry and reader.next_event().json() == entry
            csrf = signed.json()["csrf_token"]
            assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
            started = time.monotonic()
            leftover = desk.read_to_end(timeout=10)
            assert all(not isinstance(item, Event) for item in leftover)
            assert time.monotonic() - started < 5, "within a heartbeat or two"
            wait_for(lambda: server.hub_count() == 1, what="only the reader left")
            later = api.post(slug, "After")
            assert reader.next_event().json() == later
        again = httpx.get(f"{server.base_url}/newsroom/stories/{slug}/live", headers={"Cookie": cookie})
        assert again.status_code == 401
