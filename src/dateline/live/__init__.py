"""Live delivery: from the event log to every open reader, within a second.

One `Live` per server process: a `Follower` reads the log, a `Hub` knows who reads what,
a broker nudges the other processes, and `LiveEndpoint` serves /stories/{slug}/live.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from datetime import timedelta

from .. import events, sessions, stories
from ..config import Settings
from ..db import Database
from .brokers import Broker, broker_for
from .follower import Follower
from .hub import Hub
from .stream import REPLAY_BATCH, LiveEndpoint

__all__ = ["Live", "LiveEndpoint"]
log = logging.getLogger("dateline.live")


def stream_room() -> int:
    """How many streams this process can hold: each is an open file, and a process past its
    limit fails to accept connections instead of telling readers to come back later."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1_000_000_000 if soft == resource.RLIM_INFINITY else max(16, soft - 256)


class Live:
    def __init__(self, db: Database, settings: Settings, broker: Broker | None = None) -> None:
        self.db = db
        self.hub = Hub(heartbeat_seconds=settings.heartbeat_seconds)
        self.broker = broker or broker_for(settings.broker, settings.database_url)
        self.follower = Follower(db, self.hub, settings.live_poll_seconds, self._story_changed)
        self.max_streams = min(settings.max_streams, stream_room())
        self.max_pending = settings.stream_buffer_bytes
        self._story_ids: dict[str, int] = {}
        self._oldest: tuple[int, float] | None = None
        self._session_idle = timedelta(minutes=settings.session_idle_minutes)
        self._sessions_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.follower.start()
        await self.broker.start(self.follower.nudge)
        self.db.add_commit_listener(self._after_commit)
        self.hub.start()
        self._sessions_task = asyncio.get_running_loop().create_task(self._check_sessions(), name="live-sessions")

    async def stop(self) -> None:
        self.db.remove_commit_listener(self._after_commit)
        if self._sessions_task is not None:
            self._sessions_task.cancel()
        await self.hub.stop()
        await self.follower.stop()
        await self.broker.close()

    async def _check_sessions(self) -> None:
        """Newsroom streams end within a heartbeat once their session does (sign-out,
        disabled account, demotion, new password, expiry): they were let in by it."""
        while True:
            await asyncio.sleep(self.hub.heartbeat_seconds)
            streams = [s for readers in self.hub.stories.values() for s in readers if getattr(s, "session_id", None)]
            if not streams:
                continue
            try:
                alive = await asyncio.to_thread(self._open_sessions, {s.session_id for s in streams})
            except Exception as exc:  # noqa: BLE001 - the database is down: check next time
                log.warning("live: cannot check newsroom sessions (%s)", exc.__class__.__name__)
                continue
            for stream in streams:
                if stream.session_id not in alive:
                    stream.close()

    def _open_sessions(self, session_ids: set[str]) -> set[str]:
        with self.db.read() as conn:
            return sessions.still_open(conn, session_ids, self._session_idle)

    def _after_commit(self) -> None:
        self.follower.nudge_threadsafe()
        self.broker.announce()

    # --- what the stream asks of the database ------------------------------------------

    async def story_id(self, slug: str, include_drafts: bool = False) -> int | None:
        """Id of a public story, cached: a wave of reconnecting readers costs one query."""
        if include_drafts:  # the newsroom: few, and drafts are not cached
            story = await asyncio.to_thread(self._lookup, slug, True)
            return story.id if story is not None else None
        if slug in self._story_ids:
            return self._story_ids[slug]
        story = await asyncio.to_thread(self._lookup, slug)
        if story is None:
            return None  # not remembered: a story published a moment ago must not stay a 404
        if len(self._story_ids) > 10_000:
            self._story_ids.clear()
        self._story_ids[slug] = story.id
        return int(story.id)

    def _story_changed(self, story_id: int, data: dict[str, object]) -> None:
        self._story_ids.pop(str(data["slug"]), None)  # created, published or unpublished: look again
        if data["status"] == "draft":
            # Back to draft: readers may no longer follow it. They reconnect and get a 404.
            self.hub.close_readers(story_id)

    def _lookup(self, slug: str, include_drafts: bool = False):  # type: ignore[no-untyped-def]
        with self.db.read() as conn:
            return stories.get_story(conn, slug, include_drafts=include_drafts)

    def read_story_events(self, story_id: int, after: int, newsroom: bool = False) -> list[events.Event]:
        with self.db.read() as conn:
            return events.read_after(conn, story_id, after, REPLAY_BATCH, newsroom=newsroom)

    async def newest_id(self) -> int:
        return await asyncio.to_thread(self._scalar, events.last_id)

    async def oldest_id(self) -> int:
        """The log's first id, asked of the database at most every 10 s: every resuming reader
        needs it, and in a wave of reconnections that would be a query each."""
        now = time.monotonic()
        if self._oldest is None or now - self._oldest[1] > 10:
            self._oldest = (await asyncio.to_thread(self._scalar, events.first_id), now)
        return self._oldest[0]

    def _scalar(self, query) -> int:  # type: ignore[no-untyped-def]
        with self.db.read() as conn:
            return int(query(conn))
