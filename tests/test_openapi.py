"""The OpenAPI document states the rules the server enforces: what it allows, the server
takes; what it refuses, the server refuses too."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from conftest import Site

ENTRY_BODIES: list[dict[str, Any]] = [
    {"body": "Polls have closed."},
    {"kind": "text", "body": "Polls have closed.", "key_event": True},
    {"body": "   "},
    {"body": "\x00\x07"},  # only control characters: dropped, then blank
    {},
    {"kind": "text", "body": "x", "speaker": "Someone"},
    {"kind": "quote", "body": "We will be back.", "speaker": "Mira Solvane", "role": "candidate"},
    {"kind": "quote", "body": "We will be back."},
    {"kind": "quote", "body": "We will be back.", "speaker": " "},
    {"kind": "quote", "speaker": "Mira Solvane"},
    {"kind": "image", "image_url": "/static/demo/crowd_lights.jpg", "alt": "A crowd", "caption": "Night two"},
    {"kind": "image", "image_url": "/static/demo/crowd_lights.jpg"},
    {"kind": "image", "alt": "A crowd"},
    {"kind": "image", "image_url": "/static/demo/crowd_lights.jpg", "alt": "A crowd", "url": "https://example.org/"},
    {"kind": "embed", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
    {"kind": "embed", "body": "Watch:", "url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"},
    {"kind": "embed"},
    {"kind": "embed", "url": "https://example.org/", "speaker": "x"},
]


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    answer: dict[str, Any] = client.get("/api/v1/openapi.json").json()
    return answer


def validator(document: dict[str, Any], name: str) -> Any:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(schema)


def test_each_kind_of_entry_needs_in_the_document_what_the_server_needs(
    client: TestClient, site: Site, live_story: str, document: dict[str, Any]
) -> None:
    entry_create = validator(document, "EntryCreate")
    for body in ENTRY_BODIES:
        answer = client.post(f"/api/v1/stories/{live_story}/entries", json=body, headers=site.auth("eve"))
        assert answer.status_code in (201, 422), answer.text
        assert entry_create.is_valid(body) == (answer.status_code == 201), (body, answer.text)


def test_the_document_says_which_operations_answer_without_a_token(document: dict[str, Any]) -> None:
    anonymous = {
        ("get", "/api/v1/stories"), ("get", "/api/v1/stories/{slug}"), ("get", "/api/v1/stories/{slug}/entries"),
        ("get", "/api/v1/stories/{slug}/entries/{entry_id}"), ("get", "/api/v1/stories/{slug}/events"),
        ("get", "/api/v1/search"), ("get", "/api/v1/stories/{slug}/blocks"),
        ("get", "/api/v1/stories/{slug}/blocks/{block_id}"), ("get", "/api/v1/stories/{slug}/blocks/{block_id}/revisions"),
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security", [])
            if (method, path) in anonymous:
                assert {} in security and {"HTTPBearer": []} in security, (method, path)
            elif security:
                assert {} not in security, (method, path)  # a token is required: no empty alternative


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    for parameter in document["paths"][path][method]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)
    raise AssertionError(f"{method} {path} has no parameter {name}")


def test_cursors_and_idempotency_keys_follow_the_patterns_the_document_states(
    client: TestClient, site: Site, live_story: str, document: dict[str, Any]
) -> None:
    cursor = re.compile(_parameter(document, "/api/v1/stories/{slug}/entries", "get", "cursor")["pattern"])
    posted = client.post(f"/api/v1/stories/{live_story}/entries", json={"body": "A place to page from"},
                         headers=site.auth("eve")).json()["id"]
    for value in [str(posted), "123456789012345678", "0", "zz", "²", "-1", "1234567890123456789", ""]:
        answer = client.get(f"/api/v1/stories/{live_story}/entries", params={"cursor": value})
        # A well-formed cursor that names no entry of this story is a 404, not a 422.
        assert (answer.status_code in (200, 404)) == bool(cursor.search(value)), (value, answer.text)
        assert (answer.status_code == 200) == (value == str(posted)), (value, answer.text)
    key = re.compile(_parameter(document, "/api/v1/stories/{slug}/entries", "post", "Idempotency-Key")["pattern"])
    for value in ["post-1", "x" * 255, "x" * 256, "has space", "tab\there"]:
        answer = client.post(f"/api/v1/stories/{live_story}/entries", json={"body": f"Key {value[:10]}"},
                             headers={**site.auth("eve"), "Idempotency-Key": value})
        assert (answer.status_code == 201) == bool(key.search(value)), (value, answer.text)
