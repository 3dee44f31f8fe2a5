"""A story's "What we know": set by an editor, its own event in the log, on the page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from conftest import Site


def test_facts_are_set_logged_and_shown(client: TestClient, site: Site) -> None:
    editor_headers = site.auth("eve")
    slug = client.post("/api/v1/stories", headers=editor_headers,
                       json={"headline": "Count disputed", "status": "live"}).json()["slug"]
    facts = ["Polls closed at 20:00 on Sunday.", "The commission has not published a final count."]
    response = client.patch(f"/api/v1/stories/{slug}", headers=editor_headers, json={"facts": facts})
    assert response.status_code == 200, response.text
    story: dict[str, Any] = response.json()
    assert story["facts"] == facts and story["facts_updated_at"]
    events = client.get(f"/api/v1/stories/{slug}/events?after=0").json()["events"]
    assert [e["type"] for e in events][-1] == "story.facts"
    assert events[-1]["data"]["facts"] == facts
    page = client.get(f"/stories/{slug}").text
    assert "What we know" in page and "The commission has not published a final count." in page
    # A blank line or too many lines is refused, and nothing changes.
    bad = client.patch(f"/api/v1/stories/{slug}", headers=editor_headers, json={"facts": ["  "]})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    too_many = client.patch(f"/api/v1/stories/{slug}", headers=editor_headers, json={"facts": ["x"] * 13})
    assert too_many.status_code == 422
    assert client.get(f"/api/v1/stories/{slug}").json()["facts"] == facts
