"""Feeds and sitemaps as feed readers and search engines read them: parsed by a real feed
parser, every update there, absolute links, and a 304 for a reader that polls."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from email.utils import formatdate

import feedparser
import pytest
import jsonschema_rs
from fastapi.testclient import TestClient

from conftest import Site, past_this_second

ORIGIN = "http://testserver"
# What JSON Feed 1.1 requires (version, title, items; each item an id and some content) and
# the types it gives the fields Dateline writes.
_URL = {"type": "string", "pattern": "^https?://"}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
_AUTHORS = {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
JSON_FEED_1_1 = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"}, "home_page_url": _URL, "feed_url": _URL, "icon": _URL,
        "language": {"type": "string"}, "authors": _AUTHORS,
        "items": {"type": "array", "items": {
            "type": "object",
            "required": ["id"],
            "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
            "properties": {
                "id": {"type": "string"}, "url": _URL, "title": {"type": "string"},
                "content_html": {"type": "string"}, "content_text": {"type": "string"}, "image": _URL,
                "date_published": _DATE, "date_modified": _DATE, "authors": _AUTHORS,
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        }},
    },
}


def post(client: TestClient, site: Site, slug: str, **fields: object) -> dict[str, object]:
    response = client.post(f"/api/v1/stories/{slug}/entries", json=fields, headers=site.auth("eve"))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _three_updates(client: TestClient, site: Site, slug: str) -> list[dict[str, object]]:
    return [
        post(client, site, slug, body="Riot police take up positions on **Union Square**.", key_event=True),
        post(client, site, slug, kind="quote", body="We will stay until the count is redone.",
             speaker="Mira Solvane", role="opposition candidate"),
        post(client, site, slug, body="The electoral commission says 61% of ballots are counted <script>x</script>"),
    ]


def test_the_atom_feed_parses_and_carries_every_update(client: TestClient, site: Site, live_story: str) -> None:
    posted = _three_updates(client, site, live_story)
    response = client.get(f"/stories/{live_story}/feed.atom")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title == "Second night of protests"
    assert feed.feed.link == f"{ORIGIN}/stories/{live_story}"
    assert [e.id for e in feed.entries] == [f"{ORIGIN}/stories/{live_story}/entries/{p['id']}" for p in reversed(posted)]
    newest, quote, first = feed.entries
    assert "61% of ballots" in newest.content[0].value and "<script>" not in newest.content[0].value
    assert quote.title.startswith("“We will stay until the count is redone.” — Mira Solvane")
    assert "<cite>Mira Solvane</cite>" in quote.content[0].value
    assert first.author == "Eve" and first.published_parsed and first.updated_parsed
    assert [t.term for t in first.tags] == ["key event"]
    assert first.link == first.id


def test_a_correction_is_visible_in_the_feed(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="Turnout was 48%.")
    fixed = client.patch(f"/api/v1/stories/{live_story}/entries/{entry['id']}", headers=site.auth("eve"),
                         json={"body": "Turnout was 58%.", "correction": "An earlier version gave turnout as 48%."})
    assert fixed.status_code == 200, fixed.text
    feed = feedparser.parse(client.get(f"/stories/{live_story}/feed.atom").content)
    (item,) = feed.entries
    assert "58%" in item.content[0].value and "An earlier version gave turnout as 48%." in item.content[0].value
    assert "correction" in [t.term for t in item.tags]
    assert item.updated_parsed >= item.published_parsed
    as_json = client.get(f"/stories/{live_story}/feed.json").json()
    assert as_json["items"][0]["tags"] == ["correction"]


def test_the_json_feed_carries_the_required_fields(client: TestClient, site: Site, live_story: str) -> None:
    posted = _three_updates(client, site, live_story)
    response = client.get(f"/stories/{live_story}/feed.json")
    assert response.headers["content-type"].startswith("application/feed+json")
    feed = response.json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Second night of protests"
    assert feed["feed_url"] == f"{ORIGIN}/stories/{live_story}/feed.json"
    assert feed["home_page_url"] == f"{ORIGIN}/stories/{live_story}"
    assert len(feed["items"]) == 3
    for item, entry in zip(feed["items"], reversed(posted)):
        assert item["id"] == item["url"] == f"{ORIGIN}/stories/{live_story}/entries/{entry['id']}"
        assert item["content_html"] == entry["html"]
        assert item["date_published"] == entry["published_at"] and item["authors"] == [{"name": "Eve"}]
    # JSON Feed 1.1's rules, as its specification words them (the feed parser reads Atom only).
    jsonschema_rs.validate(JSON_FEED_1_1, feed)


def test_photo_links_in_a_feed_are_absolute(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, kind="image", image_url="/media/" + "a" * 24 + "-1600x900.jpg",
         alt="Crowds on the square", caption="The square at dusk", credit="Photo: Lena Ward")
    item = client.get(f"/stories/{live_story}/feed.json").json()["items"][0]
    assert f'src="{ORIGIN}/media/' in item["content_html"] and ' src="/' not in item["content_html"]
    assert ", /media/" not in item["content_html"]
    assert item["image"].startswith(f"{ORIGIN}/media/")


def test_a_polling_feed_reader_gets_304(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, body="First.")
    past_this_second()
    for path in (f"/stories/{live_story}/feed.atom", f"/stories/{live_story}/feed.json", "/feed.atom", "/feed.json",
                 "/sitemap.xml"):
        first = client.get(path)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304, path
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304, path
        assert client.get(path, headers={"If-Modified-Since": "not a date"}).status_code == 200
        assert client.get(path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status_code == 200
    etag = client.get(f"/stories/{live_story}/feed.atom").headers["etag"]
    post(client, site, live_story, body="Second.")
    again = client.get(f"/stories/{live_story}/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200 and "Second." in again.text


@pytest.mark.parametrize("path", ["/stories/{slug}/feed.atom", "/stories/{slug}/feed.json", "/feed.atom",
                                  "/stories/{slug}", "/api/v1/stories/{slug}/events"])
def test_a_poller_with_a_date_never_misses_a_change_made_in_the_same_second(
        client: TestClient, site: Site, live_story: str, path: str) -> None:
    """HTTP dates are whole seconds, and a poller without the ETag revalidates with the
    date it was given, or with the answer's `Date` when it was given none. Each change here
    follows the poller's copy within milliseconds, mostly in the same second."""
    path = path.format(slug=live_story)
    for n in range(4):
        if n == 3:  # and once the second is over, the date is given and serves its purpose
            past_this_second()
        asked = formatdate(usegmt=True)  # what the answer's Date says, or a second earlier
        copy = client.get(path)
        assert copy.status_code == 200
        assert n < 3 or "last-modified" in copy.headers
        since = copy.headers.get("last-modified", asked)
        post(client, site, live_story, body=f"Change {n}.")
        again = client.get(path, headers={"If-Modified-Since": since})
        assert again.status_code == 200 and again.headers["etag"] != copy.headers["etag"], (n, since, again.headers)
        assert path == "/feed.atom" or f"Change {n}." in again.text  # the site's feed lists stories
    past_this_second()
    latest = client.get(path)
    assert client.get(path, headers={"If-Modified-Since": latest.headers["last-modified"]}).status_code == 304


def test_feeds_are_compressed_when_asked(client: TestClient, site: Site, live_story: str) -> None:
    for n in range(10):
        post(client, site, live_story, body=f"Update {n} from the square, where the crowd keeps growing.")
    response = client.get(f"/stories/{live_story}/feed.atom", headers={"Accept-Encoding": "br"})
    assert response.headers["content-encoding"] == "br" and response.headers["vary"] == "Accept-Encoding"


def test_the_site_feeds_list_public_stories_only(client: TestClient, site: Site, live_story: str) -> None:
    draft = client.post("/api/v1/stories", json={"headline": "Not yet public"}, headers=site.auth("eve"))
    assert draft.status_code == 201
    feed = feedparser.parse(client.get("/feed.atom").content)
    assert not feed.bozo
    assert [e.link for e in feed.entries] == [f"{ORIGIN}/stories/{live_story}"]
    as_json = client.get("/feed.json").json()
    jsonschema_rs.validate(JSON_FEED_1_1, as_json)
    assert [item["title"] for item in as_json["items"]] == ["Second night of protests"]


def test_feeds_of_missing_or_draft_stories_are_404(client: TestClient, site: Site) -> None:
    draft = client.post("/api/v1/stories", json={"headline": "Not yet public"}, headers=site.auth("eve")).json()
    for path in ("/stories/no-such/feed.atom", f"/stories/{draft['slug']}/feed.json"):
        response = client.get(path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_the_page_heads_advertise_the_feeds(client: TestClient, live_story: str) -> None:
    page = client.get(f"/stories/{live_story}").text
    assert f'type="application/atom+xml" title="Second night of protests (Atom)" href="{ORIGIN}/stories/{live_story}/feed.atom"' in page
    assert f'href="{ORIGIN}/stories/{live_story}/feed.json"' in page
    home = client.get("/").text
    assert f'href="{ORIGIN}/feed.atom"' in home and f'href="{ORIGIN}/feed.json"' in home


def test_the_sitemaps_and_robots(client: TestClient, site: Site, live_story: str) -> None:
    sitemap = ET.fromstring(client.get("/sitemap.xml").content)
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "n": "http://www.google.com/schemas/sitemap-news/0.9"}
    assert [loc.text for loc in sitemap.findall("s:url/s:loc", ns)] == [f"{ORIGIN}/", f"{ORIGIN}/stories/{live_story}"]
    news = ET.fromstring(client.get("/sitemap-news.xml").content)
    (url,) = news.findall("s:url", ns)
    assert url.findtext("s:loc", namespaces=ns) == f"{ORIGIN}/stories/{live_story}"
    assert url.findtext("n:news/n:title", namespaces=ns) == "Second night of protests"
    assert url.findtext("n:news/n:publication/n:name", namespaces=ns) == "Dateline"
    robots = client.get("/robots.txt").text
    assert "Disallow: /newsroom/" in robots and f"Sitemap: {ORIGIN}/sitemap.xml" in robots


def test_control_characters_never_break_the_xml(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, kind="quote", body="Words", speaker="A \x0b speaker ]]> & <co>")
    response = client.get(f"/stories/{live_story}/feed.atom")
    if response.status_code == 200:
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.bozo_exception
        ET.fromstring(response.content)
    json.loads(client.get(f"/stories/{live_story}/feed.json").content)
