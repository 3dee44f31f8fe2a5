"""Live delivery: from the event log to every open reader, within a second.

One `Live` per server process puts the parts together: a `Follower` reads the log and hands
each new event to the `Hub`, which knows who reads what, and to the `RecentEvents` window that
resuming readers are replayed from; a broker nudges the other processes; `Lookups` answers the
streams' questions of the database; `SessionWatch` ends newsroom streams whose session has
ended; `Pruner` keeps the log from growing without end; `LiveEndpoint` serves the streams
themselves; `Health` answers `/healthz`.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..db import Database
from . import connection
from .brokers import Broker, broker_for
from .follower import Follower
from .health import Health
from .hub import Hub
from .lookups import Lookups
from .pruner import Pruner
from .session_watch import SessionWatch
from .stream import LiveEndpoint
from .window import RecentEvents

__all__ = ["Live", "LiveEndpoint"]


def stream_room() -> int:
    """How many streams this process can hold: each is an open file, and a process past its
    limit fails to accept connections instead of telling readers to come back later."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1_000_000_000 if soft == resource.RLIM_INFINITY else max(16, soft - 256)


class Live:
    def __init__(self, db: Database, settings: Settings, broker: Broker | None = None) -> None:
        self.db = db
        self.hub = Hub(heartbeat_seconds=settings.heartbeat_seconds)
        self.lookups = Lookups(db)
        self.broker = broker or broker_for(settings.broker, settings.database_url)
        self.window = RecentEvents(settings.live_window_events, settings.live_window_bytes)
        self.follower = Follower(db, self.hub, settings.live_poll_seconds, self._story_changed, self.window)
        self.sessions = SessionWatch(db, self.hub, settings.session_idle_minutes)
        self.max_streams = min(settings.max_streams, stream_room())
        self.max_pending = settings.stream_buffer_bytes
        self.stall_seconds = settings.stream_stall_seconds
        self.pruner = Pruner(db, settings.event_retention_days, self.lookups.forget_oldest)
        self._nudge_listeners: list[Callable[[], None]] = []
        self.health = Health(db, self)
        self.endpoint = LiveEndpoint(self)  # the readers' stream (also behind connection.py)

    def take_over(self, transport: asyncio.Transport, server_state: Any, slug: str,
                  headers: list[tuple[bytes, bytes]], query_string: bytes, paused: bool) -> None:
        """A readers' stream gets its connection to itself (`web/server.py` calls this once
        the request head is in; see connection.py)."""
        connection.take_over(self, transport, server_state, slug, headers, query_string, paused)

    def add_nudge_listener(self, listener: Callable[[], None]) -> None:
        """Also call `listener` (in the event loop) whenever the broker says another process
        has written: the push sender starts on a notification queued elsewhere at once."""
        self._nudge_listeners.append(listener)

    def _nudged(self) -> None:
        self.follower.nudge()
        for listener in self._nudge_listeners:
            listener()

    async def start(self) -> None:
        await self.follower.start()
        await self.broker.start(self._nudged)
        self.db.add_commit_listener(self._after_commit)
        self.hub.start()
        self.sessions.start()
        self.pruner.start()

    async def stop(self) -> None:
        self.db.remove_commit_listener(self._after_commit)
        self.sessions.stop()
        self.pruner.stop()
        await self.hub.stop()
        await self.follower.stop()
        await self.broker.close()

    def _after_commit(self) -> None:
        self.follower.nudge_threadsafe()
        self.broker.announce()

    def _story_changed(self, story_id: int, data: dict[str, object]) -> None:
        self.lookups.forget(str(data["slug"]))
        self.lookups.set_ended(story_id, data["status"] == "ended")
        if data["status"] in ("draft", "ended"):
            # Back to draft: readers may no longer follow it; they reconnect and get a 404.
            # Ended: they have just been sent the event that says so; they reconnect once
            # and are told the stream is over (204), which a browser's EventSource obeys.
            self.hub.close_readers(story_id)
