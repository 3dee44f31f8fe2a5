"""Sign-in sessions: cookie flags, CSRF, renewal, ending, and the password-guessing throttle."""

from __future__ import annotations

from fastapi.testclient import TestClient

from conftest import PASSWORD, Site


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/session", json={"username": who, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_the_session_cookie_is_httponly_and_lax(client: TestClient) -> None:
    response = client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dateline_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie, "plain http on a test client: Secure would lose the cookie"
    assert response.json()["user"]["username"] == "rita"


def test_the_cookie_is_secure_behind_https(site: Site, settings: object) -> None:
    from dateline.app import create_app

    app = create_app(settings, site.db)  # type: ignore[arg-type]
    with TestClient(app, base_url="https://news.example") as secure_client:
        cookie = secure_client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD}).headers["set-cookie"]
    assert "Secure" in cookie


def test_a_new_session_id_at_every_sign_in(client: TestClient) -> None:
    sign_in(client, "rita")
    first = client.cookies.get("dateline_session")
    sign_in(client, "rita")
    second = client.cookies.get("dateline_session")
    assert first and second and first != second


def test_unsafe_requests_with_a_cookie_need_the_csrf_token(client: TestClient, site: Site, live_story: str) -> None:
    csrf = sign_in(client, "rita")
    assert client.get("/api/v1/me").json()["username"] == "rita"
    url = f"/api/v1/stories/{live_story}/entries"
    refused = client.post(url, json={"body": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.post(url, json={"body": "x"}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post(url, json={"body": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert len(client.get(url).json()["entries"]) == 1


def test_sign_out_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client, "rita")
    assert client.delete("/api/v1/session").status_code == 403
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_disabling_or_demoting_a_user_ends_their_sessions_at_once(client: TestClient, site: Site) -> None:
    sign_in(client, "eve")
    assert client.get("/api/v1/me").status_code == 200
    client.patch("/api/v1/users/eve", json={"role": "reporter"}, headers=site.auth("ada"))
    assert client.get("/api/v1/me").status_code == 401
    sign_in(client, "rita")
    client.patch("/api/v1/users/rita", json={"disabled": True}, headers=site.auth("ada"))
    assert client.get("/api/v1/me").status_code == 401
    assert client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD}).status_code == 401


def test_a_password_change_ends_the_other_sessions(client: TestClient, site: Site, settings: object) -> None:
    from dateline.app import create_app

    with TestClient(create_app(settings, site.db)) as laptop:  # type: ignore[arg-type]
        sign_in(laptop, "ron")
        csrf = sign_in(client, "ron")
        wrong = client.post("/api/v1/me/password", json={"current_password": "nope", "new_password": "a brand new secret"},
                            headers={"X-CSRF-Token": csrf})
        assert wrong.status_code == 403
        changed = client.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "a brand new secret"},
                              headers={"X-CSRF-Token": csrf})
        assert changed.status_code == 204
        assert client.get("/api/v1/me").status_code == 200, "this session stays"
        assert laptop.get("/api/v1/me").status_code == 401, "the other one ended"
    assert client.post("/api/v1/session", json={"username": "ron", "password": "a brand new secret"}).status_code == 200


def test_guessing_passwords_is_throttled(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/api/v1/session", json={"username": "ron", "password": "guess"}).status_code == 401
    throttled = client.post("/api/v1/session", json={"username": "ron", "password": PASSWORD})
    assert throttled.status_code == 429, "even the right password waits: the guesser cannot tell"
    assert 0 < int(throttled.headers["Retry-After"]) <= 300
    # Another account from the same address is not locked by ron's failures.
    assert client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD}).status_code == 200


def test_unknown_users_are_throttled_like_real_ones(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/api/v1/session", json={"username": "nobody", "password": "guess"}).status_code == 401
    assert client.post("/api/v1/session", json={"username": "nobody", "password": "guess"}).status_code == 429


def test_sessions_expire_when_idle_and_at_their_absolute_end(client: TestClient, site: Site) -> None:
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from dateline.schema import sessions as sessions_table

    sign_in(client, "rita")
    assert client.get("/api/v1/me").status_code == 200
    now = datetime.now(timezone.utc)
    with site.db.write() as conn:  # unused for longer than the idle limit (12 h)
        conn.execute(update(sessions_table).values(last_seen_at=now - timedelta(hours=13)))
    assert client.get("/api/v1/me").status_code == 401
    sign_in(client, "rita")
    with site.db.write() as conn:  # in use, but past its absolute end
        conn.execute(update(sessions_table).values(expires_at=now - timedelta(seconds=1)))
    assert client.get("/api/v1/me").status_code == 401
