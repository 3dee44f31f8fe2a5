"""Stories and accounts through the JSON API, and who may do what."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import Site, table_counts


def test_an_editor_creates_and_updates_a_story(client: TestClient, site: Site) -> None:
    created = client.post(
        "/api/v1/stories",
        json={"headline": "Smaller crowd, heavier police: night two", "dateline": "DRAVONNE",
              "summary": "Thousands return to the square.", "status": "live"},
        headers=site.auth("eve"),
    )
    assert created.status_code == 201, created.text
    story = created.json()
    assert story["slug"] == "smaller-crowd-heavier-police-night-two"
    assert created.headers["Location"] == f"/api/v1/stories/{story['slug']}"
    assert client.get(f"/api/v1/stories/{story['slug']}").json() == story

    etag = created.headers["ETag"]
    updated = client.patch(
        f"/api/v1/stories/{story['slug']}", json={"headline": "Night two: smaller crowd"},
        headers={**site.auth("eve"), "If-Match": etag},
    )
    assert updated.status_code == 200 and updated.json()["headline"] == "Night two: smaller crowd"
    assert updated.headers["ETag"] != etag
    stale = client.patch(f"/api/v1/stories/{story['slug']}", json={"summary": "x"},
                         headers={**site.auth("eve"), "If-Match": etag})
    assert stale.status_code == 412

    events = client.get(f"/api/v1/stories/{story['slug']}/events").json()["events"]
    assert [e["type"] for e in events] == ["story.created", "story.updated"]
    assert events[1]["data"] == updated.json()


def test_slugs_stay_unique(client: TestClient, site: Site) -> None:
    slugs = [client.post("/api/v1/stories", json={"headline": "Election night"}, headers=site.auth("eve")).json()["slug"]
             for _ in range(3)]
    assert slugs == ["election-night", "election-night-2", "election-night-3"]


def test_drafts_are_hidden_from_readers(client: TestClient, site: Site) -> None:
    slug = client.post("/api/v1/stories", json={"headline": "Embargoed"}, headers=site.auth("eve")).json()["slug"]
    assert client.get(f"/api/v1/stories/{slug}").status_code == 404
    assert client.get(f"/api/v1/stories/{slug}/events").status_code == 404
    assert client.get(f"/stories/{slug}").status_code == 404
    assert slug not in [s["slug"] for s in client.get("/api/v1/stories").json()["stories"]]
    # Reporters see drafts, so they can post to them before the story goes live.
    assert client.get(f"/api/v1/stories/{slug}", headers=site.auth("rita")).status_code == 200
    assert client.post(f"/api/v1/stories/{slug}/entries", json={"body": "Ready"}, headers=site.auth("rita")).status_code == 201
    client.patch(f"/api/v1/stories/{slug}", json={"status": "live"}, headers=site.auth("eve"))
    assert client.get(f"/api/v1/stories/{slug}").status_code == 200


def test_live_stories_are_listed_first(client: TestClient, site: Site) -> None:
    auth = site.auth("eve")
    client.post("/api/v1/stories", json={"headline": "Old news", "status": "ended"}, headers=auth)
    client.post("/api/v1/stories", json={"headline": "Breaking", "status": "live"}, headers=auth)
    client.post("/api/v1/stories", json={"headline": "Older news", "status": "ended"}, headers=auth)
    listed = [s["headline"] for s in client.get("/api/v1/stories").json()["stories"]]
    assert listed == ["Breaking", "Older news", "Old news"]


@pytest.mark.parametrize("who, status", [("rita", 403), ("eve", 201), ("ada", 201)])
def test_only_editors_and_admins_create_stories(client: TestClient, site: Site, who: str, status: int) -> None:
    before = table_counts(site.db)
    response = client.post("/api/v1/stories", json={"headline": "Mine"}, headers=site.auth(who))
    assert response.status_code == status
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert table_counts(site.db) == before


def test_only_editors_change_stories(client: TestClient, site: Site, live_story: str) -> None:
    assert client.patch(f"/api/v1/stories/{live_story}", json={"status": "ended"}, headers=site.auth("rita")).status_code == 403
    assert client.patch(f"/api/v1/stories/{live_story}", json={"status": "ended"}).status_code == 401
    assert client.get(f"/api/v1/stories/{live_story}").json()["status"] == "live"


def test_a_story_creation_is_idempotent(client: TestClient, site: Site) -> None:
    headers = {**site.auth("eve"), "Idempotency-Key": "story-1"}
    first = client.post("/api/v1/stories", json={"headline": "Once"}, headers=headers)
    again = client.post("/api/v1/stories", json={"headline": "Once"}, headers=headers)
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert table_counts(site.db)["stories"] == 1


# --- accounts ----------------------------------------------------------------------------


def test_admins_manage_users(client: TestClient, site: Site) -> None:
    created = client.post("/api/v1/users", json={"username": "nina", "role": "reporter", "name": "Nina K."},
                          headers=site.auth("ada"))
    assert created.status_code == 201, created.text
    assert created.json()["password"] and len(created.json()["password"]) >= 16
    assert "nina" in [u["username"] for u in client.get("/api/v1/users", headers=site.auth("ada")).json()["users"]]
    promoted = client.patch("/api/v1/users/nina", json={"role": "editor"}, headers=site.auth("ada"))
    assert promoted.json()["role"] == "editor"
    duplicate = client.post("/api/v1/users", json={"username": "nina", "role": "reporter"}, headers=site.auth("ada"))
    assert duplicate.status_code == 409
    weak = client.post("/api/v1/users", json={"username": "otto", "role": "reporter", "password": "short"},
                       headers=site.auth("ada"))
    assert weak.status_code == 422


@pytest.mark.parametrize("who", ["eve", "rita"])
def test_non_admins_cannot_manage_users(client: TestClient, site: Site, who: str) -> None:
    assert client.get("/api/v1/users", headers=site.auth(who)).status_code == 403
    assert client.post("/api/v1/users", json={"username": "x1", "role": "admin"}, headers=site.auth(who)).status_code == 403
    assert client.patch("/api/v1/users/ada", json={"role": "reporter"}, headers=site.auth(who)).status_code == 403


def test_an_admin_cannot_lock_themselves_out(client: TestClient, site: Site) -> None:
    assert client.patch("/api/v1/users/ada", json={"disabled": True}, headers=site.auth("ada")).status_code == 409
    assert client.patch("/api/v1/users/ada", json={"role": "editor"}, headers=site.auth("ada")).status_code == 409
    assert client.get("/api/v1/me", headers=site.auth("ada")).json()["role"] == "admin"


def test_me_says_who_the_token_belongs_to(client: TestClient, site: Site) -> None:
    assert client.get("/api/v1/me", headers=site.auth("rita")).json() == {
        "username": "rita", "name": "Rita", "role": "reporter", "disabled": False,
    }
    assert client.get("/api/v1/me").status_code == 401


def test_the_openapi_document_describes_the_api(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, methods in {
        "/api/v1/stories": {"get", "post"},
        "/api/v1/stories/{slug}": {"get", "patch"},
        "/api/v1/stories/{slug}/entries": {"get", "post"},
        "/api/v1/stories/{slug}/entries/{entry_id}": {"get", "patch", "delete"},
        "/api/v1/stories/{slug}/events": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    schemes = document["components"]["securitySchemes"].values()
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes)
    assert not any(p.startswith("/stories") for p in paths), "reader pages are not API operations"
