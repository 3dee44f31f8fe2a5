"""What search engines and social networks read in the page head: LiveBlogPosting JSON-LD,
OpenGraph and Twitter cards, absolute canonical links."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from conftest import Site
from dateline.app import create_app
from dateline.config import Settings


class Head(HTMLParser):
    """The page head's meta and link tags, and its JSON-LD, as a crawler collects them."""

    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.json_ld: list[str] = []
        self._in_ld = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "meta" and ("property" in found or "name" in found):
            self.meta[found.get("property") or found["name"]] = found.get("content", "")
        elif tag == "link":
            self.links.append(found)
        elif tag == "script" and found.get("type") == "application/ld+json":
            self._in_ld = True
            self.json_ld.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_ld = False if tag == "script" else self._in_ld

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self.json_ld[-1] += data


def head_of(html: str) -> Head:
    head = Head()
    head.feed(html)
    return head


def post(client: TestClient, site: Site, slug: str, **fields: object) -> dict[str, object]:
    response = client.post(f"/api/v1/stories/{slug}/entries", json=fields, headers=site.auth("eve"))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_story_page_carries_a_live_blog_posting(client: TestClient, site: Site, live_story: str) -> None:
    first = post(client, site, live_story, body="Riot police take up positions on the square.")
    post(client, site, live_story, kind="quote", body="We stay.", speaker="Mira Solvane")
    head = head_of(client.get(f"/stories/{live_story}").text)
    (raw,) = head.json_ld
    data = json.loads(raw)
    assert data["@context"] == "https://schema.org" and data["@type"] == "LiveBlogPosting"
    assert data["url"] == data["@id"] == f"http://testserver/stories/{live_story}"
    assert data["headline"] == "Second night of protests"
    assert data["coverageStartTime"] and "coverageEndTime" not in data  # still live
    assert data["datePublished"] and data["dateModified"]
    assert data["publisher"]["name"] == "Dateline"
    updates = data["liveBlogUpdate"]
    assert [u["@type"] for u in updates] == ["BlogPosting", "BlogPosting"]
    newest, oldest = updates
    assert newest["headline"] == "“We stay.” — Mira Solvane"
    assert oldest["headline"] == "Riot police take up positions on the square."
    assert oldest["url"] == f"http://testserver/stories/{live_story}/entries/{first['id']}"
    assert oldest["datePublished"] == first["published_at"] and oldest["author"] == {"@type": "Person", "name": "Eve"}


def test_no_update_can_break_out_of_the_json_ld(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, kind="quote", body="</script><script>alert(1)</script> <!-- &amp;",
         speaker="</script><b>x")
    html = client.get(f"/stories/{live_story}").text
    block = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert block and "<" not in block.group(1) and ">" not in block.group(1)
    data = json.loads(block.group(1))
    assert "</script><b>x" in data["liveBlogUpdate"][0]["headline"]


def test_open_graph_and_twitter_cards_use_absolute_urls(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, kind="image", image_url="/media/" + "b" * 24 + "-1600x900.jpg",
         alt="Protesters fill the square", caption="Union Square at dusk", credit="Lena Ward")
    head = head_of(client.get(f"/stories/{live_story}").text)
    assert head.meta["og:type"] == "article" and head.meta["og:title"] == "Second night of protests"
    assert head.meta["og:url"] == f"http://testserver/stories/{live_story}"
    assert head.meta["og:image"] == "http://testserver/media/" + "b" * 24 + "-1600x900.jpg"
    assert head.meta["og:image:width"] == "1600" and head.meta["og:image:alt"] == "Protesters fill the square"
    assert head.meta["twitter:card"] == "summary_large_image"
    assert head.meta["og:description"] == "Union Square at dusk"
    canonical = [link["href"] for link in head.links if link.get("rel") == "canonical"]
    assert canonical == [f"http://testserver/stories/{live_story}"]
    for name, value in head.meta.items():
        if name.endswith((":url", ":image")):
            assert value.startswith("http://testserver/"), (name, value)
    assert json.loads(head.json_ld[0])["image"] == head.meta["og:image"]


def test_an_update_permalink_has_its_own_canonical_and_card(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="The square is cleared shortly before midnight.")
    head = head_of(client.get(f"/stories/{live_story}/entries/{entry['id']}").text)
    url = f"http://testserver/stories/{live_story}/entries/{entry['id']}"
    assert [link["href"] for link in head.links if link.get("rel") == "canonical"] == [url]
    assert head.meta["og:url"] == url and head.meta["twitter:card"] == "summary"
    assert head.meta["og:description"] == "The square is cleared shortly before midnight."


def test_the_public_url_makes_every_link(site: Site, tmp_path: object) -> None:
    settings = Settings.from_env({}, database_url=site.url, public_url="https://live.example.org/")
    with TestClient(create_app(settings, site.db)) as client:
        slug = client.post("/api/v1/stories", json={"headline": "Count resumes", "status": "live"},
                           headers=site.auth("eve")).json()["slug"]
        head = head_of(client.get(f"/stories/{slug}", headers={"Host": "evil.example"}).text)
        assert head.meta["og:url"] == f"https://live.example.org/stories/{slug}"
        assert json.loads(head.json_ld[0])["url"] == f"https://live.example.org/stories/{slug}"
        assert "https://live.example.org/sitemap.xml" in client.get("/robots.txt").text
        feed = client.get(f"/stories/{slug}/feed.json").json()
        assert feed["feed_url"] == f"https://live.example.org/stories/{slug}/feed.json"


def test_a_forged_host_is_never_shown_to_anyone_else(client: TestClient, site: Site, live_story: str) -> None:
    forged = client.get(f"/stories/{live_story}", headers={"Host": "evil.example"}).text
    assert 'href="http://evil.example/stories/' in forged  # its own answer, to whoever forged it
    honest = client.get(f"/stories/{live_story}").text
    assert "evil.example" not in honest
    odd = client.get(f"/stories/{live_story}", headers={"Host": 'x"><script>'}).text
    assert "<script>" not in odd.split("</head>")[0].replace('<script type="application/ld+json">', "")


def test_a_bad_public_url_is_refused_in_one_line() -> None:
    for value in ("live.example.org", "ftp://live.example.org", "https://live.example.org/?a=1"):
        try:
            Settings.from_env({"DATELINE_PUBLIC_URL": value})
        except ValueError as exc:
            assert "DATELINE_PUBLIC_URL" in str(exc)
        else:
            raise AssertionError(f"{value!r} accepted")


def test_serve_warns_only_beyond_loopback_without_a_public_url() -> None:
    from dateline.web.public_url import public_url_warning

    assert public_url_warning("", "0.0.0.0") and "DATELINE_PUBLIC_URL" in str(public_url_warning("", "::"))
    assert public_url_warning("", "192.0.2.10") is not None
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert public_url_warning("", host) is None, host
    assert public_url_warning("https://live.example.org", "0.0.0.0") is None
