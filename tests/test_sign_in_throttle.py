"""The sign-in throttle and the bounded password work, in-process on SQLite and PostgreSQL:
what is counted, under which name, before any hashing; and the password-change forms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import PASSWORD, Site
from dateline.accounts import passwords, sessions
from dateline.schema import login_failures


def _failures(site: Site) -> list[tuple[str, str]]:
    with site.db.read() as conn:
        return [(row.username, row.ip) for row in conn.execute(select(login_failures))]


def _sign_in(client: TestClient, username: str, password: str = "a wrong guess") -> int:
    return client.post("/api/v1/session", json={"username": username, "password": password}).status_code


@pytest.mark.parametrize("name", ["ro\x00n", "\x00", "a\x1fb", "Not A Name!", "é" * 10, "x"])
def test_a_name_that_cannot_be_a_username_is_a_401_on_both_databases(client: TestClient, site: Site, name: str) -> None:
    assert _sign_in(client, name) == 401
    assert _failures(site) == [(sessions.NOT_A_USERNAME, "testclient")], "counted under one clean key, by address"


def test_names_that_cannot_be_usernames_are_limited_by_address(client: TestClient, site: Site) -> None:
    statuses = [_sign_in(client, f"bad\x00name{n}") for n in range(6)]
    assert statuses == [401] * 5 + [429]
    assert _sign_in(client, "rita", PASSWORD) == 200, "a real account from the same address is not locked"


def test_the_name_is_counted_as_stored(client: TestClient, site: Site) -> None:
    for spelling in ["RON", " ron ", "Ron"]:
        assert _sign_in(client, spelling) == 401
    assert {name for name, _ in _failures(site)} == {"ron"}


def test_a_success_clears_the_address_record_for_the_account(client: TestClient, site: Site) -> None:
    for _ in range(4):
        assert _sign_in(client, "ron") == 401
    assert _sign_in(client, "ron", PASSWORD) == 200
    assert _failures(site) == [], "the right password forgets this address's guesses, and is not counted"
    for _ in range(5):
        assert _sign_in(client, "ron") == 401
    assert _sign_in(client, "ron") == 429


def test_a_throttled_guess_is_not_hashed(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        assert _sign_in(client, "ron") == 401
    checks: list[Any] = []
    monkeypatch.setattr(passwords, "_verify", lambda *args: checks.append(args) or False)
    assert _sign_in(client, "ron") == 429
    assert checks == [], "the throttle is checked before any hashing"


def test_an_unknown_user_costs_a_verify_not_a_new_hash(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    real = passwords._hasher
    verified: list[str] = []

    class Spy:
        def hash(self, password: str) -> str:
            raise AssertionError("a sign-in made a new hash")

        def verify(self, stored: str, password: str) -> bool:
            verified.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Spy())
    assert _sign_in(client, "nobody") == 401
    assert _sign_in(client, "rita") == 401
    assert len(verified) == 2 and verified[0] == passwords.DUMMY_HASH != verified[1], "one verify each, known or not"
    assert re.match(r"\$argon2id\$v=19\$m=19456,t=2,p=1\$", passwords.DUMMY_HASH), "the same cost as a real hash"


def test_password_work_refuses_beyond_its_room() -> None:
    work = passwords.PasswordWork(1)
    try:
        held = [work.admitted() for _ in range(1 + passwords.WAITING_PER_SLOT)]
        for place in held:
            place.__enter__()
        with pytest.raises(passwords.PasswordWorkBusy), work.admitted():
            pass
        held[0].__exit__(None, None, None)
        with work.admitted():
            assert work.verify(None, "x") is False
    finally:
        work.shutdown()


def test_when_password_work_is_busy_sign_in_is_a_503_with_retry_after(
    client: TestClient, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full(passwords.PasswordWork):
        def admitted(self) -> Any:
            raise passwords.PasswordWorkBusy("Too many sign-ins at once; try again in 1 second.")

    full = Full(1)
    monkeypatch.setattr(passwords, "work", lambda slots=None: full)
    try:
        answer = client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD})
    finally:
        full.shutdown()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert _failures(site) == [], "a refusal for load is not counted as a guess"


def _signed_in(client: TestClient, who: str) -> str:
    answer = client.post("/api/v1/session", json={"username": who, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["csrf_token"])


def test_wrong_current_passwords_are_throttled_in_the_api(client: TestClient) -> None:
    csrf = _signed_in(client, "ron")
    change = {"current_password": "not it", "new_password": "a brand new secret"}
    statuses = [client.post("/api/v1/me/password", json=change, headers={"X-CSRF-Token": csrf}).status_code
                for _ in range(6)]
    assert statuses == [403] * 5 + [429]
    right = client.post("/api/v1/me/password", json={**change, "current_password": PASSWORD},
                        headers={"X-CSRF-Token": csrf})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


def test_a_right_current_password_clears_the_record(client: TestClient, site: Site) -> None:
    csrf = _signed_in(client, "ron")
    wrong = {"current_password": "not it", "new_password": "a brand new secret"}
    for _ in range(3):
        client.post("/api/v1/me/password", json=wrong, headers={"X-CSRF-Token": csrf})
    done = client.post("/api/v1/me/password", json={**wrong, "current_password": PASSWORD},
                       headers={"X-CSRF-Token": csrf})
    assert done.status_code == 204
    assert _failures(site) == []


def test_wrong_current_passwords_are_throttled_in_the_newsroom(client: TestClient) -> None:
    form = client.get("/newsroom/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    client.post("/newsroom/login", data={"username": "ron", "password": PASSWORD, "csrf_token": token.group(1)},
                follow_redirects=False)
    page = client.get("/newsroom/password").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    data = {"current_password": "not it", "new_password": "a brand new secret", "csrf_token": csrf.group(1)}
    statuses = [client.post("/newsroom/password", data=data).status_code for _ in range(6)]
    assert statuses == [403] * 5 + [429]
    throttled = client.post("/newsroom/password", data={**data, "current_password": PASSWORD})
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert "Too many failed sign-ins" in throttled.text


def test_the_documented_sign_in_limits_are_the_real_ones() -> None:
    from pathlib import Path

    from test_docs import table

    from dateline.config import Settings

    doc = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    rows = {row[0]: tuple(int(n) for n in re.findall(r"\d+", row[1]))
            for row in table(doc, "| sign-in limit | value |")}
    minutes = {name: (limit, int(window.total_seconds() // 60)) for name, limit, window in [
        ("wrong passwords for one account from one address", sessions.PAIR_LIMIT, sessions.PAIR_WINDOW),
        ("wrong passwords from one address", sessions.ADDRESS_LIMIT, sessions.ADDRESS_WINDOW),
        ("wrong passwords for one account, from anywhere", sessions.ACCOUNT_LIMIT, sessions.ACCOUNT_WINDOW),
    ]}
    assert f"`Retry-After: {passwords.RETRY_AFTER_SECONDS}`" in doc
    assert rows == {
        **minutes,
        "password checks at once, per server process (`DATELINE_PASSWORD_HASH_SLOTS`)":
            (Settings.from_env({}).password_hash_slots,),
        "sign-ins waiting for a check, per slot (beyond: `503` with `Retry-After: 1`, at once)":
            (passwords.WAITING_PER_SLOT,),
    }
