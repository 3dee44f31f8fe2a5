"""Entries through the JSON API: round trips, roles, idempotent retries, stale edits."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import ServerProcess, Site, past_this_second, table_counts


def post(client: TestClient, site: Site, slug: str, who: str = "rita", **fields: object) -> httpx.Response:
    fields.setdefault("body", "Crowds gather in Lantern Square.")
    return client.post(f"/api/v1/stories/{slug}/entries", json=fields, headers=site.auth(who))


def test_a_posted_entry_reads_back_with_rendered_html(client: TestClient, site: Site, live_story: str) -> None:
    response = post(client, site, live_story, body="Police **block** the [square](https://example.org/map).")
    assert response.status_code == 201
    entry = response.json()
    assert response.headers["Location"] == f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    assert response.headers["ETag"] == f'"e{entry["id"]}-r1"'
    assert entry["story"] == live_story and entry["kind"] == "text" and entry["revision"] == 1
    assert entry["author"] == {"username": "rita", "name": "Rita"}
    assert "<strong>block</strong>" in entry["html"]
    assert 'href="https://example.org/map"' in entry["html"] and 'rel="noopener noreferrer nofollow ugc"' in entry["html"]
    assert entry["published_at"].endswith("Z") and entry["pinned"] is False and entry["key_event"] is False

    fetched = client.get(f"/api/v1/stories/{live_story}/entries/{entry['id']}")
    assert fetched.status_code == 200 and fetched.json() == entry
    assert fetched.headers["ETag"] == response.headers["ETag"]


@pytest.mark.parametrize(
    "fields, expected_html",
    [
        ({"kind": "quote", "body": "We will not stop.", "speaker": "Mira Solvane", "role": "opposition candidate"},
         ["<blockquote", "<cite>Mira Solvane</cite>, opposition candidate"]),
        ({"kind": "image", "image_url": "/static/demo/lantern_square.jpg", "caption": "The square at dusk",
          "credit": "A. Photographer / Agency", "alt": "Lamp posts over a crowd"},
         ['<img src="/static/demo/lantern_square.jpg" alt="Lamp posts over a crowd" loading="lazy"',
          "The square at dusk", '<span class="credit">A. Photographer / Agency</span>']),
        ({"kind": "embed", "url": "https://video.example.org/watch?v=1", "body": "Video from the square."},
         ['href="https://video.example.org/watch?v=1"', "Video from the square."]),
    ],
)
def test_each_kind_keeps_its_own_fields(
    client: TestClient, site: Site, live_story: str, fields: dict[str, str], expected_html: list[str]
) -> None:
    response = post(client, site, live_story, **fields)
    assert response.status_code == 201, response.text
    entry = response.json()
    for name, value in fields.items():
        assert entry[name] == value
    for fragment in expected_html:
        assert fragment in entry["html"]


def test_entries_list_newest_first_with_a_cursor(client: TestClient, site: Site, live_story: str) -> None:
    ids = [post(client, site, live_story, body=f"Update {n}").json()["id"] for n in range(5)]
    first = client.get(f"/api/v1/stories/{live_story}/entries", params={"limit": 2}).json()
    assert [e["id"] for e in first["entries"]] == ids[::-1][:2]
    second = client.get(
        f"/api/v1/stories/{live_story}/entries", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [e["id"] for e in second["entries"]] == ids[::-1][2:4]
    last = client.get(
        f"/api/v1/stories/{live_story}/entries", params={"limit": 2, "cursor": second["next_cursor"]}
    ).json()
    assert [e["id"] for e in last["entries"]] == [ids[0]] and last["next_cursor"] is None


def test_an_edit_makes_a_revision_and_keeps_history(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, body="About 5,000 people.").json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    edited = client.patch(url, json={"body": "About 6,000 people."}, headers={**site.auth("rita"), "If-Match": '"%s"' % f"e{entry['id']}-r1"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["revision"] == 2 and "6,000" in edited.json()["html"]
    assert edited.headers["ETag"] == f'"e{entry["id"]}-r2"'
    history = client.get(url + "/revisions", headers=site.auth("eve")).json()["revisions"]
    assert [(r["revision"], r["body"], r["edited_by"]) for r in history] == [
        (1, "About 5,000 people.", "rita"), (2, "About 6,000 people.", "rita"),
    ]


def test_a_stale_if_match_is_refused_and_changes_nothing(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story).json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    stale = f'"e{entry["id"]}-r1"'
    assert client.patch(url, json={"body": "Editor one"}, headers={**site.auth("eve"), "If-Match": stale}).status_code == 200
    second = client.patch(url, json={"body": "Editor two"}, headers={**site.auth("eve"), "If-Match": stale})
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["current_etag"] == f'"e{entry["id"]}-r2"'
    delete = client.delete(url, headers={**site.auth("eve"), "If-Match": stale})
    assert delete.status_code == 412
    assert client.get(url).json()["body"] == "Editor one"


def test_flags_change_without_a_new_revision(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story).json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    pinned = client.patch(url, json={"pinned": True, "key_event": True}, headers=site.auth("eve")).json()
    assert pinned["pinned"] is True and pinned["key_event"] is True and pinned["revision"] == 1
    events = client.get(f"/api/v1/stories/{live_story}/events").json()["events"]
    assert [e["type"] for e in events][-2:] == ["entry.created", "entry.updated"]
    assert events[-1]["data"]["pinned"] is True


def test_delete_leaves_a_tombstone_and_an_event(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story).json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    assert client.delete(url, headers=site.auth("eve")).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get(f"/api/v1/stories/{live_story}/entries").json()["entries"] == []
    events = client.get(f"/api/v1/stories/{live_story}/events").json()["events"]
    # The deleted entry's own creation is not replayed; its deletion is.
    assert [e["type"] for e in events] == ["story.created", "entry.deleted"]
    assert events[-1]["data"]["id"] == entry["id"]
    # The tombstone keeps the history for the newsroom.
    assert table_counts(site.db)["entries"] == 1 and table_counts(site.db)["entry_revisions"] == 1
    assert client.delete(url, headers=site.auth("eve")).status_code == 404


def test_a_deleted_entry_can_be_restored_by_an_editor_in_its_place(
    client: TestClient, site: Site, live_story: str
) -> None:
    older = post(client, site, live_story, body="Older").json()
    entry = post(client, site, live_story, body="Deleted, then restored", key_event=True).json()
    newer = post(client, site, live_story, body="Newer").json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    before = client.get(f"/api/v1/stories/{live_story}/events").json()["last_event_id"]
    assert client.delete(url, headers=site.auth("eve")).status_code == 204
    # Only an editor restores (as only an editor deletes), and only what is deleted.
    assert client.post(url + "/restore", headers=site.auth("rita")).status_code == 403
    assert client.post(f"/api/v1/stories/{live_story}/entries/{newer['id']}/restore",
                       headers=site.auth("eve")).status_code == 409
    assert client.post(f"/api/v1/stories/{live_story}/entries/999999/restore",
                       headers=site.auth("eve")).status_code == 404
    restored = client.post(url + "/restore", headers=site.auth("eve"))
    assert restored.status_code == 200, restored.text
    back = restored.json()
    assert (back["body"], back["key_event"], back["published_at"]) == (entry["body"], True, entry["published_at"])
    assert client.get(url).status_code == 200
    listed = client.get(f"/api/v1/stories/{live_story}/entries").json()["entries"]
    assert [e["id"] for e in listed] == [newer["id"], entry["id"], older["id"]], "back where it was published"
    # Readers who were here before the delete: the deletion, then the entry back, whole.
    after = client.get(f"/api/v1/stories/{live_story}/events", params={"after": before}).json()["events"]
    assert [e["type"] for e in after] == ["entry.deleted", "entry.restored"]
    assert after[-1]["data"]["body"] == entry["body"] and after[-1]["data"]["id"] == entry["id"]
    assert client.post(url + "/restore", headers=site.auth("eve")).status_code == 409


def test_events_after_an_id_are_the_catch_up(client: TestClient, site: Site, live_story: str) -> None:
    first = client.get(f"/api/v1/stories/{live_story}/events").json()
    assert [e["type"] for e in first["events"]] == ["story.created"] and first["has_more"] is False
    created = post(client, site, live_story, body="Later").json()
    after = client.get(f"/api/v1/stories/{live_story}/events", params={"after": first["last_event_id"]}).json()
    assert [(e["type"], e["data"]) for e in after["events"]] == [("entry.created", created)]
    assert after["last_event_id"] > first["last_event_id"]
    paged = client.get(f"/api/v1/stories/{live_story}/events", params={"limit": 1}).json()
    assert len(paged["events"]) == 1 and paged["has_more"] is True
    past_this_second()  # for the Last-Modified (web/http_cache.py)
    whole = client.get(f"/api/v1/stories/{live_story}/events")
    assert client.get(f"/api/v1/stories/{live_story}/events", headers={"If-None-Match": whole.headers["ETag"]}).status_code == 304
    # What a cache in front needs: a short public lifetime, and validators.
    assert whole.headers["Cache-Control"].startswith("public, max-age=")
    story = client.get(f"/api/v1/stories/{live_story}").json()
    modified = parsedate_to_datetime(whole.headers["Last-Modified"])
    updated = datetime.fromisoformat(story["updated_at"].replace("Z", "+00:00"))
    assert modified - timedelta(seconds=1) < updated <= modified and modified.microsecond == 0  # rounded up


# --- roles -------------------------------------------------------------------------------


def test_reporters_edit_only_their_own_entries(client: TestClient, site: Site, live_story: str) -> None:
    entry = post(client, site, live_story, who="rita").json()
    url = f"/api/v1/stories/{live_story}/entries/{entry['id']}"
    refused = client.patch(url, json={"body": "Not mine"}, headers=site.auth("ron"))
    assert refused.status_code == 403 and "editor" in refused.json()["detail"]
    assert client.patch(url, json={"body": "Editor's fix"}, headers=site.auth("eve")).status_code == 200
    assert client.delete(url, headers=site.auth("rita")).status_code == 403
    assert client.patch(url, json={"pinned": True}, headers=site.auth("rita")).status_code == 403
    assert post(client, site, live_story, who="rita", pinned=True).status_code == 403
    assert client.get(url).json()["body"] == "Editor's fix"


def test_writes_need_a_valid_token(client: TestClient, site: Site, live_story: str) -> None:
    before = table_counts(site.db)
    anonymous = client.post(f"/api/v1/stories/{live_story}/entries", json={"body": "x"})
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    forged = client.post(f"/api/v1/stories/{live_story}/entries", json={"body": "x"},
                         headers={"Authorization": "Bearer dl_not-a-real-token"})
    assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"
    assert table_counts(site.db) == before


def test_a_disabled_account_loses_its_tokens(client: TestClient, site: Site, live_story: str) -> None:
    assert client.patch("/api/v1/users/rita", json={"disabled": True}, headers=site.auth("ada")).status_code == 200
    assert post(client, site, live_story, who="rita").status_code == 401


def test_posting_to_an_ended_story_is_a_conflict(client: TestClient, site: Site, live_story: str) -> None:
    client.patch(f"/api/v1/stories/{live_story}", json={"status": "ended"}, headers=site.auth("eve"))
    refused = post(client, site, live_story)
    assert refused.status_code == 409 and "ended" in refused.json()["detail"]


# --- idempotency -------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_is_done_once(client: TestClient, site: Site, live_story: str) -> None:
    headers = {**site.auth("rita"), "Idempotency-Key": "post-42"}
    url = f"/api/v1/stories/{live_story}/entries"
    first = client.post(url, json={"body": "Once only"}, headers=headers)
    again = client.post(url, json={"body": "Once only"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert len(client.get(url).json()["entries"]) == 1
    # The same key for a different request is a client bug: refused, nothing written.
    other = client.post(url, json={"body": "Something else"}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # Keys belong to their user: ron's "post-42" is a new post.
    ron = client.post(url, json={"body": "Once only"}, headers={**site.auth("ron"), "Idempotency-Key": "post-42"})
    assert ron.status_code == 201 and ron.json()["id"] != first.json()["id"]


def test_a_bad_idempotency_key_is_refused(client: TestClient, site: Site, live_story: str) -> None:
    # httpx sends str headers as ASCII; bytes go out as they are.
    for key in ["x" * 256, "has space", "ünïcode"]:
        response = client.post(
            f"/api/v1/stories/{live_story}/entries", json={"body": "x"},
            headers={**site.auth("rita"), "Idempotency-Key": key.encode("utf-8")},
        )
        assert response.status_code == 422, key
        assert "Idempotency-Key" in response.json()["detail"], response.text
    assert client.get(f"/api/v1/stories/{live_story}/entries").json()["entries"] == []


@pytest.mark.slow
def test_concurrent_retries_with_one_key_create_one_entry(site: Site) -> None:
    """Eight copies of one post race each other on a real server: one entry, eight equal answers."""
    server = ServerProcess(site.url).start()
    try:
        headers = site.auth("eve")
        slug = httpx.post(server.base_url + "/api/v1/stories", json={"headline": "Race", "status": "live"},
                          headers=headers).json()["slug"]
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(8)

        def send() -> None:
            barrier.wait()
            answers.append(httpx.post(
                f"{server.base_url}/api/v1/stories/{slug}/entries", json={"body": "Raced"},
                headers={**headers, "Idempotency-Key": "same-key"}, timeout=30,
            ))

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [201] * 8
        assert len({a.json()["id"] for a in answers}) == 1
        listed = httpx.get(f"{server.base_url}/api/v1/stories/{slug}/entries").json()["entries"]
        assert len(listed) == 1
    finally:
        server.stop()


def test_a_story_can_hold_reporters_posts_for_approval(client: TestClient, site: Site) -> None:
    slug = client.post("/api/v1/stories", json={"headline": "Vetted", "status": "live", "requires_approval": True},
                       headers=site.auth("eve")).json()["slug"]
    held = post(client, site, slug, who="rita", body="Unconfirmed: shots heard").json()
    assert held["status"] == "pending"
    # Readers see nothing of it: not in lists, not by id, not in the catch-up, not on the page.
    assert client.get(f"/api/v1/stories/{slug}/entries").json()["entries"] == []
    assert client.get(f"/api/v1/stories/{slug}/entries/{held['id']}").status_code == 404
    assert [e["type"] for e in client.get(f"/api/v1/stories/{slug}/events").json()["events"]] == ["story.created"]
    assert "shots heard" not in client.get(f"/stories/{slug}").text
    # The newsroom sees it, marked pending.
    newsroom = client.get(f"/api/v1/stories/{slug}/events", headers=site.auth("eve")).json()["events"]
    assert [e["type"] for e in newsroom] == ["story.created", "newsroom.submitted"]
    assert client.post(f"/api/v1/stories/{slug}/entries/{held['id']}/approve", headers=site.auth("rita")).status_code == 403
    approved = client.post(f"/api/v1/stories/{slug}/entries/{held['id']}/approve", headers=site.auth("eve"))
    assert approved.status_code == 200 and approved.json()["status"] == "published"
    public = client.get(f"/api/v1/stories/{slug}/events").json()["events"]
    assert [e["type"] for e in public] == ["story.created", "entry.created"]
    assert client.post(f"/api/v1/stories/{slug}/entries/{held['id']}/approve", headers=site.auth("eve")).status_code == 409
    # Editors' own posts go straight out.
    assert post(client, site, slug, who="eve", body="Confirmed").json()["status"] == "published"
