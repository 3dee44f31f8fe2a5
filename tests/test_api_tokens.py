"""`/api/v1/tokens`: listing and revoking API tokens. Admins see and revoke all; anyone else
their own; a revoked token stops at once and its user stays enabled."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from conftest import PASSWORD, Site


def _tokens(client: TestClient, headers: dict[str, str], query: str = "") -> Any:
    answer = client.get("/api/v1/tokens" + query, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["tokens"]


def test_admins_see_every_token_never_the_token_itself(client: TestClient, site: Site) -> None:
    listed = _tokens(client, site.auth("ada"))
    assert [t["user"] for t in listed] == ["ada", "eve", "rita", "ron"]
    for token in listed:
        assert site.tokens[token["user"]].startswith(token["prefix"]) and len(token["prefix"]) == 9
        assert set(token) == {"id", "prefix", "user", "label", "created_at", "last_used_at", "revoked_at"}
        assert site.tokens[token["user"]] not in str(token)
    assert listed[0]["last_used_at"] is not None, "ada's token was used to ask"
    assert [t["user"] for t in _tokens(client, site.auth("ada"), "?user=rita")] == ["rita"]
    assert client.get("/api/v1/tokens?user=ghost", headers=site.auth("ada")).status_code == 404


def test_others_see_only_their_own(client: TestClient, site: Site) -> None:
    assert [t["user"] for t in _tokens(client, site.auth("rita"))] == ["rita"]
    assert [t["user"] for t in _tokens(client, site.auth("rita"), "?user=rita")] == ["rita"]
    assert client.get("/api/v1/tokens?user=eve", headers=site.auth("rita")).status_code == 403
    assert client.get("/api/v1/tokens").status_code == 401


def test_an_admin_revokes_a_leaked_token_and_its_user_stays_enabled(client: TestClient, site: Site) -> None:
    rita = next(t for t in _tokens(client, site.auth("ada")) if t["user"] == "rita")
    assert client.delete(f"/api/v1/tokens/{rita['id']}", headers=site.auth("ada")).status_code == 204
    assert client.get("/api/v1/me", headers=site.auth("rita")).status_code == 401, "stops at once"
    assert client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD}).status_code == 200
    assert client.get("/api/v1/me").json()["disabled"] is False
    again = client.delete(f"/api/v1/tokens/{rita['id']}", headers=site.auth("ada"))
    assert again.status_code == 204, "revoking it again changes nothing"
    shown = next(t for t in _tokens(client, site.auth("ada")) if t["id"] == rita["id"])
    assert shown["revoked_at"] is not None


def test_a_user_revokes_their_own_but_not_others(client: TestClient, site: Site) -> None:
    eve = next(t for t in _tokens(client, site.auth("ada")) if t["user"] == "eve")
    assert client.delete(f"/api/v1/tokens/{eve['id']}", headers=site.auth("rita")).status_code == 404
    assert client.delete("/api/v1/tokens/999", headers=site.auth("rita")).status_code == 404
    own = _tokens(client, site.auth("rita"))[0]
    refused = client.delete(f"/api/v1/tokens/{own['id']}", headers=site.auth("rita"))
    assert refused.status_code == 409, "the token a request is made with cannot revoke itself"
    csrf = client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD}).json()["csrf_token"]
    assert client.delete(f"/api/v1/tokens/{own['id']}", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me", headers=site.auth("rita")).status_code == 401
    assert client.get("/api/v1/me", headers=site.auth("eve")).status_code == 200


def test_token_ids_follow_the_documented_rules(client: TestClient, site: Site) -> None:
    for bad in ["0", "-1", "abc", str(2**63)]:
        assert client.delete(f"/api/v1/tokens/{bad}", headers=site.auth("ada")).status_code == 422
    assert client.get("/api/v1/tokens?user=Not%20A%20Name", headers=site.auth("ada")).status_code == 422
