"""Keeps the event log from growing without end: each server process prunes it every minute
(`dateline prune` does the same once, from the command line).

- "Who is editing" events are true for seconds: they go once a minute old, whatever the
  settings. They stay in the log while they matter because the log is how every event
  reaches every process, on this machine or another; a second path for them alone would
  have to do all of that again.
- With `DATELINE_EVENT_RETENTION_DAYS`, events older than that go too, in transactions of
  at most `events.PRUNE_ROWS` rows so writers never wait long. A reader resuming from before
  the log's start gets `reset` (reason `expired`) and reloads the page.

Deleting the same rows twice does nothing, so every process of a site may run it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ..db import Database
from ..stories import events
from ..times import now as utc_now

log = logging.getLogger("dateline.live")
PRUNE_SECONDS = 60.0
PRESENCE_KEEP = timedelta(seconds=60)


def prune_log(db: Database, now: datetime, retention_days: int, presence_above: int = 0) -> tuple[int, int]:
    """Prune the log as of `now`; returns (events deleted, the id above which presence
    events are still to be looked at next time)."""
    with db.write() as conn:
        deleted, above = events.prune_presence(conn, now - PRESENCE_KEEP, presence_above)
    if retention_days > 0:
        before = now - timedelta(days=retention_days)
        while True:
            with db.write() as conn:
                count = events.prune_older(conn, before)
            deleted += count
            if count < events.PRUNE_ROWS:
                break
    return deleted, above


class Pruner:
    def __init__(self, db: Database, retention_days: int, on_pruned: Callable[[], None]) -> None:
        self.db = db
        self.retention_days = retention_days
        self.on_pruned = on_pruned  # the log's first id may have changed
        self.interval = PRUNE_SECONDS
        self.presence_above = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-pruner")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def prune_now(self, now: datetime | None = None) -> int:
        """One pass (blocking: run in a thread); returns how many events went."""
        deleted, self.presence_above = prune_log(self.db, now or utc_now(), self.retention_days,
                                                 self.presence_above)
        if deleted:
            self.on_pruned()
        return deleted

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.prune_now)
            except Exception as exc:  # noqa: BLE001 - the database is busy or down: next time
                log.warning("live: cannot prune the event log (%s)", exc.__class__.__name__)
