"""Web Push from several nodes at once: `dateline serve` processes sharing one PostgreSQL
database, each with its own sender, as separate machines would run them.

Processes on one machine hear each other through the `local` broker, as nodes on separate
machines do through theirs: the nudge is the same. A thread samples the outbox while a
fan-out runs and notes which sender holds which batch (a delivery in flight is a row owned by
its sender: "host:pid:…"), so the tests can tell who sent what, and when each started.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ServerProcess, Site
from push_service import Browser, PushService
from sqlalchemy import create_engine, func, select
from test_delivery import FOLLOWERS, fill, wait_for

from dateline.db import normalize_url
from dateline.push.sender import BATCH, LANES
from dateline.schema import push_deliveries, push_subscriptions, rate_counters

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SERVERS = 3
ENV = {"DATELINE_PUSH_TEST_ENDPOINTS": "1", "DATELINE_PUSH_LEASE_SECONDS": "2"}
LONG_POLL = {"DATELINE_LIVE_POLL_SECONDS": "30"}  # only a nudge wakes a sender within a test's time
NUDGED_WITHIN = 5.0  # seconds: the senders poll every 30 s here, so only a nudge is this quick (bounded loosely: CI shares its cores)


class Outbox(threading.Thread):
    """Looks at the deliveries in flight every few milliseconds: for each sender, when it was
    first seen holding a batch, and the batches it held. A batch is known by its place in the
    fan-out: the tests' followers have consecutive ids, and a claim takes the next BATCH of
    them, so each of a sender's batches in flight is seen (it holds up to LANES at once)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(normalize_url(url))
        self.first_seen: dict[str, float] = {}
        self.batches: dict[str, set[int]] = defaultdict(set)
        self.holding: set[str] = set()  # in the latest sample
        self._halt = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            first = conn.execute(select(func.min(push_subscriptions.c.id))).scalar_one()  # started after `fill`
            place = (push_deliveries.c.subscription_id - first) // BATCH
            query = (select(push_deliveries.c.owner, place).where(push_deliveries.c.state == "sending")
                     .group_by(push_deliveries.c.owner, place))
            while not self._halt.is_set():
                rows = conn.execute(query).all()
                conn.rollback()  # a fresh snapshot each time, and no transaction left open
                now = time.monotonic()
                for owner, batch in rows:
                    self.first_seen.setdefault(owner, now)
                    self.batches[owner].add(int(batch))
                self.holding = {owner for owner, _ in rows}
                time.sleep(0.005)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.engine.dispose()

    def of(self, server: ServerProcess) -> str | None:
        """The owner name of a server's sender (`dateline serve --workers 1`: its own pid)."""
        assert server.process is not None
        return next((o for o in self.first_seen if o.split(":")[-2] == str(server.process.pid)), None)


def start_servers(url: str, count: int, env: dict[str, str]) -> list[ServerProcess]:
    servers = [ServerProcess(url, None, "--workers", "1", env=env) for _ in range(count)]
    started = []
    try:
        for server in servers:
            started.append(server.start())
    except BaseException:
        for server in started:
            server.stop()
        raise
    return servers


def notify(api: httpx.Client, slug: str) -> int:
    created = api.post(f"/api/v1/stories/{slug}/entries",
                       json={"kind": "text", "body": "Turnout passed 60%.", "notify": True})
    assert created.status_code == 201, created.text
    return int(created.json()["notification"])


def finished(api: httpx.Client, slug: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        note = api.get(f"/api/v1/stories/{slug}/notifications").json()["notifications"][0]
        return note if note["finished_at"] else None
    return wait_for(done, timeout=timeout, what="the fan-out to finish")  # type: ignore[no-any-return]


def received(service: PushService, subs: list[dict[str, Any]]) -> Counter[str]:
    return Counter({s["endpoint"]: len(service.messages(s)) for s in subs})


@pytest.fixture
def service() -> Iterator[PushService]:
    running = PushService(delay=0.02).start()  # 16 at a time a sender, 20 ms each: a fan-out of seconds
    yield running
    running.stop()


def test_three_nodes_share_one_fan_out_and_each_subscriber_gets_it_once(pg_site: Site, service: PushService) -> None:
    servers = start_servers(pg_site.url, SERVERS, ENV)
    outbox = Outbox(pg_site.url)
    try:
        with httpx.Client(base_url=servers[0].base_url, headers=pg_site.auth("eve"), timeout=10) as api:
            slug = api.post("/api/v1/stories", json={"headline": "Count night", "status": "live"}).json()["slug"]
            subs = fill(pg_site, service, slug)
            outbox.start()
            # The answers wait until every node holds a batch. Two nodes hold four of the six
            # (two lanes each), so the third must claim one; were the answers let through, a
            # node woken late on a loaded machine could find the fan-out already done.
            service.hold()
            notification = notify(api, slug)
            try:
                wait_for(lambda: all(outbox.of(server) for server in servers), timeout=30,
                         what="every node to claim a batch")
            finally:
                service.release()
            note = finished(api, slug)
        owners = [outbox.of(server) for server in servers]
    finally:
        outbox.stop()
        for server in servers:
            server.stop()
    counts = received(service, subs)
    assert service.errors == []
    assert sorted(set(counts.values())) == [1], "every subscriber got it, and nobody twice"
    assert (note["sent"], note["failed"]) == (FOLLOWERS, 0)
    assert None not in owners, f"every node took part: {dict(outbox.batches)}"
    held = [batch for o in owners if o for batch in outbox.batches[o]]
    assert sorted(held) == list(range(FOLLOWERS // BATCH)), f"six batches, none claimed twice: {dict(outbox.batches)}"
    ids = {m["id"] for s in subs for m in service.messages(s) if m}
    assert ids == {notification}


def test_a_node_killed_mid_fan_out_resends_only_its_batch_in_flight(pg_site: Site, service: PushService) -> None:
    servers = start_servers(pg_site.url, SERVERS, ENV)
    victim = servers[1]
    outbox = Outbox(pg_site.url)
    try:
        with httpx.Client(base_url=servers[0].base_url, headers=pg_site.auth("eve"), timeout=10) as api:
            slug = api.post("/api/v1/stories", json={"headline": "Count night", "status": "live"}).json()["slug"]
            subs = fill(pg_site, service, slug)
            outbox.start()
            notify(api, slug)
            # Kill it while it holds a batch, once the fan-out is well under way.
            wait_for(lambda: service.requests >= 600 and (o := outbox.of(victim)) in outbox.holding and o,
                     what="the victim to hold a batch mid-fan-out")
            victim.kill()
            time.sleep(0.2)  # its connections' transactions are rolled back; its lease runs 2 s
            owner = outbox.of(victim)
            with pg_site.db.read() as conn:
                in_flight = set(conn.execute(select(push_deliveries.c.subscription_id).where(
                    push_deliveries.c.owner == owner, push_deliveries.c.state == "sending")).scalars())
            assert service.requests < FOLLOWERS, "the kill came in the middle of the fan-out"
            note = finished(api, slug)
    finally:
        outbox.stop()
        for server in servers:
            server.stop()
    assert 0 < len(in_flight) <= LANES * BATCH, "its batches in flight at the kill (one a lane), no more"
    with pg_site.db.read() as conn:
        by_endpoint = {e: i for i, e in conn.execute(select(push_subscriptions.c.id, push_subscriptions.c.endpoint))}
    counts = received(service, subs)
    assert service.errors == []
    assert min(counts.values()) >= 1, "every subscriber got it"
    assert max(counts.values()) <= 2
    twice = {by_endpoint[e] for e, n in counts.items() if n > 1}
    assert twice <= in_flight, "only the killed node's batches in flight went twice"
    assert (note["sent"], note["failed"]) == (FOLLOWERS, 0), "each counted once"


def test_a_notification_queued_on_one_node_starts_on_every_node_at_once(pg_site: Site, service: PushService) -> None:
    """The senders poll only every 30 s: the others can start within the deadline only
    because the broker's nudge wakes them."""
    servers = start_servers(pg_site.url, SERVERS, {**ENV, **LONG_POLL})
    outbox = Outbox(pg_site.url)
    try:
        with httpx.Client(base_url=servers[0].base_url, headers=pg_site.auth("eve"), timeout=10) as api:
            slug = api.post("/api/v1/stories", json={"headline": "Count night", "status": "live"}).json()["slug"]
            subs = fill(pg_site, service, slug)
            outbox.start()
            time.sleep(0.5)  # every sender has looked once at start-up and gone to sleep for 30 s
            posted = time.monotonic()
            notify(api, slug)
            finished(api, slug, timeout=25)
        started = {i: outbox.first_seen[o] - posted for i, s in enumerate(servers) if (o := outbox.of(s))}
    finally:
        outbox.stop()
        for server in servers:
            server.stop()
    assert sorted(set(received(service, subs).values())) == [1]
    assert set(started) == {0, 1, 2}, f"every node took part: {started}"
    assert max(started.values()) < NUDGED_WITHIN, f"seconds from the post to each node's first batch: {started}"


def test_the_subscription_limit_holds_across_processes(site: Site) -> None:
    """30 changes a minute from one address, however many servers they are spread over."""
    with site.db.write() as conn:
        conn.execute(rate_counters.delete())  # earlier tests' counts (the PostgreSQL database is shared)
    servers = start_servers(site.url, 2, {})
    browser = Browser.new()
    keys = {"p256dh": browser.public(), "auth": browser.auth_b64()}
    endpoint = "https://updates.push.services.mozilla.com/wpush/v2/gAAAAAB"
    try:
        with httpx.Client(base_url=servers[0].base_url, timeout=10) as a, \
                httpx.Client(base_url=servers[1].base_url, timeout=10) as b:
            slug = a.post("/api/v1/stories", json={"headline": "Count night", "status": "live"},
                          headers=site.auth("eve")).json()["slug"]
            answers = [(a, b)[n % 2].post("/api/v1/push/subscriptions",
                                         json={"endpoint": f"{endpoint}{n}", "keys": keys, "story": slug})
                       for n in range(31)]  # one address, every other change through the other server
            refused = b.request("DELETE", "/api/v1/push/subscriptions", json={"endpoint": f"{endpoint}0", "story": slug})
    finally:
        for server in servers:
            server.stop()
    assert [r.status_code for r in answers] == [201] * 30 + [429]
    for answer in (answers[-1], refused):
        assert answer.status_code == 429 and 0 < int(answer.headers["retry-after"]) <= 60
        assert answer.headers["content-type"] == "application/problem+json"
