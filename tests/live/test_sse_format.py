"""The bytes of the live stream, read the way a browser reads them.

First the test parser itself is held to the examples of the standard (WHATWG HTML 9.2), so
that what the other tests conclude from it can be trusted. Then `dateline.live.sse` framing is
parsed back for any text (property test), and a real stream is checked: status, headers, the
`retry:` hint, and events whose `data:` is exactly what the JSON API answers.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Site
from dateline.vocabulary import EVENT_TYPES as TYPES
from dateline.live import sse
from live_helpers import InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Comment, Event, SSEStream, parse

# --- the test parser against the standard's own examples ---------------------------------


def events_of(payload: str, chunks: list[int] | None = None) -> list[Event]:
    items, _ = parse(payload, chunks)
    return [i for i in items if isinstance(i, Event)]


def test_parser_joins_data_lines_with_line_feeds() -> None:
    # "data: YHOO / data: +2 / data: 10" is one message, "YHOO\n+2\n10".
    assert events_of("data: YHOO\ndata: +2\ndata: 10\n\n") == [Event("message", "YHOO\n+2\n10", "")]


def test_parser_ids_persist_and_blank_id_resets() -> None:
    stream = (": test stream\n\ndata: first event\nid: 1\n\n"
              "data:second event\nid\n\ndata:  third event\n\n")
    assert events_of(stream) == [
        Event("message", "first event", "1"),
        Event("message", "second event", ""),
        Event("message", " third event", ""),
    ]


def test_parser_empty_data_and_unterminated_last_event() -> None:
    # "data\n\ndata\ndata\n\ndata:" -> "", "\n"; the last one never ends, so it is dropped.
    assert events_of("data\n\ndata\ndata\n\ndata:") == [Event("message", "", ""), Event("message", "\n", "")]


def test_parser_line_endings_comments_retry_and_bom() -> None:
    items, parser = parse("\ufeffretry: 1234\r\n: hi\revent: x\r\ndata: a\r\rid: 7\ndata: b\n\n")
    assert items == [Comment(" hi"), Event("x", "a", ""), Event("message", "b", "7")]
    assert parser.retry_ms == 1234
    assert parse("retry: 12ms\n\n")[1].retry_ms is None  # not all digits: ignored
    assert parse("id: a\x00b\ndata: x\n\n")[0] == [Event("message", "x", "")]  # NUL in id: ignored


@given(st.text(alphabet="a:\r\n \ufeffé", max_size=60), st.data())
def test_parser_is_independent_of_how_bytes_are_chunked(text: str, data: st.DataObject) -> None:
    raw = text.encode()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    whole, whole_parser = parse(raw)
    chunked, chunked_parser = parse(raw, [b - a for a, b in zip([0, *sorted(cuts)], sorted(cuts))])
    assert chunked == whole
    assert chunked_parser.last_event_id == whole_parser.last_event_id


# --- dateline.live.sse, parsed back --------------------------------------------------------


def normalized(data: str) -> str:
    """What the standard's parser gives back for data with any line breaks."""
    return data.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=300)
@given(
    event_id=st.integers(min_value=1, max_value=2**62),
    type=st.sampled_from(TYPES),
    data=st.one_of(
        st.text(),
        st.lists(st.sampled_from(["\r", "\n", "\r\n", " ", ":", "x", "é", "\u2028", "\x00", "data: "]))
        .map("".join),
        st.dictionaries(st.text(), st.text()).map(lambda d: json.dumps(d, ensure_ascii=False)),
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=64), max_size=6),
)
def test_any_event_parses_back_to_its_data_id_and_type(
    event_id: int, type: str, data: str, cuts: list[int]
) -> None:
    frame = sse.event(event_id, type, data)
    for chunks in (None, cuts):  # whole, and split at arbitrary byte offsets
        items, parser = parse(frame, chunks)
        assert items == [Event(type, normalized(data), str(event_id))]
        assert parser.last_event_id == str(event_id)
    # Two frames back to back stay two events.
    items, _ = parse(frame + sse.event(event_id + 1, type, "{}"))
    assert [(e.id, e.data) for e in items if isinstance(e, Event)] == [
        (event_id, normalized(data)), (event_id + 1, "{}")
    ]


def test_heartbeat_retry_and_reset_frames() -> None:
    items, parser = parse(sse.HEARTBEAT)
    assert items == [Comment("")] and parser.last_event_id == ""
    for _ in range(50):
        _, parser = parse(sse.retry())
        assert parser.retry_ms is not None and 2000 <= parser.retry_ms <= 6000
    items, _ = parse(sse.reset(42, "unknown"))
    assert items == [Event("reset", '{"reason":"unknown"}', "42")]


# --- a real stream --------------------------------------------------------------------------


def test_stream_answers_event_stream_with_headers_and_retry(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].split(";")[0].strip() == "text/event-stream"
        cache_control = {d.strip() for d in stream.headers["cache-control"].split(",")}
        assert "no-cache" in cache_control
        assert stream.headers["x-accel-buffering"] == "no"
        assert "content-length" not in stream.headers
        entry = api.post(slug, "First")
        event = stream.next_event()
        # The hint came before the first event, as a whole number of milliseconds.
        assert stream.parser.retry_ms is not None and stream.parser.retry_ms > 0
        assert (event.type, event.json()) == ("entry.created", entry)


def test_each_event_carries_the_entry_or_story_exactly_as_the_api_returns_it(site: Site, serve) -> None:  # noqa: F811
    server = serve()
    api = server.api()
    slug = api.story()
    server.settle()  # start after the setup's events
    with SSEStream(server.live_url(slug)) as stream:
        def next_is(type: str, expected: dict[str, Any]) -> Event:
            event = stream.next_event()
            assert event.type == type
            assert event.json() == expected
            return event

        posted = [
            api.post(slug, "Police have sealed off **Unity Street**.\r\nMore soon.", key_event=True),
            api.post(slug, "We will be back tomorrow.", kind="quote", speaker="Mira Solvane", role="candidate"),
            api.post(slug, "", kind="image", image_url="https://example.org/a.jpg", alt="The square",
                     caption="Lantern Square", credit="AP"),
            api.post(slug, "Live pictures", kind="embed", url="https://example.org/live"),
            api.post(slug, "Ünïcödé — 東京 \u2028 line separator", pinned=True, who="eve"),
        ]
        for entry in posted:
            next_is("entry.created", api.entry(slug, entry["id"]))
        api.edit(slug, posted[0]["id"], body="Police now say **5,000** people.")
        next_is("entry.updated", api.entry(slug, posted[0]["id"]))
        api.edit(slug, posted[1]["id"], pinned=True)
        next_is("entry.updated", api.entry(slug, posted[1]["id"]))
        api.patch_story(slug, summary="Thousands\nreturn to the square.", headline="Third night")
        next_is("story.updated", api.read_story(slug))
        api.delete(slug, posted[2]["id"])
        deleted = stream.next_event()
        assert deleted.type == "entry.deleted"
        assert deleted.json()["id"] == posted[2]["id"] and deleted.json()["story"] == slug
        received = stream.received_events
    # The ids are the log's: the events API has the same events (except the created event of
    # the entry deleted since, which a catch-up leaves out).
    story_created = api.events(slug)[0]
    assert story_created["type"] == "story.created"
    gone = posted[2]["id"]
    still_visible = [e for e in received if e.type == "entry.deleted" or e.json().get("id") != gone
                     or not e.type.startswith("entry.")]
    assert as_triples(still_visible) == as_triples(api.events(slug, after=story_created["id"]))
    assert [e.id for e in received] == sorted({e.id for e in received})


# --- what has no stream ---------------------------------------------------------------------


def test_unknown_story_is_404(client: TestClient) -> None:
    for path in ("/stories/no-such-story/live", "/stories/NOT_A_SLUG/live", "/stories/" + "a" * 300 + "/live"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 404


def test_draft_story_stream_is_404_for_anonymous(client: TestClient, site: Site) -> None:
    response = client.post("/api/v1/stories", json={"headline": "Embargoed", "status": "draft"},
                           headers=site.auth("eve"))
    assert response.status_code == 201
    slug = response.json()["slug"]
    assert client.get(f"/stories/{slug}/live").status_code == 404
    assert client.get(f"/stories/{slug}/live", headers={"Last-Event-ID": "0"}).status_code == 404
    assert client.get(f"/stories/{slug}/live?last_event_id=0").status_code == 404


def test_published_draft_gets_a_stream(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story(status="draft")
    with SSEStream(server.live_url(slug)) as refused:
        assert refused.status == 404
    api.patch_story(slug, status="live")
    api.post(slug, "Now public")
    # The 404 above may be remembered until this process has read the story.updated event
    # (within a poll); a browser reconnecting only later is served, with the whole story.
    wait_for(lambda: server.live.follower.last_id >= api.newest_id(slug), what="the follower")
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}) as stream:
        assert stream.status == 200
        got = stream.events(len(api.events(slug)))
        assert [e.type for e in got] == ["story.created", "story.updated", "entry.created"]
