"""Follows the event log in one server process and hands each new event to the hub.

Woken by a commit in this process, by a nudge from a broker, or by a poll every second,
it reads the log after the last id it has published: the log's ids decide what is sent,
never the nudge. Each event is encoded once, here, and the same bytes go to every reader and
into the window of recent events that resuming readers are replayed from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from ..db import Database
from ..stories import events
from . import sse
from .hub import Hub
from .window import RecentEvents

log = logging.getLogger("dateline.live")
BATCH = 1000


class Follower:
    def __init__(
        self, db: Database, hub: Hub, poll_seconds: float = 1.0,
        on_story_event: Callable[[int, dict[str, object]], None] | None = None,
        window: RecentEvents | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.window = window or RecentEvents(0, 0)
        self.poll_seconds = poll_seconds
        self.on_story_event = on_story_event
        self.last_id = 0
        # Each story's newest readers' event id read since start: a page rendered at an older
        # one is stale (reader/page_cache.py). Newsroom-only events leave readers' pages as
        # they are, and do not move `stories.last_event_id`, so they are not counted.
        self.latest: dict[int, int] = {}
        # Commits of this process that appended events, and how many of them the last read of
        # the log covers: while they differ, this process has written what it has not read.
        self.commits = self.commits_read = 0
        # Likewise the nudges of other processes (through the broker): an event written
        # elsewhere and not read here yet.
        self.nudges = self.nudges_read = 0
        self.read_at = time.monotonic()  # of the last read of the log that succeeded (/healthz)
        self.reads_started = self.reads_done = 0  # reads of the log begun, and the last one complete
        self._wake = asyncio.Event()
        self._read = asyncio.Event()  # set, and replaced, after each read of the log
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.last_id, newest = await asyncio.to_thread(self._newest)
        # The window starts with the newest of the log: readers resuming on a node that has
        # just started (in the middle of a reconnect storm, say) need no query either.
        full = self.window.enabled and len(newest) >= self.window.max_events
        self.window.begin(newest[0].id - 1 if full else 0)
        for event in newest:
            self._hold(event, sse.event(event.id, event.type, event.data))
        self._task = self._loop.create_task(self._run(), name="live-follower")

    async def stop(self) -> None:
        # Let a read in flight finish (its thread holds a connection) rather than cancel it.
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    def nudge(self) -> None:
        """Another process has written (the broker says so)."""
        self.nudges += 1
        self._wake.set()

    def nudge_threadsafe(self) -> None:
        """For commit listeners, which run in the writing thread."""
        self.commits += 1
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def reach(self, event_id: int, timeout: float) -> bool:
        """Wait, at most `timeout` seconds, until this process has read the log up to
        `event_id`: a reader coming from another node may be a moment ahead of this one, and
        one read of the log answers them all. False if it has not by then."""
        return await self._read_until(lambda: self.last_id >= event_id, timeout)

    @property
    def settled(self) -> bool:
        """Nothing is known to be in the log that this process has not read: no commit of its
        own, no broker's nudge, since the last complete read began."""
        return self.commits_read == self.commits and self.nudges_read == self.nudges

    async def fresh(self, timeout: float) -> bool:
        """At once when settled; otherwise wait, at most `timeout` seconds, for a read of the
        log that begins after this call. Either way this process has then handed out all it
        has heard of, and its window answers a replay as the log would (an entry deleted a
        moment ago left out). Readers arriving together share that one read. False if none
        completed in time (the database may be down)."""
        if self.settled:
            return True
        ticket = self.reads_started + 1
        return await self._read_until(lambda: self.reads_done >= ticket, timeout)

    async def _read_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wake the follower and wait, read after read, until `done()`; False at `timeout`."""
        if done():
            return True
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._read.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _newest(self) -> tuple[int, list[events.Event]]:
        with self.db.read() as conn:
            last = events.last_id(conn)
            newest = events.read_log_newest(conn, last, self.window.max_events) if self.window.enabled else []
            return last, newest

    def _hold(self, event: events.Event, frame: bytes) -> dict[str, object] | None:
        """Into the window. An event that carries the story whole (its `status` among its
        fields) returns that data, read once for all its uses; others that speak of the
        story (`story.facts`: only "What we know") change nothing of who may read it."""
        data = json.loads(event.data) if event.type.startswith("story.") else None
        status = data.get("status") if data is not None else None
        self.window.add(event, frame, None if status is None else str(status))
        return data if status is not None else None

    def _fetch(self, after: int) -> list[events.Event]:
        with self.db.read() as conn:
            return events.read_log_after(conn, after, BATCH)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.catch_up()
            except Exception as exc:  # noqa: BLE001 - the database may be down; keep following
                log.warning("live: cannot read the event log (%s); retrying", exc.__class__.__name__)
                await asyncio.sleep(self.poll_seconds)

    def current(self, story_id: int, version: int) -> bool:
        """Whether `version` is still the story's newest event id, as far as this process
        knows: nothing newer read, and nothing written here that is not read yet."""
        return self.commits_read == self.commits and self.latest.get(story_id, 0) <= version

    async def catch_up(self) -> None:
        commits, nudges = self.commits, self.nudges
        self.reads_started += 1
        started = self.reads_started
        while True:
            batch = await asyncio.to_thread(self._fetch, self.last_id)
            for event in batch:
                frame = sse.event(event.id, event.type, event.data)
                story = self._hold(event, frame)
                self.hub.publish(event.story_id, event.id, frame, event.public)
                if event.public:  # what moves a story's readers' version (`stories.last_event_id`)
                    self.latest[event.story_id] = event.id
                self.last_id = event.id
                if story is not None and self.on_story_event:
                    self.on_story_event(event.story_id, story)
                # Let readers' streams write before the next event: a burst bigger than a
                # reader's buffer must not drop readers that keep up.
                await asyncio.sleep(0)
            if len(batch) < BATCH:
                self.commits_read, self.nudges_read = commits, nudges
                self.reads_done = started
                self.read_at = time.monotonic()
                self._read.set()
                self._read = asyncio.Event()
                return
