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


def test_a_nul_in_a_slug_is_a_clean_problem(client: TestClient, site: Site) -> None:
    """Slugs in paths are checked against the slug pattern: `%00` is refused before any handler."""
    response = client.get("/api/v1/stories/%00")
    assert_problem(response, 422, "slug")
    assert "Traceback" not in response.text and "\x00" not in response.text


SECRET = "psycopg.connect(password=hunter2) in /srv/dateline/src/dateline/stories/story.py"


def _leaks(text: str) -> list[str]:
    return [word for word in ("Traceback", "RuntimeError", "hunter2", "story.py", 'File "', SECRET) if word in text]


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


def _assert_clean_500(response: Any) -> None:
    problem = assert_problem(response, 500)
    assert problem["title"] == "Internal error"
    assert not _leaks(response.text), (_leaks(response.text), response.text)
    assert not any(_leaks(value) for value in response.headers.values()), response.headers


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(
    client: TestClient, site: Site, live_story: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug deep in a handler (here the domain's story listing raises): problem+json 500,
    nothing of the exception in the answer; the next request is served as usual."""
    from dateline.stories import story

    monkeypatch.setattr(story, "list_stories", _explode)
    _assert_clean_500(client.get("/api/v1/stories"))
    _assert_clean_500(client.get("/api/v1/stories", headers=site.auth("eve")))
    monkeypatch.undo()
    assert client.get("/api/v1/stories").status_code == 200


def test_an_unexpected_error_in_a_write_leaves_nothing_half_written(
    client: TestClient, site: Site, live_story: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The story row is inserted, then the handler fails inside the same transaction: a 500,
    and the transaction rolled back (no story, no event, no stored idempotent answer)."""
    from dateline.stories import story

    before = table_counts(site.db)
    monkeypatch.setattr(story, "story_json", _explode)
    response = client.post("/api/v1/stories", json={"headline": "Half written"},
                           headers={**site.auth("eve"), "Idempotency-Key": "half-written-1"})
    _assert_clean_500(response)
    assert table_counts(site.db) == before
    monkeypatch.undo()
    again = client.post("/api/v1/stories", json={"headline": "Half written"},
                        headers={**site.auth("eve"), "Idempotency-Key": "half-written-1"})
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") != "true", again.text


def test_a_500_carries_the_security_headers(
    client: TestClient, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dateline.stories import story

    monkeypatch.setattr(story, "list_stories", _explode)
    response = client.get("/api/v1/stories")
    assert response.status_code == 500
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"
