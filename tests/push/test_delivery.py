"""Sending notifications: through a local push service that checks VAPID and decrypts every
message with an independent implementation, including its failures, and across restarts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import ServerProcess, Site, table_counts
from dateline.config import Settings
from dateline.app import create_app
from dateline.stories import story as stories
from dateline.push import subscriptions
from dateline.push.sender import BATCH, LANES
from dateline.schema import push_deliveries, push_subscriptions, rate_counters
from push_service import PushService


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service() -> Iterator[PushService]:
    running = PushService().start()
    yield running
    running.stop()


@pytest.fixture
def client(site: Site, settings: Settings, service: PushService) -> Iterator[TestClient]:
    with site.db.write() as conn:
        service.vapid_public_key = subscriptions.ensure_key(conn)
        conn.execute(rate_counters.delete())  # earlier tests' subscription changes (PostgreSQL is shared)
    test_settings = Settings.from_env({}, database_url=site.url, media_dir=settings.media_dir, push_test_endpoints=True)
    with TestClient(create_app(test_settings, site.db), raise_server_exceptions=False) as test_client:
        yield test_client


def follow(client: TestClient, service: PushService, story: str, behaviour: str = "ok") -> dict[str, Any]:
    sub = service.subscribe(behaviour)
    assert client.post("/api/v1/push/subscriptions", json={**sub, "story": story}).status_code == 201
    return sub


def post(client: TestClient, site: Site, slug: str, persona: str = "eve", **fields: Any) -> httpx.Response:
    body = {"kind": "text", "body": "Police have closed **Unity Bridge** in both directions.", **fields}
    return client.post(f"/api/v1/stories/{slug}/entries", json=body, headers=site.auth(persona))


def progress(client: TestClient, site: Site, slug: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/stories/{slug}/notifications", headers=site.auth("rita"))
    assert response.status_code == 200, response.text
    return response.json()["notifications"][0]


def finished(client: TestClient, site: Site, slug: str) -> dict[str, Any]:
    return wait_for(lambda: (p := progress(client, site, slug))["finished_at"] and p, what="the fan-out to finish")


def test_a_notified_post_reaches_each_follower_once_and_decrypts(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    story_followers = [follow(client, service, live_story) for _ in range(3)]
    site_followers = [follow(client, service, "site") for _ in range(2)]
    both = follow(client, service, live_story)
    assert client.post("/api/v1/push/subscriptions", json={**both, "story": "site"}).status_code == 201
    other = client.post("/api/v1/stories", json={"headline": "Budget vote", "status": "live"},
                        headers=site.auth("eve")).json()["slug"]
    elsewhere = follow(client, service, other)

    created = post(client, site, live_story, notify=True)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert isinstance(entry["notification"], int)
    done = finished(client, site, live_story)
    assert (done["recipients"], done["sent"], done["failed"], done["removed"]) == (6, 6, 0, 0)
    assert service.errors == []
    for sub in [*story_followers, *site_followers, both]:
        [message] = service.messages(sub)  # the one following story and site gets it once
        assert message is not None
        assert message["title"] == "Second night of protests"
        assert message["body"] == "Police have closed Unity Bridge in both directions."
        assert message["url"] == f"/stories/{live_story}/entries/{entry['id']}"
        assert message["story"] == live_story and message["id"] == entry["notification"]
    assert service.messages(elsewhere) == []
    headers = service.deliveries[both["endpoint"].rsplit("/", 1)[1]][0].headers
    assert headers["urgency"] == "high" and int(headers["ttl"]) == 21600
    assert headers["topic"].startswith("story-"), "a newer notification replaces an undelivered one"


def test_posts_without_notify_send_nothing(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    sub = follow(client, service, live_story)
    assert post(client, site, live_story).status_code == 201
    assert post(client, site, live_story, notify=False).status_code == 201
    # Nothing was queued for them: the outbox is written in the post's own transaction.
    assert client.get(f"/api/v1/stories/{live_story}/notifications", headers=site.auth("eve")).json() == {
        "notifications": []}
    # A later notified post is a marker: once the sender has delivered it, it has gone past
    # the two before, and the follower must have received that one message alone.
    marker = post(client, site, live_story, notify=True, body="The bridge has reopened.")
    assert marker.status_code == 201, marker.text
    done = finished(client, site, live_story)
    assert (done["recipients"], done["sent"]) == (1, 1)
    [message] = service.messages(sub)
    assert message["id"] == marker.json()["notification"] and message["body"] == "The bridge has reopened."
    assert len(client.get(f"/api/v1/stories/{live_story}/notifications", headers=site.auth("eve")).json()[
        "notifications"]) == 1


def test_only_editors_notify_and_only_for_live_stories(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    before = table_counts(site.db)
    refused = post(client, site, live_story, persona="rita", notify=True)
    assert refused.status_code == 403 and "notify readers" in refused.json()["detail"]
    draft = client.post("/api/v1/stories", json={"headline": "Embargoed"}, headers=site.auth("eve")).json()["slug"]
    before = table_counts(site.db)
    conflict = post(client, site, draft, notify=True)
    assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
    assert table_counts(site.db) == before, "the refused post left nothing half-written"
    assert client.get(f"/api/v1/stories/{live_story}/notifications").status_code == 401


def test_a_gone_subscription_is_deleted(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    keep = follow(client, service, live_story)
    gone = follow(client, service, live_story, "gone")
    assert post(client, site, live_story, notify=True).status_code == 201
    done = finished(client, site, live_story)
    assert (done["sent"], done["removed"], done["failed"]) == (1, 1, 0)
    with site.db.read() as conn:
        endpoints = set(conn.execute(select(push_subscriptions.c.endpoint)).scalars())
    assert endpoints == {keep["endpoint"]}, "410 deleted the subscription, and only it"
    assert gone["endpoint"] not in endpoints


@pytest.mark.parametrize("behaviour", ["throttled", "flaky"])
def test_429_and_5xx_are_retried_after_retry_after(
    client: TestClient, site: Site, live_story: str, service: PushService, behaviour: str,
) -> None:
    sub = follow(client, service, live_story, behaviour)
    assert post(client, site, live_story, notify=True).status_code == 201
    browser = service.browsers[sub["endpoint"].rsplit("/", 1)[1]]
    wait_for(lambda: browser.answered >= 1, what="the first try")
    first = browser.first_answered_at  # the refusal, not when this loop saw it
    still = progress(client, site, live_story)
    assert still["finished_at"] is None and still["sent"] == 0, "a refused try is not counted as sent"
    done = finished(client, site, live_story)
    [delivery] = service.deliveries[sub["endpoint"].rsplit("/", 1)[1]]
    assert delivery.at - first >= 0.9, "the retry waited for Retry-After (1 s)"
    assert (done["sent"], done["failed"]) == (1, 0) and service.errors == []
    with site.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(push_deliveries)).scalar_one() == 0


def test_other_errors_are_recorded_for_the_editors(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    sub = follow(client, service, live_story)
    service.vapid_public_key = "B" + "A" * 86  # the service expects another key: it refuses (401)
    assert post(client, site, live_story, notify=True).status_code == 201
    done = finished(client, site, live_story)
    assert (done["sent"], done["failed"]) == (0, 1)
    assert done["last_error"].startswith("401 from 127.0.0.1")
    assert service.messages(sub) == []


FOLLOWERS = 3000


def fill(site: Site, service: PushService, slug: str, count: int = FOLLOWERS) -> list[dict[str, Any]]:
    """Many followers at once, straight into the database (sharing a few key pairs)."""
    shared = [service.subscribe() for _ in range(4)]
    keys = [service.browsers[s["endpoint"].rsplit("/", 1)[1]] for s in shared]
    subs = shared + [service.subscribe(browser=keys[i % 4]) for i in range(count - 4)]
    with site.db.write() as conn:
        service.vapid_public_key = subscriptions.ensure_key(conn)
        story = stories.get_story(conn, slug)
        assert story is not None
        for sub in subs:
            subscriptions.subscribe(conn, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], story.id)
    return subs


def test_deleting_the_update_stops_its_notification(
    client: TestClient, site: Site, live_story: str, service: PushService,
) -> None:
    service.delay = 0.05  # slow enough for the delete to land mid-way
    # More than one batch a lane: the sender has claimed only some of them when the delete lands.
    followers = fill(site, service, live_story, LANES * BATCH + 800)
    entry = post(client, site, live_story, notify=True).json()
    wait_for(lambda: service.requests >= 100, what="the fan-out to start")
    assert client.delete(f"/api/v1/stories/{live_story}/entries/{entry['id']}", headers=site.auth("eve")).status_code == 204
    done = finished(client, site, live_story)
    assert done["last_error"] == "Stopped: the update was deleted."
    reached = sum(1 for sub in followers if service.messages(sub))
    assert reached == done["sent"] < len(followers)


# --- restarts in the middle of a big fan-out --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", ["graceful", "crash"])
def test_a_restart_mid_fanout_loses_nothing(site: Site, how: str) -> None:
    """A graceful restart (SIGTERM) sends every follower exactly one message. A crash
    (SIGKILL of every server process) still loses none; only deliveries in flight at the
    crash, whose answers were never recorded, may go twice, all with the same id and Topic,
    so the service worker shows them once."""
    service = PushService(delay=0.02).start()  # 16 at a time, 20 ms each: a fan-out of seconds
    env = {"DATELINE_PUSH_TEST_ENDPOINTS": "1", "DATELINE_PUSH_LEASE_SECONDS": "2"}
    workers = "1" if how == "graceful" else "2"
    server = ServerProcess(site.url, None, "--workers", workers, env=env).start()
    try:
        with httpx.Client(base_url=server.base_url, headers=site.auth("eve"), timeout=10) as api:
            slug = api.post("/api/v1/stories", json={"headline": "Count night", "status": "live"}).json()["slug"]
            subs = fill(site, service, slug)
            created = api.post(f"/api/v1/stories/{slug}/entries",
                               json={"kind": "text", "body": "Turnout passed 60%.", "notify": True})
            assert created.status_code == 201, created.text
            notification = created.json()["notification"]
            wait_for(lambda: service.requests >= 600, what="the fan-out to be well under way")
            if how == "crash":
                server.kill()  # no shutdown handler runs
            server.stop()
            at_stop = service.requests
            assert at_stop < FOLLOWERS, "the restart came in the middle of the fan-out"
            server = ServerProcess(site.url, server.port, "--workers", workers, env=env).start()

            def done() -> dict[str, Any] | None:
                note = api.get(f"/api/v1/stories/{slug}/notifications").json()["notifications"][0]
                return note if note["finished_at"] else None

            note = wait_for(done, timeout=60, what="the fan-out to finish after the restart")
    finally:
        server.stop()
        service.stop()
    counts = Counter({s["endpoint"]: len(service.messages(s)) for s in subs})
    assert service.errors == []
    assert min(counts.values()) >= 1, "every follower got the notification"
    assert note["sent"] == FOLLOWERS and note["failed"] == 0
    twice = [e for e, n in counts.items() if n > 1]
    assert max(counts.values()) <= 2
    if how == "graceful":
        assert twice == [], "a graceful restart sends nobody the same notification twice"
    else:
        assert len(twice) <= 2 * 500, "only the batches in flight at the crash may go again"
    ids = {m["id"] for s in subs for m in service.messages(s) if m}
    assert ids == {notification}, "a message sent again is the same notification (same id, same Topic)"
