"""The reader's pages: complete without JavaScript, cached with validators, secure headers."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fastapi.testclient import TestClient

from conftest import Site, past_this_second


def post(client: TestClient, site: Site, slug: str, **fields: object) -> dict[str, object]:
    response = client.post(f"/api/v1/stories/{slug}/entries", json=fields, headers=site.auth("eve"))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_story_page_shows_every_part_of_a_story(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, body="Riot police take up positions.", key_event=True)
    post(client, site, live_story, kind="quote", body="Our protest will go on.", speaker="Mira Solvane", role="candidate")
    post(client, site, live_story, body="**How we cover this story.**", pinned=True)
    page = client.get(f"/stories/{live_story}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<h1>Second night of protests</h1>" in html
    assert '<span class="dateline">DRAVONNE</span>' in html and "Last updated" in html
    assert 'class="live-marker"' in html
    assert "Key events" in html and "Riot police take up positions." in html
    assert "<cite>Mira Solvane</cite>, candidate" in html
    # Newest first, with the pinned update above them all.
    order = [m for m in re.findall(r'id="entry-(\d+)"', html)]
    assert order == ["3", "2", "1"]
    assert f'href="/stories/{live_story}/entries/1"' in html


def test_older_updates_are_a_link_away(client: TestClient, site: Site, live_story: str) -> None:
    for n in range(25):
        post(client, site, live_story, body=f"Update number {n}")
    first = client.get(f"/stories/{live_story}").text
    assert "Update number 24" in first and "Update number 4<" not in first
    older = re.search(r'href="(/stories/[^"]+\?before=\d+)"', first)
    assert older, "an 'Older updates' link"
    second = client.get(older.group(1)).text
    assert "Update number 4<" in second and "Update number 0<" in second and "Update number 24" not in second
    assert "Back to the latest updates" in second


def test_a_permalink_shows_one_update(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="The square is cleared.")
    page = client.get(f"/stories/{live_story}/entries/{entry['id']}")
    assert page.status_code == 200 and "The square is cleared." in page.text
    assert client.get(f"/stories/{live_story}/entries/99999").status_code == 404


def test_missing_pages_are_html_not_json(client: TestClient) -> None:
    page = client.get("/stories/no-such-story")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Back to all stories" in page.text


def test_pages_revalidate_cheaply_and_change_with_the_story(client: TestClient, site: Site, live_story: str) -> None:
    past_this_second()  # for the Last-Modified (web/http_cache.py)
    first = client.get(f"/stories/{live_story}")
    etag = first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"] and first.headers["Last-Modified"].endswith("GMT")
    assert client.get(f"/stories/{live_story}", headers={"If-None-Match": etag}).status_code == 304
    post(client, site, live_story, body="News")
    changed = client.get(f"/stories/{live_story}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_pages_answer_head_as_caches_and_monitors_ask(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="News")
    past_this_second()
    for path in ["/", f"/stories/{live_story}", f"/stories/{live_story}/entries/{entry['id']}"]:
        full = client.get(path)
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["ETag"] == full.headers["ETag"] and head.headers["Last-Modified"] == full.headers["Last-Modified"]


def test_the_front_page_lists_live_stories_first(client: TestClient, site: Site) -> None:
    auth = site.auth("eve")
    client.post("/api/v1/stories", json={"headline": "Finished coverage", "status": "ended"}, headers=auth)
    client.post("/api/v1/stories", json={"headline": "Happening now", "status": "live"}, headers=auth)
    client.post("/api/v1/stories", json={"headline": "Not yet out"}, headers=auth)
    html = client.get("/").text
    assert html.index("Happening now") < html.index("Finished coverage")
    assert "Not yet out" not in html


def test_every_page_sends_the_security_headers(client: TestClient, live_story: str) -> None:
    for path in ["/", f"/stories/{live_story}", "/api/v1/stories", "/stories/missing"]:
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert headers["X-Frame-Options"] == "DENY"


def test_the_page_has_no_inline_script_or_style(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, body="Text")
    html = client.get(f"/stories/{live_story}").text
    assert "<script>" not in html and " style=" not in html and "<style" not in html


def test_times_without_scripts_are_in_the_newsrooms_zone_and_name_it(site: Site, tmp_path: Path) -> None:
    from dateline.app import create_app
    from dateline.config import Settings

    with TestClient(create_app(Settings.from_env({}, database_url=site.url, media_dir=str(tmp_path / "m")), site.db)) as utc:
        slug = utc.post("/api/v1/stories", json={"headline": "Curfew", "status": "live"}, headers=site.auth("eve")).json()["slug"]
        entry = utc.post(f"/api/v1/stories/{slug}/entries", json={"body": "Trams stop."}, headers=site.auth("eve")).json()
        shown_utc = re.search(r'<time datetime="[^"]+"[^>]*>([^<]+)</time>', utc.get(f"/stories/{slug}").text)
    paris = Settings.from_env({"DATELINE_TIME_ZONE": "Europe/Paris"}, database_url=site.url, media_dir=str(tmp_path / "m"))
    with TestClient(create_app(paris, site.db)) as local:
        page = local.get(f"/stories/{slug}").text
    assert shown_utc is not None and shown_utc.group(1).endswith(" UTC")
    published = datetime.fromisoformat(entry["published_at"].replace("Z", "+00:00"))
    in_paris = published.astimezone(ZoneInfo("Europe/Paris")).strftime("%-d %b %Y, %H:%M %Z")
    assert in_paris.endswith((" CET", " CEST")) and in_paris in page, re.findall(r"<time[^>]*>[^<]*</time>", page)


def test_a_time_zone_that_does_not_exist_is_refused_at_start() -> None:
    from dateline.config import Settings

    with pytest.raises(ValueError, match="time zone"):
        Settings.from_env({"DATELINE_TIME_ZONE": "Mars/Olympus"})
