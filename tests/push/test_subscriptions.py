"""Subscribing to notifications: no account needed, and nothing that could aim our requests
at an internal address gets in."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import Site
from dateline.push import subscriptions
from dateline.push.webpush import b64u, public_bytes
from dateline.schema import push_subscriptions, rate_counters

ENDPOINT = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAAB"


@pytest.fixture(autouse=True)
def _no_earlier_counts(request: pytest.FixtureRequest) -> None:
    """The PostgreSQL database is shared by the tests of a worker: start each with no
    subscription changes counted against the test client's address."""
    if "site" in request.fixturenames:
        with request.getfixturevalue("site").db.write() as conn:
            conn.execute(rate_counters.delete())


def browser_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {"p256dh": b64u(public_bytes(key.public_key())), "auth": b64u(b"0123456789abcdef")}


def subscription(story: str, endpoint: str = ENDPOINT, **keys: str) -> dict[str, Any]:
    return {"endpoint": endpoint, "expirationTime": None, "keys": {**browser_keys(), **keys}, "story": story}


def count(site: Site) -> int:
    with site.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(push_subscriptions)).scalar_one())


def test_the_public_key_is_served_once_init_made_it(client: TestClient, site: Site) -> None:
    assert client.get("/api/v1/push/vapid-public-key").status_code == 503
    with site.db.write() as conn:
        public = subscriptions.ensure_key(conn)
    assert client.get("/api/v1/push/vapid-public-key").json() == {"public_key": public}
    with site.db.write() as conn:
        assert subscriptions.ensure_key(conn) == public, "init again keeps the key"
        rotated = subscriptions.create_key(conn)
    assert rotated != public and client.get("/api/v1/push/vapid-public-key").json()["public_key"] == rotated


def test_a_reader_subscribes_to_a_story_and_to_the_site(client: TestClient, site: Site, live_story: str) -> None:
    assert client.post("/api/v1/push/subscriptions", json=subscription(live_story)).status_code == 201
    assert client.post("/api/v1/push/subscriptions", json=subscription("site")).status_code == 201
    again = client.post("/api/v1/push/subscriptions", json=subscription(live_story))
    assert again.status_code == 201 and count(site) == 2, "subscribing twice keeps one"
    gone = client.request("DELETE", "/api/v1/push/subscriptions", json={"endpoint": ENDPOINT, "story": live_story})
    assert gone.status_code == 204 and count(site) == 1
    missing = client.request("DELETE", "/api/v1/push/subscriptions", json={"endpoint": ENDPOINT, "story": live_story})
    assert missing.status_code == 404


def test_only_live_stories_can_be_followed(client: TestClient, site: Site) -> None:
    draft = client.post("/api/v1/stories", json={"headline": "Embargoed"}, headers=site.auth("eve")).json()["slug"]
    for story in [draft, "no-such-story"]:
        assert client.post("/api/v1/push/subscriptions", json=subscription(story)).status_code == 404
    assert count(site) == 0


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://push.example.net/x", "ftp://push.example.net/x", "https://127.0.0.1/x", "https://localhost/x",
        "https://[::1]/x", "https://10.0.0.8/x", "https://192.168.1.1/x", "https://172.16.0.1/x",
        "https://169.254.169.254/latest/meta-data", "https://[fe80::1]/x", "https://0.0.0.0/x",
        "https://intranet/x", "https://printer.local/x", "https://user:pw@push.example.net/x",
        "https://push.example.net/" + "a" * 2100,
    ],
)
def test_endpoints_that_are_not_public_https_are_refused(client: TestClient, site: Site, live_story: str, endpoint: str) -> None:
    response = client.post("/api/v1/push/subscriptions", json=subscription(live_story, endpoint))
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert count(site) == 0


@pytest.mark.parametrize(
    "keys, words",
    [
        ({"p256dh": b64u(b"\x04" + b"\x01" * 64)}, "not a point"),
        ({"p256dh": b64u(b"\x04" + b"\x01" * 30)}, "65 bytes"),
        ({"auth": b64u(b"short")}, "16 bytes"),
        ({"auth": "!!not base64!!"}, "base64url"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(client: TestClient, site: Site, live_story: str, keys: dict[str, str], words: str) -> None:
    response = client.post("/api/v1/push/subscriptions", json=subscription(live_story, **keys))
    assert response.status_code == 422 and words in response.json()["detail"]
    assert count(site) == 0


def test_loopback_http_endpoints_only_with_the_test_setting() -> None:
    with pytest.raises(subscriptions.SubscriptionError):
        subscriptions.check_endpoint("http://127.0.0.1:9999/push/1")
    subscriptions.check_endpoint("http://127.0.0.1:9999/push/1", allow_test_endpoints=True)
    with pytest.raises(subscriptions.SubscriptionError):
        subscriptions.check_endpoint("http://10.0.0.1/push/1", allow_test_endpoints=True)


@pytest.mark.parametrize("endpoint, known", [
    ("https://fcm.googleapis.com/fcm/send/dXk2", True),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAA", True),
    ("https://web.push.apple.com/QGZ4", True),
    ("https://wns2-par02p.notify.windows.com/w/?token=BQYA", True),
    ("https://push.example.net/x", False),
    ("https://web.push.apple.com.attacker.example/x", False),
    ("https://fcm.googleapis.com.evil.example/x", False),
])
def test_only_the_browsers_push_services_by_default(endpoint: str, known: bool) -> None:
    if known:
        subscriptions.check_endpoint(endpoint)
    else:
        with pytest.raises(subscriptions.SubscriptionError, match="not a browser push service"):
            subscriptions.check_endpoint(endpoint)
        subscriptions.check_endpoint(endpoint, services=("*",))  # an operator who allows any public host


def test_one_address_cannot_flood_the_table(client: TestClient, site: Site, live_story: str) -> None:
    answers = [client.post("/api/v1/push/subscriptions",
                           json=subscription(live_story, f"{ENDPOINT}{n}")).status_code for n in range(31)]
    assert answers == [201] * 30 + [429]
    refused = client.post("/api/v1/push/subscriptions", json=subscription(live_story, ENDPOINT + "x"))
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"] == "application/problem+json"
    assert count(site) == 30
