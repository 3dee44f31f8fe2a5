"""The live stream of a real `dateline serve`: several worker processes, a crash, the env.

Each test starts the server as an operator does (`ServerProcess` from the root conftest) on the
test's database, reads streams over sockets, and compares with the catch-up API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import ServerProcess, Site
from dateline.accounts import users as accounts
from dateline.stories import entries, story as stories
from live_helpers import Api, as_triples, connection_owner, group_pids
from sse_client import Comment, Event, SSEStream

pytestmark = pytest.mark.slow


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Servers a test starts; stopped at the end (SIGTERM: their broker sockets are removed)."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_every_reader_on_every_worker_gets_every_event(
    site: Site, servers: list[ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers 2, each polling the log only every 30 s: readers of the worker that did not
    take a post learn of it from the other worker's nudge (LocalBroker), well within 20 s."""
    monkeypatch.setenv("DATELINE_LIVE_POLL_SECONDS", "30")
    monkeypatch.setenv("DATELINE_BROKER", "local")
    server = ServerProcess(site.url, None, "--workers", "2").start()
    servers.append(server)
    api = Api(server.base_url, site)
    slug = api.story()
    start = api.newest_id(slug)
    readers: list[SSEStream] = []
    owners: dict[int, int] = {}
    try:
        # Open readers until both workers hold some: which one accepts is up to the kernel,
        # and the second worker may still be starting.
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and len(readers) < 300:
            reader = SSEStream(f"{server.base_url}/stories/{slug}/live", headers={"Last-Event-ID": str(start)})
            readers.append(reader)
            assert reader.status == 200
            client_port = reader.sock.getsockname()[1]
            deadline = time.monotonic() + 10
            while (pid := connection_owner(server.process.pid, server.port, client_port)) is None:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "cannot tell which worker holds a reader"
                time.sleep(0.02)
            owners[client_port] = pid
            if len(readers) >= 4 and len(set(owners.values())) >= 2:
                break
            time.sleep(0.05)
        assert len(set(owners.values())) == 2, f"all readers landed on one worker: {owners}"
        assert len(group_pids(server.process.pid)) >= 3  # type: ignore[union-attr]  # supervisor + 2

        # Posts through the API, each on a new connection (so on either worker).
        posted = []
        for i in range(12):
            response = httpx.post(f"{server.base_url}/api/v1/stories/{slug}/entries",
                                  json={"body": f"Update {i}"}, headers=site.auth("rita"), timeout=30)
            assert response.status_code == 201, response.text
            posted.append(response.json())
        expected = api.events(slug, after=start)
        assert [e["data"] for e in expected] == posted
        for reader in readers:
            got = reader.events(len(expected), timeout=20)
            assert as_triples(got) == as_triples(expected), f"reader on worker {owners[reader.sock.getsockname()[1]]}"
    finally:
        for reader in readers:
            reader.close()
        api.close()


def _write_while_down(site: Site, slug: str, other: str, doomed: int) -> None:
    """The newsroom keeps writing to the database while the server is down (another node,
    a script): the domain functions, straight on the database."""
    with site.db.write() as conn:
        story = stories.get_story(conn, slug)
        rita = accounts.get_user(conn, "rita")
        assert story is not None and rita is not None
        first = entries.create_entry(conn, story, rita, kind="text", body="Written while down", fields={})
    with site.db.write() as conn:
        story = stories.get_story(conn, slug)
        eve = accounts.get_user(conn, "eve")
        assert story is not None and eve is not None
        row = entries.get_entry(conn, story.id, first["id"])
        entries.update_entry(conn, story, row, eve, {"body": "Written while down, edited"})
    with site.db.write() as conn:
        story = stories.get_story(conn, slug)
        assert story is not None
        entries.delete_entry(conn, story, entries.get_entry(conn, story.id, doomed))
        stories.update_story(conn, story, {"summary": "Updated while the site was down"})
    with site.db.write() as conn:
        other_story = stories.get_story(conn, other)
        rita = accounts.get_user(conn, "rita")
        assert other_story is not None and rita is not None
        entries.create_entry(conn, other_story, rita, kind="text", body="Elsewhere", fields={})


def test_reader_resumes_after_a_crash_and_restart(site: Site, servers: list[ServerProcess]) -> None:
    server = ServerProcess(site.url, None, "--workers", "2").start()
    servers.append(server)
    api = Api(server.base_url, site)
    slug, other = api.story(), api.story()
    posted = [api.post(slug, f"Before the crash {i}") for i in range(3)]
    url = f"{server.base_url}/stories/{slug}/live"
    reader = SSEStream(url, headers={"Last-Event-ID": "0"})
    seen = reader.events_until(api.newest_id(slug))
    api.close()

    server.kill()  # SIGKILL to every process: no shutdown handler runs
    leftover = reader.read_to_end(timeout=15)  # the connection dies with the server
    reader.close()
    seen += [item for item in leftover if isinstance(item, Event)]
    last = reader.parser.last_event_id
    assert last == str(seen[-1].id)

    _write_while_down(site, slug, other, doomed=posted[0]["id"])

    again = ServerProcess(site.url, server.port, "--workers", "2").start()  # same address
    servers.append(again)
    api = Api(again.base_url, site)
    try:
        with SSEStream(url, headers={"Last-Event-ID": last}) as resumed, SSEStream(url) as newcomer:
            missed = api.events(slug, after=int(last))
            assert [e["type"] for e in missed] == [
                "entry.created", "entry.updated", "entry.deleted", "story.updated"
            ]
            got = resumed.events(len(missed))
            assert as_triples(got) == as_triples(missed)
            live = api.post(slug, "Back online")
            got.append(resumed.next_event())
            assert got[-1].json() == live
            # A reader without an id starts from now: not from the old events, restart or not.
            assert newcomer.next_event().json() == live
        # Nothing missed overall: what the reader saw before and after the crash is the log.
        whole = [e["id"] for e in api.events(slug)]
        received = [e.id for e in seen + got]
        assert set(whole) <= set(received)
        assert received == sorted(set(received))  # strictly increasing: no duplicate
    finally:
        api.close()


def test_heartbeat_setting_from_the_environment(
    site: Site, servers: list[ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATELINE_HEARTBEAT_SECONDS", "1")
    server = ServerProcess(site.url, None, "--workers", "1").start()
    servers.append(server)
    api = Api(server.base_url, site)
    slug = api.story()
    api.close()
    with SSEStream(f"{server.base_url}/stories/{slug}/live") as stream:
        beats = 0
        while beats < 2:  # two keep-alives on an idle stream (a story event may come first)
            item = stream.next_item(timeout=15)
            if item == Comment(""):
                beats += 1
            else:
                assert item == Comment(" live") or (isinstance(item, Event) and item.type == "story.created")
