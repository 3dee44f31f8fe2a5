"""Search finds stories and updates by their words on SQLite and PostgreSQL, best match
first, with safe highlighted snippets; no query string makes it fail; readers never find
what is not theirs to see (drafts, pending posts, deleted posts, edits awaiting approval)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from conftest import Site
from fastapi.testclient import TestClient
from sqlalchemy import text
from test_api_entries import post
from test_approval import approve, edit, vetted_story
from test_migrations import alembic_config
from test_xss import check_page

from dateline.accounts import users as accounts
from dateline.db import Database
from dateline.search import index, query, terms
from dateline.stories import entries
from dateline.stories import story as stories
from dateline.vocabulary import Audience

ROOT = Path(__file__).resolve().parent.parent


def search(client: TestClient, q: str, who: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    answer = client.get("/api/v1/search", params={"q": q, **params}, headers=who or {})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def hit_ids(found: dict[str, Any]) -> list[int | str]:
    """Each hit as an entry id, or the story's slug for a story."""
    return [hit["entry_id"] if hit["kind"] == "update" else hit["story"] for hit in found["hits"]]


def backdated(site: Site, slug: str, body: str, when: datetime, **fields: str) -> int:
    with site.db.write() as conn:
        story = stories.get_story(conn, slug, Audience.newsroom)
        author = accounts.get_user(conn, "eve")
        assert story is not None and author is not None
        kind = "quote" if "speaker" in fields else "text"
        return int(entries.create_entry(conn, story, author, kind=kind, body=body, fields=fields,
                                        published_at=when)["id"])


# --- found, ranked, highlighted -----------------------------------------------------------------


def test_updates_are_found_by_the_words_in_them(client: TestClient, site: Site, live_story: str) -> None:
    text_entry = post(client, site, live_story, body="The river burst its banks near the old mill.").json()
    quote = post(client, site, live_story, kind="quote", body="We will rebuild.", speaker="Mira Solvane",
                 role="mayor").json()
    photo = post(client, site, live_story, kind="image", image_url="/static/demo/crowd_lights.jpg",
                 alt="Sandbags along a wall", caption="Volunteers at dawn", credit="Jon Askew").json()
    post(client, site, live_story, body="Unrelated: the market opens at nine.")

    found = search(client, "river banks")
    assert hit_ids(found) == [text_entry["id"]]
    hit = found["hits"][0]
    assert hit["kind"] == "update" and hit["story"] == live_story and hit["entry_kind"] == "text"
    assert hit["headline"] == "Second night of protests" and hit["entry_status"] == "published"
    assert hit["url"] == f"/stories/{live_story}/entries/{text_entry['id']}"
    assert hit["published_at"] == text_entry["published_at"]
    assert found["words"] == ["river", "banks"] and found["total"] == 1 and found["next_offset"] is None
    # A quote by its speaker and role, a photo by its caption, credit and alt text: any case.
    assert hit_ids(search(client, "SOLVANE")) == [quote["id"]]
    assert hit_ids(search(client, "mayor rebuild")) == [quote["id"]]
    assert hit_ids(search(client, "volunteers")) == [photo["id"]]
    assert hit_ids(search(client, "askew")) == [photo["id"]]
    assert hit_ids(search(client, "sandbags")) == [photo["id"]]
    # Every word must be there; no word is a prefix of another.
    assert hit_ids(search(client, "river market")) == []
    assert hit_ids(search(client, "riv")) == []
    # The story itself, by its headline and dateline, links to its page.
    story_hit = search(client, "protests dravonne")["hits"]
    assert [(h["kind"], h["url"], h["entry_id"]) for h in story_hit] == [("story", f"/stories/{live_story}", None)]


def test_accents_and_scripts(client: TestClient, site: Site, live_story: str) -> None:
    arabic = post(client, site, live_story, body="ارتفع منسوب النهر في المدينة").json()
    hindi = post(client, site, live_story, body="हिन्दी समाचार: नदी का जलस्तर बढ़ा").json()
    cafe = post(client, site, live_story, body="Le Café de la Gare est fermé.").json()
    assert hit_ids(search(client, "النهر")) == [arabic["id"]]
    assert hit_ids(search(client, "समाचार")) == [hindi["id"]]
    assert hit_ids(search(client, "café")) == [cafe["id"]]
    assert hit_ids(search(client, "CAFÉ gare")) == [cafe["id"]]
    if site.url.startswith("sqlite"):  # accents folded by SQLite's tokenizer ('simple' keeps them)
        assert hit_ids(search(client, "cafe")) == [cafe["id"]]


def test_the_best_match_comes_first_or_the_newest(client: TestClient, site: Site, live_story: str) -> None:
    once = backdated(site, live_story, "A curfew was mentioned once among many other words about the long night "
                     "and the weather and the roads and the crowds.", datetime(2026, 3, 2, tzinfo=timezone.utc))
    thrice = backdated(site, live_story, "Curfew, curfew: the curfew holds.", datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert hit_ids(search(client, "curfew")) == [thrice, once]
    assert hit_ids(search(client, "curfew", sort="newest")) == [once, thrice]
    # A word of the headline puts the story first.
    story_first = search(client, "night protests")
    assert story_first["hits"][0]["kind"] == "story"


def test_snippets_mark_the_words_and_escape_everything_else(client: TestClient, site: Site, live_story: str) -> None:
    long_text = " ".join(f"filler{i}" for i in range(80)) + " the barricade fell " + " ".join(
        f"tail{i}" for i in range(80))
    far = post(client, site, live_story, body=long_text).json()
    tricky = post(client, site, live_story, body="Use `<script>alert(1)</script>` & <img src=x onerror=alert(2)> "
                  "near the barricade", kind="quote", speaker="<b>Ana</b> \"Barricade\" O'Neil").json()
    found = {h["entry_id"]: h["snippet"] for h in search(client, "barricade")["hits"]}
    assert set(found) == {far["id"], tricky["id"]}
    # Cut around the match, with an ellipsis at each cut end.
    assert found[far["id"]].startswith("…") and found[far["id"]].endswith("…")
    assert "the <mark>barricade</mark> fell" in found[far["id"]]
    assert "filler0 " not in found[far["id"]] and len(found[far["id"]]) < 400
    snippet = found[tricky["id"]]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in snippet and "&amp;" in snippet
    assert snippet.count("<mark>") == 2  # the body's word and the speaker's, every case
    assert "<mark>Barricade</mark>" in snippet and "&lt;b&gt;Ana&lt;/b&gt;" in snippet
    # Safe to insert as HTML: no markup at all but the marks.
    assert "<" not in snippet.replace("<mark>", "").replace("</mark>", "")
    assert ">" not in snippet.replace("<mark>", "").replace("</mark>", "")
    assert '"' not in snippet and "'" not in snippet


def test_markdown_is_shown_as_readers_read_it(client: TestClient, site: Site, live_story: str) -> None:
    post(client, site, live_story, body="Police **closed** the [bridge](https://example.org/map) at dusk.")
    snippet = search(client, "bridge")["hits"][0]["snippet"]
    assert snippet == "Police closed the <mark>bridge</mark> at dusk."


# --- filters and paging -------------------------------------------------------------------------


def test_filters_by_story_and_dates(client: TestClient, site: Site, live_story: str) -> None:
    other = client.post("/api/v1/stories", json={"headline": "Election count", "status": "live"},
                        headers=site.auth("eve")).json()["slug"]
    march_1 = backdated(site, live_story, "Ballots in the square", datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc))
    march_2 = backdated(site, live_story, "Ballots at noon", datetime(2026, 3, 2, 12, tzinfo=timezone.utc))
    elsewhere = backdated(site, other, "Ballots counted", datetime(2026, 3, 2, 9, tzinfo=timezone.utc))

    assert set(hit_ids(search(client, "ballots"))) == {march_1, march_2, elsewhere}
    assert set(hit_ids(search(client, "ballots", story=live_story))) == {march_1, march_2}
    assert hit_ids(search(client, "ballots", story=other)) == [elsewhere]
    # A date is the whole day (UTC): `until` includes it, `since` starts at its midnight.
    assert hit_ids(search(client, "ballots", until="2026-03-01")) == [march_1]
    assert set(hit_ids(search(client, "ballots", since="2026-03-02"))) == {march_2, elsewhere}
    assert hit_ids(search(client, "ballots", since="2026-03-02", until="2026-03-02", story=live_story)) == [march_2]
    # A date and time, at any offset; one without an offset is UTC.
    assert hit_ids(search(client, "ballots", since="2026-03-02T10:30:00+01:00")) == [march_2]
    assert hit_ids(search(client, "ballots", until="2026-03-01T23:00:00")) == []
    assert hit_ids(search(client, "ballots", since="2026-03-03", until="2026-03-01")) == []
    # The ends of the calendar are not an error.
    ends = search(client, "ballots", since="0001-01-01T00:00:00+23:00", until="9999-12-31T23:59:59-23:00")
    assert len(ends["hits"]) == 3

    for params in [{"since": "yesterday"}, {"until": "2026-02-30"}, {"since": "2026-13-01T00:00:00Z"},
                   {"story": "Not A Slug"}, {"limit": "0"}, {"limit": str(terms.MAX_LIMIT + 1)},
                   {"offset": str(terms.MAX_OFFSET + 1)}, {"sort": "random"}]:
        answer = client.get("/api/v1/search", params={"q": "ballots", **params})
        assert answer.status_code == 422, (params, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    missing = client.get("/api/v1/search", params={"q": "ballots", "story": "no-such-story"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_pages_of_hits(client: TestClient, site: Site, live_story: str) -> None:
    ids = [backdated(site, live_story, f"Aftershock number {i}", datetime(2026, 3, 1, i, tzinfo=timezone.utc))
           for i in range(5)]
    first = search(client, "aftershock", sort="newest", limit=2)
    assert hit_ids(first) == ids[:2:-1][:2] == [ids[4], ids[3]]
    assert first["total"] == 5 and first["total_exact"] is True and first["next_offset"] == 2
    second = search(client, "aftershock", sort="newest", limit=2, offset=first["next_offset"])
    last = search(client, "aftershock", sort="newest", limit=2, offset=second["next_offset"])
    assert hit_ids(second) == [ids[2], ids[1]] and hit_ids(last) == [ids[0]] and last["next_offset"] is None


# --- no query makes it fail ---------------------------------------------------------------------

HOSTILE = [
    '"', '""', '"river', 'river"', "'", "' OR 1=1 --", "river' OR '1'='1", "*", "river*", "riv*", "-river",
    "river -bridge", "river NOT bridge", "river AND bridge", "river OR bridge", "NEAR(river bridge)", "NEAR(",
    "NEAR/3", "title:river", "river:", ":", "^river", "(river", "river)", "{river}", "river + bridge",
    "\x00", "river\x00bridge", "\x00\x00\x00", "🌊", "🌊 river 🔥", "\u202eriver\u202c", "נהר", "النهر",
    "\u200b", "\ufeffriver", "a\u0301", "\u0301", "\\", "river\\", "%", "_", "river%", "; DROP TABLE entries; --",
    "SELECT * FROM entries", "<script>alert(1)</script>", "&amp;", "!!!", "...", "-", "?", "   ", "\t\n",
    "a " * 99, "river " * 40, "x" * 200, "é" * 200, "🌊" * 200, "\x7f\x1b[31m",
    "river & bridge | !x <-> y:*", "plainto_tsquery('x')", "$1", ":x", "@@",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_no_query_string_makes_search_fail(client: TestClient, site: Site, live_story: str, q: str) -> None:
    post(client, site, live_story, body="The river rose over the bridge.")
    answer = client.get("/api/v1/search", params={"q": q})
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        assert answer.headers["content-type"] == "application/problem+json"
    else:
        assert all(isinstance(hit["snippet"], str) for hit in answer.json()["hits"])
    page = client.get("/search", params={"q": q})
    assert page.status_code in (200, 422) and page.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in page.text


def test_query_syntax_is_plain_text(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="The river rose near the bridge.").json()["id"]
    for q in ['"river', 'river"', "river*", "-river", "river:", "(river", "NEAR(river bridge)", "river\x00",
              "🌊 river", "river -bridge", "\ufeffriver"]:
        assert hit_ids(search(client, q)) == [entry], q
    # Operators are words like any other: "AND", "NOT" must be in the text.
    assert hit_ids(search(client, "river AND bridge")) == []
    assert hit_ids(search(client, "riv*")) == []


def test_limits_of_a_query(client: TestClient, site: Site, live_story: str) -> None:
    for q in ["x" * (terms.MAX_QUERY_CHARS + 1), "river " * 2_000]:
        answer = client.get("/api/v1/search", params={"q": q})
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        assert client.get("/search", params={"q": q}).status_code == 422
    assert client.get("/api/v1/search").status_code == 422  # q is required
    assert client.get("/api/v1/search", params={"q": ""}).status_code == 422
    # Nothing to search for: an empty answer, the words it searched for say why.
    nothing = search(client, "?! …")
    assert nothing["words"] == [] and nothing["hits"] == [] and nothing["total"] == 0
    # Past MAX_WORDS, words are left out, and the answer says which were used.
    many = " ".join(f"w{i}" for i in range(terms.MAX_WORDS + 5))
    assert search(client, many)["words"] == [f"w{i}" for i in range(terms.MAX_WORDS)]
    assert search(client, "River river RIVER")["words"] == ["River"]


# --- who finds what -----------------------------------------------------------------------------


def test_readers_find_only_what_is_published(client: TestClient, site: Site, live_story: str) -> None:
    draft = client.post("/api/v1/stories", json={"headline": "Embargoed zeppelin report"},
                        headers=site.auth("eve")).json()["slug"]
    in_draft = post(client, site, draft, who="eve", body="The zeppelin landed.").json()["id"]
    vetted = vetted_story(client, site)
    pending = post(client, site, vetted, who="rita", body="Unconfirmed zeppelin sighting").json()["id"]
    deleted = post(client, site, live_story, body="A zeppelin, wrongly reported").json()["id"]
    removed = client.delete(f"/api/v1/stories/{live_story}/entries/{deleted}", headers=site.auth("eve"))
    assert removed.status_code == 204
    public = post(client, site, live_story, body="The zeppelin is confirmed.").json()["id"]

    assert hit_ids(search(client, "zeppelin")) == [public]
    assert hit_ids(search(client, "embargoed")) == []
    draft_only = client.get("/api/v1/search", params={"q": "zeppelin", "story": draft})
    assert draft_only.status_code == 404  # a draft does not exist for readers
    # Newsroom members find drafts and pending posts (marked so); nobody finds a deleted one.
    newsroom = search(client, "zeppelin", site.auth("rita"))
    assert set(hit_ids(newsroom)) == {in_draft, pending, public, draft}
    statuses = {h["entry_id"]: (h["story_status"], h["entry_status"]) for h in newsroom["hits"]}
    assert statuses[in_draft] == ("draft", "published") and statuses[pending] == ("live", "pending")
    assert set(hit_ids(search(client, "zeppelin", site.auth("eve"), story=draft))) == {draft, in_draft}
    # Once approved, readers find the pending post too.
    approve(client, site, vetted, pending)
    assert set(hit_ids(search(client, "zeppelin"))) == {public, pending}


def test_an_edit_waiting_for_approval_is_not_found_by_readers(client: TestClient, site: Site) -> None:
    slug = vetted_story(client, site)
    held = post(client, site, slug, who="rita", body="Crowd gathers at the granary").json()
    published = approve(client, site, slug, held["id"]).json()
    assert edit(client, site, slug, published, "rita", body="Crowd storms the observatory").status_code == 200
    assert hit_ids(search(client, "observatory")) == []
    assert hit_ids(search(client, "granary")) == [held["id"]]
    snippet = search(client, "crowd")["hits"][0]["snippet"]
    assert "observatory" not in snippet and "storms" not in snippet
    # Approved, the new words are found and the old ones are not.
    approve(client, site, slug, held["id"])
    assert hit_ids(search(client, "observatory")) == [held["id"]]
    assert hit_ids(search(client, "granary")) == []


def test_an_edited_entry_is_found_by_its_new_words_and_a_deleted_one_not_at_all(
    client: TestClient, site: Site, live_story: str
) -> None:
    entry = post(client, site, live_story, who="eve", body="Firefighters reach the warehouse").json()
    changed = edit(client, site, live_story, entry, "eve", body="Firefighters reach the depot")
    assert changed.status_code == 200, changed.text
    assert hit_ids(search(client, "depot")) == [entry["id"]]
    assert hit_ids(search(client, "warehouse")) == []
    quote = post(client, site, live_story, who="eve", kind="quote", body="Stay away.", speaker="Chief Ortega").json()
    edit(client, site, live_story, quote, "eve", speaker="Chief Alvarez")
    assert hit_ids(search(client, "alvarez")) == [quote["id"]] and hit_ids(search(client, "ortega")) == []
    removed = client.delete(f"/api/v1/stories/{live_story}/entries/{entry['id']}", headers=site.auth("eve"))
    assert removed.status_code == 204
    assert hit_ids(search(client, "depot")) == []
    assert hit_ids(search(client, "depot", site.auth("eve"))) == []
    # A story's new headline is found, its old one is not.
    client.patch(f"/api/v1/stories/{live_story}", json={"headline": "Third night of unrest"}, headers=site.auth("eve"))
    assert hit_ids(search(client, "unrest")) == [live_story]
    assert hit_ids(search(client, "protests")) == []


def test_newsroom_answers_are_never_cached_publicly(client: TestClient, site: Site, live_story: str) -> None:
    readers = client.get("/api/v1/search", params={"q": "protests"})
    assert readers.headers["cache-control"].startswith("public")
    assert "Authorization" in readers.headers["vary"] and "Cookie" in readers.headers["vary"]
    newsroom = client.get("/api/v1/search", params={"q": "protests"}, headers=site.auth("eve"))
    assert newsroom.headers["cache-control"] == "private, no-store"
    assert client.get("/api/v1/search", params={"q": "x"}, headers={"Authorization": "Bearer nope"}).status_code == 401


# --- the pages ----------------------------------------------------------------------------------


def test_the_search_page_shows_results(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="Water reached the <em>town hall</em> steps.").json()["id"]
    draft = client.post("/api/v1/stories", json={"headline": "Hall of secrets"},
                        headers=site.auth("eve")).json()["slug"]
    post(client, site, draft, who="eve", body="Secret hall plans")
    page = client.get("/search", params={"q": "hall"}, headers=site.auth("eve"))  # readers' results, whoever asks
    assert page.status_code == 200 and page.headers["cache-control"].startswith("public")
    html = page.text
    assert 'role="search"' in html and '<label for="search-q"' in html and 'value="hall"' in html
    assert "1 result for “hall”" in html
    assert f'href="/stories/{live_story}/entries/{entry}"' in html
    assert "town <mark>hall</mark> steps" in html
    assert "secrets" not in html and draft not in html
    assert client.get("/search").status_code == 200  # the form alone
    none = client.get("/search", params={"q": "nothingmatches"})
    assert none.status_code == 200 and "No results for “nothingmatches”" in none.text
    bad_date = client.get("/search", params={"q": "hall", "since": "soon"})
    assert bad_date.status_code == 422 and 'role="alert"' in bad_date.text
    assert client.get("/search", params={"q": "hall", "story": "no-such-story"}).status_code == 404
    within = client.get("/search", params={"q": "hall", "story": live_story})
    assert within.status_code == 200 and "Search in “Second night of protests”" in within.text


def test_the_search_page_is_inert_whatever_the_text_and_query(client: TestClient, site: Site, live_story: str) -> None:
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)> javascript:alert(3)'
    post(client, site, live_story, kind="quote", body=f"Lantern {payload}", speaker=f"Lantern {payload}",
         role=payload, correction=payload)
    client.patch(f"/api/v1/stories/{live_story}", json={"summary": f"Lantern {payload}"}, headers=site.auth("eve"))
    for q in [f"lantern {payload}", payload]:
        check_page(client.get("/search", params={"q": q, "since": payload[:30]}).text, f"search page for {q!r}")
        check_page(client.get("/search", params={"q": q}).text, f"search page for {q!r}")
    found = client.get("/search", params={"q": "lantern"}).text
    check_page(found, "search page for 'lantern'")
    # The story's summary, and the quote by its text and its speaker.
    assert found.count('class="search-hit ') == 2 and found.count("<mark>Lantern</mark>") == 3


def test_the_search_page_pages(client: TestClient, site: Site, live_story: str) -> None:
    for i in range(23):
        backdated(site, live_story, f"Tremor report {i}", datetime(2026, 3, 1, 0, i, tzinfo=timezone.utc))
    first = client.get("/search", params={"q": "tremor", "sort": "newest"}).text
    assert "23 results" in first and first.count('class="search-hit ') == 20
    more = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert more is not None
    second = client.get(more.group(1).replace("&amp;", "&")).text
    assert second.count('class="search-hit ') == 3 and 'start="21"' in second and 'rel="prev"' in second


def test_the_home_page_has_a_search_box(client: TestClient) -> None:
    html = client.get("/").text
    form = re.search(r'<form class="search-form[^"]*" id="site-search" role="search" action="/search" method="get">'
                     r"(.*?)</form>", html, re.S)
    assert form is not None
    assert 'name="q"' in form.group(1) and "<label" in form.group(1)
    assert f'maxlength="{terms.MAX_QUERY_CHARS}"' in form.group(1)


# --- the index itself ---------------------------------------------------------------------------


def test_the_index_survives_migrations_that_rebuild_its_tables(empty_database: str) -> None:
    """Alembic's batch mode rebuilds a SQLite table by copying it and dropping the old one,
    which takes the table's triggers along; after migrating, they are back and the index is
    whole. And the rows that refer to a rebuilt table are still there."""
    database = Database(empty_database)
    try:
        with database.migrating() as conn:
            command.upgrade(alembic_config(conn), "0009")
            conn.execute(text(
                "INSERT INTO users (id, username, display_name, password_hash, role, disabled, created_at) "
                "VALUES (1, 'eve', 'Eve', 'x', 'editor', false, '2026-01-01 00:00:00')"))
            conn.execute(text(
                "INSERT INTO stories (id, slug, headline, dateline, summary, status, created_at, updated_at, "
                "last_event_id, requires_approval) VALUES (1, 'floods', 'Floods', '', '', 'live', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, false)"))
            conn.execute(text(
                "INSERT INTO entries (id, story_id, kind, body, html, fields, author_id, published_at, updated_at, "
                "revision, pinned, key_event, status) VALUES (1, 1, 'text', 'The river rises', '', '{}', 1, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 1, false, false, 'published')"))
        database.migrate()
        with database.write() as conn:
            assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 1
            if conn.dialect.name == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
                triggers = {row[0] for row in rows}
                assert set(index.TRIGGERS) <= triggers
            conn.execute(text("UPDATE stories SET headline = 'Landslide' WHERE id = 1"))
        with database.read() as conn:
            found = query.run(conn, query.Search(["landslide"]), Audience.readers)
            assert [(h.kind, h.story) for h in found.hits] == [("story", "floods")]
            assert [h.entry_id for h in query.run(conn, query.Search(["river"]), Audience.readers).hits] == [1]
    finally:
        database.dispose()


def test_the_documented_limits_are_the_real_ones() -> None:
    doc = (ROOT / "docs" / "search.md").read_text()
    limits = dict(re.findall(r"^\| (.+?) \| ([\d,]+)[^|]* \|$", doc, re.M))
    numbers = {what: int(value.replace(",", "")) for what, value in limits.items()}
    assert numbers == {
        "characters in `q`": terms.MAX_QUERY_CHARS, "words used": terms.MAX_WORDS,
        "hits a page (`limit`)": terms.MAX_LIMIT, "default `limit`": terms.DEFAULT_LIMIT,
        "deepest `offset`": terms.MAX_OFFSET, "hits counted (`total`)": terms.MAX_COUNTED,
    }
