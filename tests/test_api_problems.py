"""Bad input gets a precise problem+json answer with the right status, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Site, table_counts


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    for word in words:
        assert word in problem["detail"], (word, problem["detail"])
    return problem  # type: ignore[no-any-return]


BAD_ENTRIES = [
    ({"kind": "poem", "body": "x"}, "kind"),
    ({"body": ""}, "needs a body"),
    ({"body": 42}, "body"),
    ({"body": ["a"]}, "body"),
    ({"body": "x" * 20_001}, "body"),
    ({"body": "x", "colour": "red"}, "colour"),
    ({"body": "x", "key_event": "yes"}, "key_event"),
    ({"kind": "quote", "body": "x"}, "needs speaker"),
    ({"kind": "text", "body": "x", "speaker": "Someone"}, "does not apply"),
    ({"kind": "image", "image_url": "/static/x.jpg"}, "needs alt"),
    ({"kind": "image", "image_url": "javascript:alert(1)", "alt": "x"}, "image_url"),
    ({"kind": "image", "image_url": "//evil.example/x.jpg", "alt": "x"}, "image_url"),
    ({"kind": "embed", "url": "ftp://example.org/x"}, "url"),
    ({"kind": "embed", "url": "https://example.org/" + "a" * 2100}, "url"),
    ({"kind": "quote", "body": "x", "speaker": "s" * 201}, "speaker"),
]


@pytest.mark.parametrize("payload, words", BAD_ENTRIES)
def test_a_bad_entry_is_refused_with_its_reason(
    client: TestClient, site: Site, live_story: str, payload: dict[str, Any], words: str
) -> None:
    before = table_counts(site.db)
    response = client.post(f"/api/v1/stories/{live_story}/entries", json=payload, headers=site.auth("rita"))
    assert_problem(response, 422, words)
    assert table_counts(site.db) == before


def test_malformed_json_is_a_400(client: TestClient, site: Site, live_story: str) -> None:
    before = table_counts(site.db)
    response = client.post(
        f"/api/v1/stories/{live_story}/entries", content=b'{"body": "unterminated',
        headers={**site.auth("rita"), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "not valid JSON")
    assert table_counts(site.db) == before


def test_a_body_that_is_not_an_object_is_a_422(client: TestClient, site: Site, live_story: str) -> None:
    response = client.post(f"/api/v1/stories/{live_story}/entries", json=["body"], headers=site.auth("rita"))
    assert_problem(response, 422)


def test_an_oversized_request_is_a_413(client: TestClient, site: Site, live_story: str) -> None:
    before = table_counts(site.db)
    response = client.post(
        f"/api/v1/stories/{live_story}/entries", content=b'{"body": "' + b"x" * 1_100_000 + b'"}',
        headers={**site.auth("rita"), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "1048576 bytes")
    assert table_counts(site.db) == before


def test_unknown_story_entry_and_route_are_404s(client: TestClient, site: Site, live_story: str) -> None:
    assert_problem(client.get("/api/v1/stories/no-such-story"), 404, "no-such-story")
    assert_problem(client.get("/api/v1/stories/no-such-story/entries"), 404)
    assert_problem(client.post("/api/v1/stories/no-such-story/entries", json={"body": "x"}, headers=site.auth("rita")), 404)
    assert_problem(client.get(f"/api/v1/stories/{live_story}/entries/999999"), 404, "999999")
    assert_problem(client.get("/api/v1/nothing-here"), 404)


def test_a_non_numeric_entry_id_or_cursor_is_refused(client: TestClient, site: Site, live_story: str) -> None:
    assert_problem(client.get(f"/api/v1/stories/{live_story}/entries/abc"), 422, "entry_id")
    assert_problem(client.get(f"/api/v1/stories/{live_story}/entries", params={"cursor": "zz"}), 422, "cursor")
    assert_problem(client.get(f"/api/v1/stories/{live_story}/entries", params={"cursor": "²"}), 422, "cursor")
    assert_problem(client.get(f"/api/v1/stories/{live_story}/entries", params={"limit": 1000}), 422, "limit")
    assert_problem(client.get(f"/api/v1/stories/{live_story}/events", params={"after": -1}), 422, "after")


def test_wrong_method_is_a_405(client: TestClient, live_story: str) -> None:
    assert_problem(client.put(f"/api/v1/stories/{live_story}"), 405)


def test_bad_stories_are_refused(client: TestClient, site: Site) -> None:
    auth = site.auth("eve")
    assert_problem(client.post("/api/v1/stories", json={}, headers=auth), 422, "headline")
    assert_problem(client.post("/api/v1/stories", json={"headline": "   "}, headers=auth), 422, "headline")
    assert_problem(client.post("/api/v1/stories", json={"headline": "x" * 201}, headers=auth), 422, "headline")
    assert_problem(client.post("/api/v1/stories", json={"headline": "x", "status": "open"}, headers=auth), 422, "status")
    assert_problem(client.post("/api/v1/stories", json={"headline": "x", "slug": "Not A Slug"}, headers=auth), 422, "slug")
    client.post("/api/v1/stories", json={"headline": "x", "slug": "taken"}, headers=auth)
    assert_problem(client.post("/api/v1/stories", json={"headline": "y", "slug": "taken"}, headers=auth), 409, "taken")
    assert_problem(client.patch("/api/v1/stories/taken", json={"slug": "other"}, headers=auth), 422, "slug")


def test_control_characters_are_dropped_not_stored(client: TestClient, site: Site, live_story: str) -> None:
    response = client.post(
        f"/api/v1/stories/{live_story}/entries", json={"body": "Nul\x00 and bell\x07 go;\ttab and\nnewline stay"},
        headers=site.auth("rita"),
    )
    assert response.status_code == 201, response.text
    assert response.json()["body"] == "Nul and bell go;\ttab and\nnewline stay"


def test_errors_never_leak_a_stack_trace(client: TestClient, site: Site) -> None:
    response = client.get("/api/v1/stories/%00")
    assert response.status_code == 404
    assert "Traceback" not in response.text
