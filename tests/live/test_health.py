"""`/healthz`, as a load balancer reads it: 200 while the node should get readers, 503 when
not (database gone or stale, every stream slot taken, the log not followed), and a broker
that is down only `degraded`."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ServerProcess, Site, missing_service
from fastapi.testclient import TestClient
from faultproxy import FaultProxy
from live_helpers import Api, InProcessServer, as_triples, serve, wait_for  # noqa: F401 - serve is a fixture
from sqlalchemy import text
from sse_client import SSEStream

FRESH = 1.1  # an answer is reused for a second


def health(client: TestClient | httpx.Client, base: str = "") -> tuple[int, dict[str, Any]]:
    response = client.get(base + "/healthz")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def test_a_node_that_can_serve_says_so_with_its_figures(client: TestClient, site: Site, live_story: str) -> None:
    status, body = health(client)
    assert status == 200 and body["status"] == "ok" and body["problems"] == []
    assert body["database"]["reachable"] and body["database"]["schema"] == body["database"]["schema_needed"]
    assert body["broker"] == {"kind": "local", "connected": True}
    assert body["readers"]["held"] == 0 and body["readers"]["limit"] >= 16
    queries = body["database"]["queries"]  # statements this process has sent, so far
    assert set(body["window"]) == {"events", "bytes", "replays_from_memory", "replays_from_the_log"}
    posted = client.post(f"/api/v1/stories/{live_story}/entries", json={"kind": "text", "body": "Counted"},
                         headers=site.auth("rita"))
    assert posted.status_code == 201, posted.text
    newest = client.get(f"/api/v1/stories/{live_story}/events").json()["events"][-1]["id"]

    def caught_up() -> bool:
        _, body = health(client)
        return bool(body["events"]["log_last_id"] >= newest and body["events"]["lag"] == 0)
    wait_for(caught_up, what="the follower to read the new events")
    assert client.head("/healthz").status_code == 200
    assert health(client)[1]["database"]["queries"] > queries  # the post and the reads since


def test_a_database_behind_this_version_takes_the_node_out(client: TestClient, site: Site) -> None:
    """Someone restored an older backup under a running node: 503 until it is migrated."""
    with site.db.read() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    try:
        with site.db.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
        time.sleep(FRESH)
        status, body = health(client)
        assert status == 503 and body["status"] == "unavailable"
        assert body["problems"] == [f"the database's schema is 0007, this version needs {head}"]
    finally:
        with site.db.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    time.sleep(FRESH)
    assert health(client)[0] == 200


def test_a_node_holding_all_its_streams_asks_for_no_more_readers(
    site: Site, serve: Any
) -> None:
    server: InProcessServer = serve(max_streams=2)
    server.live.max_streams = 2  # the setting's floor is the process's files: hold it to two here
    api = Api(server.base_url, site)
    slug = api.story()
    with httpx.Client() as http:
        assert health(http, server.base_url)[0] == 200
        readers = [SSEStream(server.live_url(slug)) for _ in range(2)]
        try:
            wait_for(lambda: server.hub_count() == 2, what="both readers held")
            time.sleep(FRESH)
            status, body = health(http, server.base_url)
            assert status == 503 and body["readers"] == {"held": 2, "limit": 2}
            assert body["problems"] == ["this process holds all the streams it may (2)"]
        finally:
            for reader in readers:
                reader.close()
        wait_for(lambda: server.hub_count() == 0, what="the readers gone")
        time.sleep(FRESH)
        assert health(http, server.base_url)[0] == 200
    api.close()


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def proxies() -> Iterator[list[FaultProxy]]:
    started: list[FaultProxy] = []
    yield started
    for proxy in started:
        proxy.stop()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_cut_database_takes_the_node_out_and_a_cut_broker_only_degrades_it(
    postgres_database: tuple[str, dict[str, str]], proxies: list[FaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `dateline serve` reaching PostgreSQL and Redis through proxies that are cut in
    turn: writes and /healthz give 503 while the database is away, and both recover on their
    own once it is back; with Redis away the node still serves (200, degraded)."""
    if not _reachable(6379):
        missing_service("Redis is not reachable at 127.0.0.1:6379")
    url, tokens = postgres_database
    database = FaultProxy("127.0.0.1", 5432).start()
    redis = FaultProxy("127.0.0.1", 6379).start()
    proxies += [database, redis]
    through = url.replace(":5432/", f":{database.port}/", 1)
    monkeypatch.setenv("DATELINE_BROKER", redis.url("redis://127.0.0.1:{port}/0?channel=health-test"))
    monkeypatch.setenv("DATELINE_LIVE_POLL_SECONDS", "0.5")
    server = ServerProcess(through, None, "--workers", "1").start()
    site = Site(url, None, tokens)  # type: ignore[arg-type]  # only its tokens are used
    try:
        api = Api(server.base_url, site)
        slug = api.story()
        reader = SSEStream(f"{server.base_url}/stories/{slug}/live", headers={"Last-Event-ID": "0"})
        with httpx.Client(timeout=10) as http:
            assert health(http, server.base_url)[0] == 200

            redis.cut()
            wait_for(lambda: health(http, server.base_url)[1]["status"] == "degraded", what="degraded")
            status, body = health(http, server.base_url)
            assert status == 200 and body["broker"] == {"kind": "redis", "connected": False}
            api.post(slug, "Posted while the broker is away")  # the node still takes posts
            redis.restore()
            wait_for(lambda: health(http, server.base_url)[1]["status"] == "ok", timeout=20, what="ok again")

            database.cut()
            wait_for(lambda: health(http, server.base_url)[0] == 503, what="503 without the database")
            _, body = health(http, server.base_url)
            assert not body["database"]["reachable"], body
            refused = http.post(f"{server.base_url}/api/v1/stories/{slug}/entries", headers=site.auth("rita"),
                                json={"kind": "text", "body": "Posted while the database is away"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            database.restore()
            wait_for(lambda: health(http, server.base_url)[0] == 200, timeout=30, what="200 with the database back")
            api.post(slug, "Posted once it is back")
            # Every acknowledged post is there once; the refused one is not.
            bodies = [str(e) for e in api.events(slug) if e["type"] == "entry.created"]
            assert [sum("Posted while the broker is away" in b for b in bodies),
                    sum("Posted once it is back" in b for b in bodies),
                    sum("Posted while the database is away" in b for b in bodies)] == [1, 1, 0], bodies
        # The reader's stream stayed open through both cuts and has every event once, in order.
        expected = api.events(slug)
        assert as_triples(reader.events_until(expected[-1]["id"], timeout=20)) == as_triples(expected)
        reader.close()
        api.close()
    finally:
        server.stop()
