"""The framed views, the loader and oEmbed over HTTP: who may frame them, what they set and
send. tests/browser/test_embed.py frames them from another origin in a real browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conftest import Site
from dateline.app import create_app
from dateline.config import Settings

PUBLISHER = "https://news.example.com"


@pytest.fixture
def embedding(site: Site, settings: Settings) -> Iterator[TestClient]:
    allowed = Settings.from_env({}, database_url=site.url, embed_origins=f"{PUBLISHER}, https://www.example.org/")
    with TestClient(create_app(allowed, site.db)) as client:
        yield client


def live_story(client: TestClient, site: Site, updates: int = 0) -> str:
    slug = client.post("/api/v1/stories", json={"headline": "Second night of protests", "status": "live"},
                       headers=site.auth("eve")).json()["slug"]
    for n in range(updates):
        response = client.post(f"/api/v1/stories/{slug}/entries", json={"body": f"Update {n}"}, headers=site.auth("eve"))
        assert response.status_code == 201
    return str(slug)


def test_the_framed_views_are_framable_by_the_allowed_sites_only(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site, 2)
    for view in ("embed", "teaser"):
        response = embedding.get(f"/stories/{slug}/{view}")
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert f"frame-ancestors 'self' {PUBLISHER} https://www.example.org" in policy
        assert "script-src 'self';" in policy and "object-src 'none'" in policy  # still strict
        assert "x-frame-options" not in response.headers
        assert "set-cookie" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
    # Every other page stays unframable.
    page = embedding.get(f"/stories/{slug}")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_with_no_site_allowed_only_this_one_may_frame(client: TestClient, site: Site) -> None:
    slug = live_story(client, site)
    policy = client.get(f"/stories/{slug}/embed").headers["content-security-policy"]
    assert policy.endswith("frame-ancestors 'self'")


def test_any_site_when_the_operator_says_so(site: Site) -> None:
    with TestClient(create_app(Settings.from_env({}, database_url=site.url, embed_origins="*"), site.db)) as client:
        slug = live_story(client, site)
        assert client.get(f"/stories/{slug}/embed").headers["content-security-policy"].endswith("frame-ancestors *")


def test_bad_embed_origins_are_refused_in_one_line() -> None:
    for value in ("news.example.com", "https://news.example.com/path", "https://a.example; script-src *",
                  "javascript:alert(1)"):
        with pytest.raises(ValueError, match="DATELINE_EMBED_ORIGINS"):
            Settings.from_env({"DATELINE_EMBED_ORIGINS": value})


def test_the_embed_has_no_site_chrome_and_stays_live(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site, 1)
    html = embedding.get(f"/stories/{slug}/embed").text
    assert 'class="masthead"' not in html and 'class="colophon"' not in html
    assert 'class="notify"' not in html and 'class="order"' not in html
    assert re.search(r'<script src="/static/story\.[0-9a-f]+\.js" defer>', html)
    assert re.search(r'<script src="/static/framed\.[0-9a-f]+\.js" defer>', html)
    assert "push." not in html  # no notifications (nor their service worker) from inside a frame
    assert "class=\"story in-embed story-wide\"" in html and f'data-slug="{slug}"' in html
    assert '<meta name="robots" content="noindex">' in html
    dark = embedding.get(f"/stories/{slug}/embed?scheme=dark").text
    assert '<html lang="en" class="framed scheme-dark">' in dark
    assert embedding.get(f"/stories/{slug}/embed?scheme=purple").status_code == 422


def test_the_teaser_shows_the_latest_three(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site, 5)
    html = embedding.get(f"/stories/{slug}/teaser").text
    assert re.findall(r"Update (\d)</p>", html) == ["4", "3", "2"]
    assert 'data-limit="3"' in html and "Key events" not in html
    assert "Follow the live coverage" in html


def test_a_framed_view_is_held_and_revalidated(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site, 1)
    first = embedding.get(f"/stories/{slug}/embed")
    again = embedding.get(f"/stories/{slug}/embed", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert embedding.get(f"/stories/{slug}/embed?scheme=light").headers["etag"] != first.headers["etag"]


def test_oembed_answers_for_a_story_url(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site)
    page = embedding.get(f"/stories/{slug}").text
    discovery = re.search(r'<link rel="alternate" type="application/json\+oembed" [^>]*href="([^"]+)"', page)
    assert discovery, "the page head names its oEmbed endpoint"
    found = embedding.get(discovery.group(1).replace("&amp;", "&").removeprefix("http://testserver"))
    assert found.status_code == 200
    body = found.json()
    assert body["version"] == "1.0" and body["type"] == "rich" and body["title"] == "Second night of protests"
    assert body["provider_name"] == "Dateline" and body["width"] == 640 and body["height"] == 800
    assert f'data-dateline-embed="http://testserver/stories/{slug}"' in body["html"]
    assert '<script async src="http://testserver/embed.js"></script>' in body["html"]
    sized = embedding.get("/oembed", params={"url": f"http://testserver/stories/{slug}", "maxwidth": 400,
                                             "maxheight": 300, "view": "teaser"}).json()
    assert sized["width"] == 400 and sized["height"] == 300 and 'data-dateline-view="teaser"' in sized["html"]


@pytest.mark.parametrize("url", [
    "http://testserver/stories/no-such-story", "https://elsewhere.example/stories/x", "http://testserver/",
    "http://testserver/stories/../newsroom", "not a url", "http://testserver/stories/" + "a" * 300,
])
def test_oembed_refuses_what_is_not_a_story_here(embedding: TestClient, url: str) -> None:
    response = embedding.get("/oembed", params={"url": url})
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


def test_oembed_speaks_json_only_and_names_its_limits(embedding: TestClient, site: Site) -> None:
    slug = live_story(embedding, site)
    xml = embedding.get("/oembed", params={"url": f"http://testserver/stories/{slug}", "format": "xml"})
    assert xml.status_code == 501 and "JSON" in xml.json()["detail"]
    assert embedding.get("/oembed").status_code == 422
    assert embedding.get("/oembed", params={"url": "x" * 3000}).status_code == 422


def test_the_loader_is_small_and_served_for_pasting(embedding: TestClient) -> None:
    response = embedding.get("/embed.js")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert len(response.content) < 5000, "a few KB"
    for name in ("--dateline-font", "--dateline-accent", "--dateline-scheme", "data-dateline-embed"):
        assert name in response.text


def test_the_desk_offers_the_snippets(embedding: TestClient, site: Site) -> None:
    from test_newsroom_security import sign_in_form

    slug = live_story(embedding, site)
    sign_in_form(embedding, "eve")
    desk = embedding.get(f"/newsroom/stories/{slug}").text
    assert "Embed on another site" in desk
    assert f"data-dateline-embed=&#34;http://testserver/stories/{slug}&#34;" in desk or \
        f'data-dateline-embed=&quot;http://testserver/stories/{slug}&quot;' in desk
