"""Input no handler should ever see: lone surrogates in JSON, integers past any row id. Each
gets a 4xx problem, never a 500, and changes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import Site, table_counts
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from test_api_problems import assert_problem
from test_newsroom_security import sign_in_form

from dateline.routes import ROUTERS

HUGE = "99999999999999999999"  # past 64 bits: SQLite's driver cannot even bind it

LONE_SURROGATES = [
    ("POST", "/api/v1/stories", '{"headline": "Night \\ud800 two"}'),
    ("POST", "/api/v1/stories/{story}/entries", '{"body": "a\\udfffb"}'),
    ("POST", "/api/v1/preview", '{"body": "\\ud83d"}'),
    ("PATCH", "/api/v1/stories/{story}", '{"summary": "x", "headline": "\\udc00"}'),
    ("PATCH", "/api/v1/users/rita", '{"name": "\\ud800"}'),
    ("POST", "/api/v1/session", '{"username": "ada", "password": "correct horse \\ud800"}'),
    ("POST", "/api/v1/stories/{story}/entries", '{"body": "fine", "\\ud800": 1}'),  # in a key, too
]


@pytest.mark.parametrize("method, path, body", LONE_SURROGATES)
def test_a_lone_surrogate_in_json_is_a_422(
    client: TestClient, site: Site, live_story: str, method: str, path: str, body: str
) -> None:
    before = table_counts(site.db)
    response = client.request(method, path.format(story=live_story), content=body.encode(),
                              headers={**site.auth("ada"), "Content-Type": "application/json"})
    assert_problem(response, 422, "not valid Unicode")
    assert table_counts(site.db) == before


def test_a_surrogate_pair_is_text_like_any_other(client: TestClient, site: Site, live_story: str) -> None:
    response = client.post(f"/api/v1/stories/{live_story}/entries", content=b'{"body": "Sirens \\ud83d\\udce2"}',
                           headers={**site.auth("ada"), "Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["body"] == "Sirens \U0001f4e2"


def _int_params(route: APIRoute) -> tuple[list[str], list[str]]:
    dependant = route.dependant
    path = [p.name for p in dependant.path_params if p.field_info.annotation is int]
    query = [p.alias for p in dependant.query_params if p.field_info.annotation in (int, int | None)]
    return path, query


def _huge_int_requests(routes: list[Any], story: str) -> list[str]:
    urls = []
    for route in routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        path_ints, query_ints = _int_params(route)
        base = route.path.replace("{slug}", story)
        filled = re.sub(r"\{(\w+)\}", lambda m: HUGE if m.group(1) in path_ints else "1", base)
        if path_ints:
            urls.append(filled)
        ones = re.sub(r"\{(\w+)\}", "1", base)
        urls.extend(f"{ones}?{name}={HUGE}" for name in query_ints)
        if "cursor" in {p.alias for p in route.dependant.query_params}:
            urls.append(f"{filled}?cursor={HUGE}")
    return urls


def test_integers_past_any_id_get_a_404_or_422_on_every_route(
    client: TestClient, site: Site, live_story: str
) -> None:
    sign_in_form(client, "ada")  # the newsroom's pages too, not just their sign-in redirect
    urls = _huge_int_requests([route for router in ROUTERS for route in router.routes], live_story)
    # The walk found the routes the bug was found on: it cannot pass by finding nothing.
    assert f"/stories/{live_story}/entries/{HUGE}" in urls
    assert f"/newsroom/stories/{live_story}/entries/{HUGE}/history" in urls
    assert f"/api/v1/stories/{live_story}/entries?cursor={HUGE}" in urls
    for url in urls:
        response = client.get(url, headers=site.auth("ada"))
        assert response.status_code in (404, 422), (url, response.status_code, response.text[:200])
