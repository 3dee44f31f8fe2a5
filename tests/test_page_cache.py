"""Readers' pages and files as a breaking story needs them: each page rendered once per
version and served from memory, compressed once in the encodings the reader accepts, static
files under hashed names that cache for a year.

Each check asks through the whole app (the door included) and compares what comes back
with the page rendered afresh, or with the file on disk.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import brotli
import pytest
from fastapi.testclient import TestClient

from conftest import Site, past_this_second
from dateline.reader.page_cache import CachedPage, PageCache
from dateline.times import http_date
from dateline.web.assets import BUNDLES, STATIC, Assets
from dateline.web.compression import Encoded, accepted


def post(client: TestClient, site: Site, slug: str, body: str) -> None:
    response = client.post(f"/api/v1/stories/{slug}/entries", json={"body": body}, headers=site.auth("eve"))
    assert response.status_code == 201, response.text


def stats(client: TestClient) -> dict[str, int]:
    return client.app.state.pages.stats()  # type: ignore[attr-defined,no-any-return]


def raw(client: TestClient, path: str, accept_encoding: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the bytes as sent (not decoded)."""
    with client.stream("GET", path, headers={"Accept-Encoding": accept_encoding, **headers}) as response:
        return response.status_code, dict(response.headers), b"".join(response.iter_raw())


def test_a_story_page_is_rendered_once_per_version_and_then_served_from_memory(
        client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, "Crowds gather at the square.")
    first = client.get(f"/stories/{live_story}")
    before = stats(client)
    for _ in range(5):
        again = client.get(f"/stories/{live_story}")
        assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    after = stats(client)
    assert after["renders"] == before["renders"], "the same version is not rendered again"
    assert after["door_hits"] >= before["door_hits"] + 4, "answered from memory, ahead of the framework"
    # A new update is a new version: the very next request has it, with no wait for the
    # follower (this process wrote it).
    post(client, site, live_story, "Police move in from the east.")
    fresh = client.get(f"/stories/{live_story}")
    assert "Police move in from the east." in fresh.text and fresh.headers["ETag"] != first.headers["ETag"]
    assert stats(client)["renders"] == after["renders"] + 1


def test_a_cached_page_is_never_served_once_its_story_is_back_in_draft(
        client: TestClient, site: Site, live_story: str) -> None:
    assert client.get(f"/stories/{live_story}").status_code == 200
    assert client.get(f"/stories/{live_story}").status_code == 200  # now held
    response = client.patch(f"/api/v1/stories/{live_story}", json={"status": "draft"}, headers=site.auth("eve"))
    assert response.status_code == 200, response.text
    assert client.get(f"/stories/{live_story}").status_code == 404


@pytest.mark.parametrize("path", ["/stories/{slug}", "/stories/{slug}?order=oldest", "/", "/stories/{slug}/entries/1"])
def test_pages_come_compressed_as_the_reader_asks(client: TestClient, site: Site, live_story: str, path: str) -> None:
    for n in range(12):
        post(client, site, live_story, f"Update {n}: marchers reach the ministry, and more arrive by the hour.")
    path = path.format(slug=live_story)
    client.get(path)  # the second of each below may come from memory, at the door
    status, plain_headers, plain = raw(client, path, "identity")
    assert status == 200 and "content-encoding" not in plain_headers
    assert plain_headers["vary"] == "Accept-Encoding" and plain_headers["content-length"] == str(len(plain))
    for asked, coding, decode in (("gzip, deflate, br", "br", brotli.decompress), ("gzip", "gzip", gzip.decompress),
                                  ("br;q=0, gzip", "gzip", gzip.decompress), ("br;q=0.5, gzip", "gzip", gzip.decompress),
                                  ("*", "br", brotli.decompress)):
        for _ in range(2):
            status, headers, sent = raw(client, path, asked)
            assert status == 200 and headers["content-encoding"] == coding, (asked, headers)
            assert decode(sent) == plain and len(sent) < len(plain), asked
            assert headers["etag"] == plain_headers["etag"] and headers["vary"] == "Accept-Encoding"
            assert headers["content-security-policy"] == plain_headers["content-security-policy"]
            # The validator names the version, whatever its encoding: a 304 either way.
            status, revalidated, body = raw(client, path, asked, **{"If-None-Match": headers["etag"]})
            assert status == 304 and body == b"" and revalidated["etag"] == headers["etag"]
            assert revalidated["vary"] == "Accept-Encoding"


def test_head_of_a_page_held_in_memory_has_the_headers_alone(client: TestClient, live_story: str) -> None:
    client.get(f"/stories/{live_story}")
    full = client.get(f"/stories/{live_story}", headers={"Accept-Encoding": "br"})
    head = client.head(f"/stories/{live_story}", headers={"Accept-Encoding": "br"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    assert head.headers["content-encoding"] == "br"


def test_the_page_cache_holds_what_its_limits_allow() -> None:
    def page(size: int) -> CachedPage:
        return CachedPage('W/"x"', Encoded(b"x" * size), {"Content-Type": "text/html"})

    cache = PageCache(lambda story_id, version: True, max_pages=2, max_bytes=1000)
    for key in ("a", "b", "c"):
        cache.put(key, page(100))
    assert list(cache.pages) == ["b", "c"] and cache.bytes == 200
    assert cache.get("b", 'W/"x"') is not None and cache.get("b", 'W/"y"') is None
    cache.put("d", page(900))  # over the bytes: the least recently used (c, since b was read) goes
    assert list(cache.pages) == ["b", "d"] and cache.bytes == 1000
    cache.put("e", page(5000))  # bigger than the whole cache: served, never held
    assert "e" not in cache.pages and cache.bytes == 1000


def test_a_date_is_given_only_once_the_second_of_its_change_is_over() -> None:
    """HTTP dates are whole seconds: within the second of a change, another change could come
    under the same date (web/http_cache.py)."""
    def answers(modified: datetime, **asked: str) -> list[tuple[int, dict[bytes, bytes]]]:
        page = CachedPage('W/"v1"', Encoded.of(b"<p>x</p>" * 50), {
            "Content-Type": "text/html", "Last-Modified": http_date(modified), "Cache-Control": "no-cache"}, 7, 1)
        cache = PageCache(lambda story_id, version: True, door=lambda scope: "key")
        cache.put("key", page)
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        headers = [(b"accept-encoding", b"br"), *((k.replace("_", "-").encode(), v.encode()) for k, v in asked.items())]
        assert asyncio.run(cache.answer({"type": "http", "method": "GET", "headers": headers}, send))
        ordinary = page.response("br")
        door = (int(sent[0]["status"]), dict(sent[0]["headers"]))  # type: ignore[call-overload]
        return [door, (ordinary.status_code, {k: v for k, v in ordinary.raw_headers})]

    now = datetime.now(timezone.utc)
    assert http_date(now.replace(microsecond=300_000)) == http_date(now.replace(microsecond=0) + timedelta(seconds=1))
    for status, headers in answers(now + timedelta(seconds=3)):  # its second is not over
        assert status == 200 and b"last-modified" not in headers and headers[b"etag"] == b'W/"v1"'
    past = now - timedelta(seconds=3, microseconds=now.microsecond - 250_000)
    for status, headers in answers(past):
        assert status == 200 and headers[b"last-modified"] == http_date(past).encode()
    # The date rounded up to the second: a 304 for it, and for a later date; not for the second before.
    assert answers(past, if_modified_since=http_date(past))[0][0] == 304
    assert answers(past, if_modified_since=http_date(past + timedelta(seconds=5)))[0][0] == 304
    assert answers(past, if_modified_since=http_date(past - timedelta(seconds=1)))[0][0] == 200
    status, headers = answers(now + timedelta(seconds=3), if_none_match='W/"v1"')[0]
    assert status == 304 and b"last-modified" not in headers and headers[b"etag"] == b'W/"v1"'


def test_a_bundle_is_its_parts_in_order_and_no_file_may_take_its_name(tmp_path: Path) -> None:
    for name, text in (("times.js", "var a = 1;"), ("live.js", "var b = a;")):
        (tmp_path / name).write_text(text)
    bundle = Assets(tmp_path).files["story.js"]
    assert bundle.data == b"var a = 1;\nvar b = a;" and bundle.content_type.startswith("text/javascript")
    (tmp_path / "story.js").write_text("var c;")
    with pytest.raises(RuntimeError, match="static/story.js is the name of a bundle"):
        Assets(tmp_path)


def test_accept_encoding_is_read_as_the_rfc_says() -> None:
    assert accepted("gzip, deflate, br") == ("br", "gzip")
    assert accepted("gzip;q=1.0, br;q=0.8") == ("gzip", "br")
    assert accepted("br;q=0, gzip") == ("gzip",)
    assert accepted("*;q=0.1, gzip;q=0") == ("br",)
    assert accepted("identity") == () and accepted("") == () and accepted("br;q=nonsense") == ()
    assert accepted("GZIP") == ("gzip",)


def test_static_files_have_hashed_names_that_cache_for_a_year(client: TestClient, live_story: str) -> None:
    page = client.get(f"/stories/{live_story}").text
    links = re.findall(r'(?:href|src|data-script)="(/static/[^"]+)"', page)
    assert {re.sub(r"\.[0-9a-f]{10}\.", ".", link) for link in links} >= {
        "/static/dateline.css", "/static/story.js", "/static/push.js", "/static/favicon.svg"}
    for link in links:
        name = re.sub(r"\.[0-9a-f]{10}\.", ".", link.removeprefix("/static/"))
        on_disk = b"\n".join((STATIC / part).read_bytes() for part in BUNDLES.get(name, (name,)))
        status, headers, sent = raw(client, link, "br")
        assert status == 200 and headers["cache-control"] == "public, max-age=31536000, immutable", link
        assert headers["x-content-type-options"] == "nosniff", link
        if link.endswith((".css", ".js")):  # linked, never a document: no document policies
            assert "content-security-policy" not in headers and "x-frame-options" not in headers, link
        else:  # an SVG can be opened as a document
            assert "frame-ancestors 'none'" in headers["content-security-policy"], link
        if len(on_disk) > 1024:  # a tiny file is sent as it is: the encoding would not pay
            assert headers["content-encoding"] == "br" and headers["vary"] == "Accept-Encoding", link
        assert (brotli.decompress(sent) if headers.get("content-encoding") else sent) == on_disk, link
        status, headers, sent = raw(client, link, "identity")
        assert sent == on_disk and "content-encoding" not in headers
        assert raw(client, link, "br", **{"If-None-Match": headers["etag"]})[0] == 304
        # The plain name, and a hash of another version: this file, but revalidated each time.
        for other in (f"/static/{name}", re.sub(r"\.[0-9a-f]{10}\.", ".0123456789.", link)):
            status, headers, sent = raw(client, other, "identity")
            assert (status, sent, headers["cache-control"]) == (200, on_disk, "no-cache"), other
    # The service worker is a worker, not a linked file: it keeps the policies.
    assert "content-security-policy" in client.get("/sw.js").headers
    assert client.get("/static/no-such.0123456789.css").status_code == 404
    assert client.get("/static/../app.py").status_code == 404


def test_the_catch_up_api_comes_compressed_and_is_made_once_per_version(
        client: TestClient, site: Site, live_story: str) -> None:
    for n in range(20):
        post(client, site, live_story, f"Update {n}: the count of marchers keeps rising, officials say.")
    path = f"/api/v1/stories/{live_story}/events?after=0"
    status, plain_headers, plain = raw(client, path, "identity")
    assert status == 200 and "content-encoding" not in plain_headers
    answers = client.app.state.answers  # type: ignore[attr-defined]
    made = answers.renders
    status, headers, sent = raw(client, path, "br, gzip")
    assert status == 200 and headers["content-encoding"] == "br" and brotli.decompress(sent) == plain
    assert "Accept-Encoding" in headers["vary"] and "Cookie" in headers["vary"]
    assert len(sent) < len(plain) / 2 and answers.renders == made, "the same answer, not made again"
    assert raw(client, path, "gzip", **{"If-None-Match": headers["etag"]})[0] == 304
    # The newsroom's answer is its own (newsroom events too), compressed all the same.
    status, member, sent = raw(client, path, "gzip", **site.auth("eve"))
    assert status == 200 and member["content-encoding"] == "gzip" and member["etag"] != headers["etag"]
    assert len(gzip.decompress(sent)) >= len(plain)


def test_revalidations_alone_keep_the_page_answered_from_memory(client: TestClient, live_story: str) -> None:
    """Readers that all revalidate (a CDN, or browsers within max-age) send no plain GET:
    their 304s must still confirm the page held, or every one would go to the database."""
    etag = client.get(f"/stories/{live_story}").headers["ETag"]
    cache = client.app.state.pages  # type: ignore[attr-defined]
    (page,) = [page for page in cache.pages.values() if page.etag == etag]
    page.checked_at -= 60  # long unconfirmed: the door lets the next request through
    conditional = {"If-None-Match": etag}
    hits = cache.door_hits
    assert client.get(f"/stories/{live_story}", headers=conditional).status_code == 304
    assert cache.door_hits == hits, "went the ordinary way, and confirmed the page"
    assert client.get(f"/stories/{live_story}", headers=conditional).status_code == 304
    assert cache.door_hits == hits + 1
    assert client.get("/healthz").json()["pages"]["door_hits"] == hits + 1


def test_readers_catch_up_is_answered_at_the_door_exactly_as_the_ordinary_way(
        client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, "Polling stations close.")
    path = f"/api/v1/stories/{live_story}/events?after=0&limit=50"
    answers = client.app.state.answers  # type: ignore[attr-defined]
    ordinary = raw(client, path, "br")
    hits = answers.door_hits
    door = raw(client, path, "br")
    assert answers.door_hits == hits + 1
    assert door[0] == ordinary[0] == 200 and door[2] == ordinary[2]
    names = ("content-type", "content-encoding", "etag", "vary", "cache-control", "last-modified",
             "content-security-policy", "x-content-type-options")
    assert {n: door[1].get(n) for n in names} == {n: ordinary[1].get(n) for n in names}
    assert door[1]["vary"] == "Authorization, Cookie, Accept-Encoding"
    # Anything but a reader's plain question goes the ordinary way, which words any refusal.
    for other, status in ((path + "&x=1", 200), (f"/api/v1/stories/{live_story}/events?limit=0", 422),
                          (f"/api/v1/stories/{live_story}/events?after=-1", 422)):
        assert client.get(other).status_code == status, other
    member = client.get(path, headers=site.auth("eve"))
    assert member.status_code == 200 and member.headers["etag"] != door[1]["etag"]
    assert client.get(path, headers={"Cookie": "x=1"}).status_code == 200
    assert answers.door_hits == hits + 1, "none of those was answered at the door"
    # A new event is in the very next answer.
    post(client, site, live_story, "The first results are due at midnight.")
    assert "The first results are due at midnight." in client.get(path).text


def test_newsroom_only_events_leave_the_page_answered_at_the_door(client: TestClient, site: Site) -> None:
    """A reporter's post held for approval is an event for the newsroom alone: readers' page
    has not changed, so it is still answered from memory once this process has read it."""
    answer = client.post("/api/v1/stories", json={"headline": "Vetted", "status": "live", "requires_approval": True},
                         headers=site.auth("eve"))
    assert answer.status_code == 201, answer.text
    live_story = answer.json()["slug"]
    client.get(f"/stories/{live_story}")
    cache = client.app.state.pages  # type: ignore[attr-defined]
    response = client.post(f"/api/v1/stories/{live_story}/entries", json={"body": "Held for the desk"},
                           headers=site.auth("rita"))
    assert response.status_code == 201 and response.json()["status"] == "pending", response.text
    hits = cache.door_hits
    deadline = time.monotonic() + 10
    while cache.door_hits == hits and time.monotonic() < deadline:
        assert "Held for the desk" not in client.get(f"/stories/{live_story}").text
        time.sleep(0.05)
    assert cache.door_hits > hits, "never answered at the door again"


@pytest.mark.parametrize("path", ["/stories/{slug}/feed.atom", "/stories/{slug}/feed.json", "/stories/{slug}/embed",
                                  "/stories/{slug}/embed?scheme=dark", "/stories/{slug}/teaser?scheme=light"])
def test_feeds_and_framed_views_are_answered_at_the_door_exactly_as_the_ordinary_way(
        client: TestClient, site: Site, live_story: str, path: str) -> None:
    post(client, site, live_story, "Polling stations close.")
    past_this_second()  # for the Last-Modified
    path = path.format(slug=live_story)
    cache = client.app.state.pages  # type: ignore[attr-defined]
    ordinary = raw(client, path, "br")
    hits = cache.door_hits
    door = raw(client, path, "br")
    assert cache.door_hits == hits + 1, "answered from memory, ahead of the framework"
    assert door[0] == ordinary[0] == 200 and door[2] == ordinary[2]
    names = ("content-type", "content-encoding", "etag", "vary", "cache-control", "last-modified",
             "content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")
    assert {n: door[1].get(n) for n in names} == {n: ordinary[1].get(n) for n in names}
    if "/embed" in path or "/teaser" in path:  # framable: its own policy, at the door too
        assert "frame-ancestors 'none'" not in door[1]["content-security-policy"]
        assert "x-frame-options" not in door[1]
    # Feed readers revalidate with the ETag or with the date: both are 304s at the door.
    for conditional in ({"If-None-Match": door[1]["etag"]}, {"If-Modified-Since": door[1]["last-modified"]}):
        status, headers, body = raw(client, path, "br", **conditional)
        assert (status, body, headers["etag"]) == (304, b"", door[1]["etag"]), conditional
    assert raw(client, path, "br", **{"If-Modified-Since": "not a date"})[0] == 200
    assert raw(client, path, "br", **{"If-None-Match": '"other"', "If-Modified-Since": door[1]["last-modified"]})[0] == 200
    assert cache.door_hits == hits + 5
    # A new update is in the very next answer.
    post(client, site, live_story, "The first results are due at midnight.")
    fresh = client.get(path)
    assert "The first results are due at midnight." in fresh.text and fresh.headers["etag"] != door[1]["etag"]


def test_other_questions_of_feeds_and_framed_views_go_the_ordinary_way(
        client: TestClient, live_story: str) -> None:
    cache = client.app.state.pages  # type: ignore[attr-defined]
    for path in (f"/stories/{live_story}/feed.atom", f"/stories/{live_story}/embed"):
        client.get(path)
    hits = cache.door_hits
    for other, status in ((f"/stories/{live_story}/feed.atom?x=1", 200), (f"/stories/{live_story}/embed?scheme=blue", 422),
                          (f"/stories/{live_story}/embed?scheme=dark&x=1", 200), ("/stories/no-such/feed.atom", 404),
                          (f"/stories/{live_story}/feed.xml", 404)):
        assert client.get(other).status_code == status, other
    assert cache.door_hits == hits, "none of those was answered at the door"


@pytest.mark.parametrize("path", ["/stories/{slug}", "/stories/{slug}/feed.atom", "/stories/{slug}/embed"])
def test_a_process_that_only_sees_revalidations_answers_them_at_the_door(
        client: TestClient, site: Site, live_story: str, path: str) -> None:
    """Feed readers and CDNs poll with validators alone, and may reach a process that never
    sent them the full answer: its first 304 holds the version, the next are the door's."""
    post(client, site, live_story, "Polling stations close.")
    path = path.format(slug=live_story)
    etag = client.get(path).headers["etag"]
    cache = client.app.state.pages  # type: ignore[attr-defined]
    cache.pages.clear()  # as another process, which has sent no full answer
    cache.bytes = 0
    renders, hits = cache.renders, cache.door_hits
    assert raw(client, path, "br", **{"If-None-Match": etag})[0] == 304
    assert (cache.renders, cache.door_hits) == (renders + 1, hits), "the ordinary way, which held the version"
    status, headers, body = raw(client, path, "br", **{"If-None-Match": etag})
    assert (status, body, headers["etag"]) == (304, b"", etag)
    assert (cache.renders, cache.door_hits) == (renders + 1, hits + 1)
    # Pages the door never answers are not rendered for a 304.
    older = f"/stories/{live_story}?order=oldest"
    older_etag = client.get(older).headers["etag"]
    cache.pages.clear()
    cache.bytes = 0
    renders = cache.renders
    assert raw(client, older, "br", **{"If-None-Match": older_etag})[0] == 304
    assert cache.renders == renders
