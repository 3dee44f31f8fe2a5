"""What waits for an editor stays out of readers' sight until approved, posts and edits alike;
every change to an entry changes its validator; updates sit in the order they were published."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from conftest import Site
from test_api_entries import post


def vetted_story(client: TestClient, site: Site) -> str:
    answer = client.post("/api/v1/stories", json={"headline": "Vetted", "status": "live", "requires_approval": True},
                         headers=site.auth("eve"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["slug"])


def edit(client: TestClient, site: Site, slug: str, entry: dict[str, Any], who: str, **changes: Any) -> Any:
    return client.patch(f"/api/v1/stories/{slug}/entries/{entry['id']}", json=changes,
                        headers={**site.auth(who), "If-Match": entry["etag"]})


def approve(client: TestClient, site: Site, slug: str, entry_id: int) -> Any:
    return client.post(f"/api/v1/stories/{slug}/entries/{entry_id}/approve", headers=site.auth("eve"))


def public_body(client: TestClient, slug: str, entry_id: int) -> str:
    return str(client.get(f"/api/v1/stories/{slug}/entries/{entry_id}").json()["body"])


def test_a_reporters_edit_waits_for_approval_as_the_post_did(client: TestClient, site: Site) -> None:
    slug = vetted_story(client, site)
    held = post(client, site, slug, who="rita", body="Crowd of about 2,000 at the square").json()
    published = approve(client, site, slug, held["id"]).json()
    after_approval = client.get(f"/api/v1/stories/{slug}/events").json()["last_event_id"]

    edited = edit(client, site, slug, published, "rita", body="Crowd of about 20,000 at the square")
    assert edited.status_code == 200, edited.text
    assert edited.json()["edit_pending"] is True and "20,000" in edited.json()["body"]
    # Readers keep the approved copy: the API, the page, the entry's page and the catch-up.
    assert public_body(client, slug, held["id"]) == "Crowd of about 2,000 at the square"
    assert "20,000" not in client.get(f"/stories/{slug}").text
    assert "20,000" not in client.get(f"/stories/{slug}/entries/{held['id']}").text
    assert client.get(f"/api/v1/stories/{slug}/events", params={"after": after_approval}).json()["events"] == []
    # The newsroom sees the edit in its place, marked, and in its own event.
    newsroom = client.get(f"/api/v1/stories/{slug}/entries/{held['id']}", headers=site.auth("eve")).json()
    assert newsroom["edit_pending"] is True and "20,000" in newsroom["body"]
    events = client.get(f"/api/v1/stories/{slug}/events", params={"after": after_approval},
                        headers=site.auth("eve")).json()["events"]
    assert [e["type"] for e in events] == ["newsroom.submitted"] and events[0]["data"]["edit_pending"] is True

    # A second edit builds on the first, still waiting.
    newsroom = edit(client, site, slug, newsroom, "rita", body="Crowd of about 20,000 at Lantern Square").json()
    assert public_body(client, slug, held["id"]) == "Crowd of about 2,000 at the square"
    # A reporter cannot mark it a key event meanwhile: that would show at once.
    assert edit(client, site, slug, newsroom, "rita", key_event=True).status_code == 403

    approved = approve(client, site, slug, held["id"])
    assert approved.status_code == 200 and "edit_pending" not in approved.json()
    assert public_body(client, slug, held["id"]) == "Crowd of about 20,000 at Lantern Square"
    public = client.get(f"/api/v1/stories/{slug}/events", params={"after": after_approval}).json()["events"]
    assert [(e["type"], e["data"]["body"]) for e in public] == [("entry.updated", "Crowd of about 20,000 at Lantern Square")]
    assert "edit_pending" not in public[0]["data"]
    # Nothing waits any more.
    assert approve(client, site, slug, held["id"]).status_code == 409


def test_an_editors_changes_while_an_edit_waits(client: TestClient, site: Site) -> None:
    slug = vetted_story(client, site)
    entry = approve(client, site, slug, post(client, site, slug, who="rita", body="Two arrests").json()["id"]).json()
    waiting = edit(client, site, slug, entry, "rita", body="Twelve arrests").json()
    # Pinning it leaves the edit waiting and the public copy as it was.
    pinned = edit(client, site, slug, waiting, "eve", pinned=True)
    assert pinned.status_code == 200 and pinned.json()["edit_pending"] is True
    public = client.get(f"/api/v1/stories/{slug}/entries/{entry['id']}").json()
    assert public["pinned"] is True and public["body"] == "Two arrests"
    # Editing the text edits what waits, and publishes it.
    fixed = edit(client, site, slug, pinned.json(), "eve", body="Twelve arrests, police say").json()
    assert "edit_pending" not in fixed
    assert public_body(client, slug, entry["id"]) == "Twelve arrests, police say"


def test_on_a_story_without_approval_a_reporters_edit_goes_out_at_once(
    client: TestClient, site: Site, live_story: str
) -> None:
    entry = post(client, site, live_story, who="rita", body="First count").json()
    assert edit(client, site, live_story, entry, "rita", body="Second count").status_code == 200
    assert public_body(client, live_story, entry["id"]) == "Second count"


def test_every_change_to_an_entry_changes_its_etag(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, who="eve", body="Polls close at eight").json()
    seen = {entry["etag"]}
    for change in ({"pinned": True}, {"key_event": True}, {"pinned": False}, {"body": "Polls close at nine"}):
        stale = entry
        answer = edit(client, site, live_story, entry, "eve", **change)
        assert answer.status_code == 200, answer.text
        entry = answer.json()
        assert answer.headers["ETag"] == entry["etag"] == client.get(
            f"/api/v1/stories/{live_story}/entries/{entry['id']}").headers["ETag"]
        assert entry["etag"] not in seen, change
        seen.add(entry["etag"])
        # The copy edited before the change is stale now.
        assert edit(client, site, live_story, stale, "eve", body="Lost update").status_code == 412


def test_an_approved_post_takes_its_place_when_published(client: TestClient, site: Site) -> None:
    slug = vetted_story(client, site)
    late = post(client, site, slug, who="rita", body="Held: written first").json()
    first = post(client, site, slug, who="eve", body="Straight out one").json()
    second = post(client, site, slug, who="eve", body="Straight out two").json()
    approve(client, site, slug, late["id"])
    newest_first = [late["id"], second["id"], first["id"]]

    listed = client.get(f"/api/v1/stories/{slug}/entries").json()["entries"]
    assert [e["id"] for e in listed] == newest_first
    # The cursor pages in the same order: each entry once, none skipped.
    walked, cursor = [], None
    while True:
        page = client.get(f"/api/v1/stories/{slug}/entries", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        walked += [e["id"] for e in page["entries"]]
        if not (cursor := page["next_cursor"]):
            break
    assert walked == newest_first
    # The reader's page, newest first and oldest first, page by page.
    page = client.get(f"/stories/{slug}").text
    assert page.index("Held: written first") < page.index("Straight out two") < page.index("Straight out one")
    oldest = client.get(f"/stories/{slug}", params={"order": "oldest"}).text
    assert oldest.index("Straight out one") < oldest.index("Straight out two") < oldest.index("Held: written first")
    after_first = client.get(f"/stories/{slug}", params={"order": "oldest", "after": first["id"]}).text
    assert "Straight out one" not in after_first and "Held: written first" in after_first
    assert client.get(f"/stories/{slug}", params={"before": 999_999}).status_code == 404


def test_an_edit_with_a_field_of_another_kind_conflicts_with_the_entry(
    client: TestClient, site: Site, live_story: str
) -> None:
    """The edit's schema cannot know the entry's kind: a field right for another kind is a 409."""
    entry = post(client, site, live_story, who="eve", body="Text only").json()
    answer = edit(client, site, live_story, entry, "eve", url="https://example.org/v", role="Mayor")
    assert answer.status_code == 409, answer.text
    assert "role, url does not apply to this text entry" in answer.json()["detail"]
    assert public_body(client, live_story, entry["id"]) == "Text only"
