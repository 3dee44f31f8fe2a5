"""Ending a story ends its readers' streams for good: the event that says so, then the end
of the stream, then 204 to a reconnection (a browser's EventSource stops); a reader who
missed events is replayed them first. Reopening makes the stream live again."""

from __future__ import annotations

import pytest

from conftest import Site
from live_helpers import InProcessServer, serve, wait_for  # noqa: F401 - serve is a fixture
from sse_client import Event, SSEStream


@pytest.mark.parametrize("http", ["dateline", "httptools"])
def test_ending_a_story_ends_its_streams_with_the_event_that_says_so(site: Site, serve, http: str) -> None:  # noqa: F811
    # Both ways a stream is served: the reader's own connection (web/server.py) and ASGI.
    server: InProcessServer = serve(**({} if http == "dateline" else {"http": "httptools"}))
    api = server.api()
    slug = api.story()
    api.post(slug, "Polls close")
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": "0"}) as stream:
        assert [e.type for e in stream.events(2)] == ["story.created", "entry.created"]
        ended = api.patch_story(slug, status="ended", closing_summary="The count resumes on Monday.")
        assert ended["coverage_ended_at"] and ended["closing_summary"] == "The count resumes on Monday."
        rest = [item for item in stream.read_to_end(timeout=10) if isinstance(item, Event)]
        assert stream.ended_cleanly, "the stream ends, it is not cut"
    (last,) = rest
    assert last.type == "story.updated" and last.json()["status"] == "ended"
    assert last.json()["closing_summary"] == "The count resumes on Monday."
    wait_for(lambda: server.hub_count() == 0, what="the stream to leave the hub")
    # The reader comes back with every event: the stream is over.
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(last.id)}) as again:
        assert again.status == 204 and "content-length" not in again.headers
    # Asked with no cursor at all, the same.
    with SSEStream(server.live_url(slug)) as fresh:
        assert fresh.status == 204


def test_a_reader_behind_is_replayed_what_it_missed_then_the_stream_ends(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    first = api.post(slug, "Polls close")
    server.settle()
    seen = api.newest_id(slug)
    api.post(slug, "Turnout reaches 61%")
    api.patch_story(slug, status="ended")
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(seen)}) as stream:
        assert stream.status == 200
        got = [item for item in stream.read_to_end(timeout=10) if isinstance(item, Event)]
        assert stream.ended_cleanly
    assert [e.type for e in got] == ["entry.created", "story.updated"]
    assert got[0].json()["body"] == "Turnout reaches 61%" and got[0].json()["id"] != first["id"]
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(got[-1].id)}) as again:
        assert again.status == 204


def test_a_reopened_story_streams_again(site: Site, serve) -> None:  # noqa: F811
    server: InProcessServer = serve()
    api = server.api()
    slug = api.story()
    api.patch_story(slug, status="ended")
    server.settle()
    newest = api.newest_id(slug)
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(newest)}) as stream:
        assert stream.status == 204
    reopened = api.patch_story(slug, status="live")
    assert reopened["coverage_ended_at"] is None and reopened["closing_summary"] == ""
    server.settle()
    with SSEStream(server.live_url(slug), headers={"Last-Event-ID": str(api.newest_id(slug))}) as stream:
        assert stream.status == 200
        api.post(slug, "The count is to be redone")
        assert stream.next_event().json()["body"] == "The count is to be redone"
