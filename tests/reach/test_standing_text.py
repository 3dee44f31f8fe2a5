"""What a story holds at the top of its page, "What we know" and its live figures, read as
text where readers of text find it: the story's feeds (one item each, changed in place) and
the page's JSON-LD."""

from __future__ import annotations

import json
import re

import feedparser
from fastapi.testclient import TestClient

from conftest import Site

ORIGIN = "http://testserver"
FACTS = ["Polls closed at 20:00 on Sunday.", "The commission has not published a final count."]
def json_ld(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert found, "the page carries its JSON-LD"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


RESULTS = {
    "kind": "results", "title": "Presidential election: official count", "unit": "votes",
    "counted": "Polling stations reporting: 62%", "source": "Central Election Commission",
    "rows": [{"label": "Mira Solvane", "count": 1_204_332}, {"label": "Tomas Ardent", "count": 1_020_118},
             {"label": "Others", "count": 75_550}],
}
CROWD = {"kind": "comparison", "title": "How many marched", "unit": "people", "rows": [
    {"label": "Police", "count": 12_000, "source": "City police"},
    {"label": "Organisers", "count": 40_000, "source": "Civic Forum"}]}


def _story_with_figures(client: TestClient, site: Site, slug: str) -> list[dict[str, object]]:
    assert client.patch(f"/api/v1/stories/{slug}", json={"facts": FACTS}, headers=site.auth("eve")).status_code == 200
    made = [client.post(f"/api/v1/stories/{slug}/blocks", json=body, headers=site.auth("eve")) for body in (RESULTS, CROWD)]
    assert [m.status_code for m in made] == [201, 201], made[0].text
    update = client.post(f"/api/v1/stories/{slug}/entries", json={"body": "Counting resumes."}, headers=site.auth("eve"))
    assert update.status_code == 201
    return [m.json() for m in made]


def test_the_feeds_carry_what_we_know_and_the_latest_figures(client: TestClient, site: Site, live_story: str) -> None:
    results, crowd = _story_with_figures(client, site, live_story)
    page = f"{ORIGIN}/stories/{live_story}"
    atom = feedparser.parse(client.get(f"/stories/{live_story}/feed.atom").content)
    assert not atom.bozo, atom.bozo_exception
    ids = [entry.id for entry in atom.entries]
    assert ids[:3] == [f"{page}#what-we-know", f"{page}#block-{results['id']}", f"{page}#block-{crowd['id']}"]
    assert ids[3].startswith(f"{page}/entries/"), "the updates follow"
    facts, table = atom.entries[:2]
    assert facts.title == "What we know" and all(fact in facts.content[0].value for fact in FACTS)
    assert [t.term for t in facts.tags] == ["what we know"]
    assert table.title == "Presidential election: official count"
    assert "<table" in table.content[0].value and "52.4 %" in table.content[0].value
    assert [t.term for t in table.tags] == ["figures"]
    # The JSON Feed gives the same figures as plain text too, with their sources.
    items = client.get(f"/stories/{live_story}/feed.json").json()["items"]
    by_id = {item["id"]: item for item in items}
    text = by_id[f"{page}#block-{results['id']}"]["content_text"]
    assert text.startswith("Presidential election: official count: Mira Solvane 52.4 % (1,204,332); Tomas Ardent 44.4 %")
    assert "Polling stations reporting: 62%." in text and "Source: Central Election Commission, " in text
    assert by_id[f"{page}#block-{crowd['id']}"]["content_text"].startswith(
        "How many marched: Police 12,000 (City police); Organisers 40,000 (Civic Forum).")
    assert by_id[f"{page}#what-we-know"]["content_text"] == "\n".join(FACTS)


def test_new_figures_change_the_same_feed_item(client: TestClient, site: Site, live_story: str) -> None:
    results, _ = _story_with_figures(client, site, live_story)
    first = client.get(f"/stories/{live_story}/feed.atom")
    rows = [{"label": "Mira Solvane", "count": 1_604_332}, {"label": "Tomas Ardent", "count": 1_120_118},
            {"label": "Others", "count": 80_550}]
    changed = client.patch(f"/api/v1/stories/{live_story}/blocks/{results['id']}", json={"rows": rows},
                           headers=site.auth("eve"))
    assert changed.status_code == 200
    # A feed reader polling with the old validator gets the new version, not a 304.
    again = client.get(f"/stories/{live_story}/feed.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    block_id = f"{ORIGIN}/stories/{live_story}#block-{results['id']}"
    before = next(e for e in feedparser.parse(first.content).entries if e.id == block_id)
    after = next(e for e in feedparser.parse(again.content).entries if e.id == block_id)
    assert "57.2 %" in after.content[0].value and "57.2 %" not in before.content[0].value
    assert after.updated_parsed >= before.updated_parsed and after.published == before.published
    # A deleted block leaves the feed.
    client.delete(f"/api/v1/stories/{live_story}/blocks/{results['id']}", headers=site.auth("eve"))
    gone = feedparser.parse(client.get(f"/stories/{live_story}/feed.atom").content)
    assert block_id not in [e.id for e in gone.entries]


def test_the_json_ld_carries_the_facts_and_the_figures_as_text(client: TestClient, site: Site, live_story: str) -> None:
    results, crowd = _story_with_figures(client, site, live_story)
    data = json_ld(client.get(f"/stories/{live_story}").text)
    assert data["abstract"] == "\n".join(FACTS)
    parts = data["hasPart"]
    assert [part["@id"] for part in parts] == [
        f"{ORIGIN}/stories/{live_story}#block-{results['id']}", f"{ORIGIN}/stories/{live_story}#block-{crowd['id']}"]
    assert parts[0]["@type"] == "Table" and parts[0]["name"] == "Presidential election: official count"
    assert "Mira Solvane 52.4 % (1,204,332)" in parts[0]["text"] and parts[0]["dateModified"] == results["updated_at"]


def test_figures_text_in_json_ld_cannot_end_the_script(client: TestClient, site: Site, live_story: str) -> None:
    hostile = {**RESULTS, "title": "</script><script>alert(1)</script>",
               "rows": [{"label": "<!-- x", "count": 5}, {"label": "B & C", "count": 5}]}
    assert client.post(f"/api/v1/stories/{live_story}/blocks", json=hostile, headers=site.auth("eve")).status_code == 201
    page = client.get(f"/stories/{live_story}").text
    assert "<script>alert(1)" not in page
    data = json_ld(page)
    assert data["hasPart"][0]["name"] == hostile["title"] and "<!-- x 50.0 % (5)" in data["hasPart"][0]["text"]
