"""Every path answers the methods it has, and a 405 says which they are: the walk covers the
OpenAPI document and the whole route table (pages, the newsroom, the live streams, files)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAMPLES = {"slug": "no-such-story", "entry_id": "1", "username": "nobody", "id": "1"}
FILES = {"/static": "/static/newsroom.js", "/media": "/media/0123456789abcdef01234567-480x320.jpg"}


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLES.get(m[1], "1"), template)


def allow_of(response: Any) -> set[str]:
    return {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}


def check(client: TestClient, path: str, answers: set[str]) -> None:
    """`path` answers `answers` (and HEAD where it answers GET); every other method is a 405
    whose Allow lists exactly those."""
    expected = answers | ({"HEAD"} if "GET" in answers else set())
    for method in METHODS:
        response = client.request(method, path)
        if method in expected:
            assert response.status_code != 405, (method, path, response.text[:200])
            if method == "HEAD":
                got = client.get(path)
                assert response.status_code == got.status_code and response.content == b"", path
                assert response.headers.get("content-type") == got.headers.get("content-type"), path
        else:
            assert response.status_code == 405, (method, path, response.status_code)
            assert allow_of(response) == expected, (method, path, response.headers.get("allow"))


def test_every_operation_of_the_openapi_document_allows_what_it_declares(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["paths"]
    for template, operations in document["paths"].items():
        declared = {m.upper() for m in operations if m.upper() in METHODS}
        check(client, concrete(template), declared)


def test_every_route_of_the_table_allows_its_methods_and_files_get_and_head(client: TestClient) -> None:
    by_path: dict[str, set[str]] = defaultdict(set)
    mounts = []
    for context in iter_route_contexts(client.app.router.routes):  # type: ignore[attr-defined]
        route = context.original_route
        if isinstance(route, Mount):
            mounts.append(route.path)
        elif isinstance(route, Route):
            by_path[str(context.path_format)] |= context.methods or set()
    assert {"/", "/stories/{slug}", "/stories/{slug}/live", "/newsroom"} <= set(by_path)
    for template, methods in by_path.items():
        if template == "/api/v1/openapi.json" or not template.startswith("/api/"):
            check(client, concrete(template), methods - {"HEAD"})
    # Photos are files in the folder store, a route (checked above) in the database store;
    # the static files are a route of their own.
    assert "/static/{name}" in by_path
    assert set(mounts) | {"/static"} | ({"/media"} if "/media/{name}" in by_path else set()) == set(FILES)
    for path in FILES.values():
        check(client, path, {"GET"})


def test_a_405_on_a_page_says_so_as_a_page(client: TestClient) -> None:
    response = client.post("/stories/no-such-story")
    assert response.status_code == 405 and response.headers["content-type"].startswith("text/html")
    assert allow_of(response) == {"GET", "HEAD"}
    api = client.put("/api/v1/stories")
    assert api.headers["content-type"] == "application/problem+json"
    assert allow_of(api) == {"GET", "HEAD", "POST"} and "GET, HEAD, POST" in api.json()["detail"]
