"""Newsroom streams end within a heartbeat once the session that let them in has ended
(sign-out, disabled account, demotion, new password, expiry), in whichever process serves
them: every heartbeat, one query asks which of this process's sessions are still open."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ..accounts import sessions
from ..db import Database
from .hub import Hub

log = logging.getLogger("dateline.live")


class SessionWatch:
    def __init__(self, db: Database, hub: Hub, idle_minutes: int) -> None:
        self.db = db
        self.hub = hub
        self.idle = timedelta(minutes=idle_minutes)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-sessions")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.hub.heartbeat_seconds)
            streams = [s for s in self.hub.subscribers() if s.session_id is not None]
            if not streams:
                continue
            try:
                alive = await asyncio.to_thread(self._open, {s.session_id for s in streams if s.session_id})
            except Exception as exc:  # noqa: BLE001 - the database is down: check next time
                log.warning("live: cannot check newsroom sessions (%s)", exc.__class__.__name__)
                continue
            for stream in streams:
                if stream.session_id not in alive:
                    stream.close()

    def _open(self, session_ids: set[str]) -> set[str]:
        with self.db.read() as conn:
            return sessions.still_open(conn, session_ids, self.idle)
