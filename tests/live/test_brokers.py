"""How one process learns that another has written: the LocalBroker's nudge, for real.

Two `Live` instances in this process stand for two server processes: each has its own
`Database` object (its own connections and commit listeners) on the same database, and its
follower polls only every 30 s. A commit made through one can only reach the other's readers
within the test's deadline through the broker's Unix datagram socket.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Site
from dateline.accounts import users as accounts
from dateline.stories import entries, events, story as stories
from dateline.config import Settings
from dateline.db import Database
from dateline.live import Live
from dateline.live.brokers import LocalBroker
from sse_client import Event, parse

POLL = 30.0  # the followers' own poll: far beyond every deadline below
DEADLINE = 10.0  # a nudge takes milliseconds; this only bounds a failing test


class Recorder:
    """A reader of one story, as the hub sees one: keeps every frame handed to it."""

    def __init__(self, story_id: int) -> None:
        self.story_id = story_id
        self.frames: list[tuple[int, bytes]] = []
        self.arrived = asyncio.Event()

    def deliver(self, event_id: int, frame: bytes, public: bool = True, chunk: bytes = b"") -> None:
        if not public:
            return  # newsroom-only events are not for a reader
        self.frames.append((event_id, frame))
        self.arrived.set()

    def push(self, frame: bytes) -> None:
        pass  # heartbeats

    def close(self) -> None:
        pass

    def events(self) -> list[Event]:
        items, _ = parse(b"".join(frame for _, frame in self.frames))
        return [i for i in items if isinstance(i, Event)]


def _post(db: Database, slug: str, body: str) -> dict[str, Any]:
    with db.write() as conn:
        story = stories.get_story(conn, slug)
        user = accounts.get_user(conn, "rita")
        assert story is not None and user is not None
        return entries.create_entry(conn, story, user, kind="text", body=body, fields={})


def _newest(db: Database) -> int:
    with db.read() as conn:
        return events.last_id(conn)


async def _caught_up(live: Live, newest: int) -> None:
    while live.follower.last_id < newest:
        await asyncio.sleep(0.01)


def test_a_commit_through_one_database_wakes_the_other_process_follower(site: Site) -> None:
    with site.db.write() as conn:
        story = stories.create_story(conn, headline="Floods", slug="floods", status="live")
    settings = Settings.from_env({}, database_url=site.url, live_poll_seconds=POLL, broker="local")

    async def scenario() -> None:
        db_b = Database(site.url)
        live_a, live_b = Live(site.db, settings), Live(db_b, settings)
        assert isinstance(live_a.broker, LocalBroker) and isinstance(live_b.broker, LocalBroker)
        await live_a.start()
        await live_b.start()
        try:
            for writer, reader_live, body in ((site.db, live_b, "Through A"), (db_b, live_a, "Through B")):
                # Whatever this process still has to publish from earlier writes goes first.
                newest = await asyncio.to_thread(_newest, reader_live.db)
                await asyncio.wait_for(_caught_up(reader_live, newest), DEADLINE)
                reader = Recorder(story.id)
                reader_live.hub.add(reader)
                entry = await asyncio.to_thread(_post, writer, "floods", body)
                await asyncio.wait_for(reader.arrived.wait(), DEADLINE)
                reader_live.hub.remove(reader)
                (event,) = reader.events()
                assert (event.type, event.json()) == ("entry.created", entry)
                assert reader.frames[0][0] == event.id
        finally:
            await live_a.stop()
            await live_b.stop()
            db_b.dispose()

    asyncio.run(scenario())


@pytest.fixture
def broker_folder() -> Iterator[Path]:
    """A short folder of its own for the brokers' sockets: a Unix socket's path has at most
    107 bytes, and pytest's tmp_path (longer under pytest-xdist: .../popen-gw0/...) plus the
    broker's key and socket name can exceed that ("AF_UNIX path too long")."""
    folder = Path(tempfile.mkdtemp(prefix="dlb-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_local_broker_nudges_peers_and_cleans_up_after_the_dead(tmp_path: Path, broker_folder: Path) -> None:
    url = f"sqlite:///{tmp_path}/one.db"

    async def scenario() -> None:
        nudges = {"a": asyncio.Event(), "b": asyncio.Event()}
        a, b = LocalBroker(url, folder=broker_folder), LocalBroker(url, folder=broker_folder)
        elsewhere = LocalBroker(f"sqlite:///{tmp_path}/other.db", folder=broker_folder)
        assert len(str(a.path)) < 100, a.path
        assert a.folder == b.folder != elsewhere.folder  # one folder per database
        await a.start(nudges["a"].set)
        await b.start(nudges["b"].set)
        # A process killed without cleaning up left its socket behind.
        stale = a.folder / "4242-deadbeef.sock"
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(stale))
        dead.close()
        try:
            await asyncio.to_thread(a.announce)  # from a writing thread, as after a commit
            await asyncio.wait_for(nudges["b"].wait(), DEADLINE)
            assert not stale.exists()
            await asyncio.to_thread(b.announce)
            await asyncio.wait_for(nudges["a"].wait(), DEADLINE)
            sent = a.sent
            for _ in range(1000):  # a flood of commits: one round of nudges, sent by the loop
                a.announce()
            await asyncio.sleep(0.05)
            assert a.sent == sent + 1
        finally:
            await a.close()
            assert not a.path.exists() and b.path.exists()
            await b.close()
            await elsewhere.close()
        assert not b.folder.exists()  # the last one out removes the folder
        b.announce()  # after close, from a late commit: nothing happens

    asyncio.run(scenario())


def test_a_process_takes_no_more_streams_than_it_can_open_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its open-file limit a process cannot even accept a connection to say "come back
    later": the cap stays 256 files below that limit, whatever DATELINE_MAX_STREAMS says."""
    import resource

    from dateline import live

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert live.stream_room() == 768
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert live.stream_room() > 15_000
