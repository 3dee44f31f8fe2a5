"""Follows the event log in one server process and hands each new event to the hub.

Woken by a commit in this process, by a nudge from a broker, or by a poll every second,
it reads the log after the last id it has published: the log's ids decide what is sent,
never the nudge. Each event is encoded once, here, and the same bytes go to every reader.
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

log = logging.getLogger("dateline.live")
BATCH = 1000


class Follower:
    def __init__(
        self, db: Database, hub: Hub, poll_seconds: float = 1.0,
        on_story_event: Callable[[int, dict[str, object]], None] | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.on_story_event = on_story_event
        self.last_id = 0
        self.read_at = time.monotonic()  # of the last read of the log that succeeded (/healthz)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.last_id = await asyncio.to_thread(self._newest)
        self._task = self._loop.create_task(self._run(), name="live-follower")

    async def stop(self) -> None:
        # Let a read in flight finish (its thread holds a connection) rather than cancel it.
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    def nudge(self) -> None:
        self._wake.set()

    def nudge_threadsafe(self) -> None:
        """For commit listeners, which run in the writing thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def _newest(self) -> int:
        with self.db.read() as conn:
            return events.last_id(conn)

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

    async def catch_up(self) -> None:
        while True:
            batch = await asyncio.to_thread(self._fetch, self.last_id)
            for event in batch:
                frame = sse.event(event.id, event.type, event.data)
                self.hub.publish(event.story_id, event.id, frame, event.public)
                self.last_id = event.id
                if event.type.startswith("story.") and self.on_story_event:
                    self.on_story_event(event.story_id, json.loads(event.data))
                # Let readers' streams write before the next event: a burst bigger than a
                # reader's buffer must not drop readers that keep up.
                await asyncio.sleep(0)
            if len(batch) < BATCH:
                self.read_at = time.monotonic()
                return
