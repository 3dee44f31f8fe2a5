"""`/healthz`: whether a load balancer should send this node traffic, and why not.

A 503 means "send readers elsewhere": the database cannot be read, its schema is not the
one this version needs, this process holds as many streams as it may, or its follower has
not read the log for several polls (its readers would hear nothing). A broker that is down
is only `degraded` (200): the follower's poll still carries every event, a second late.

The answer is worked out at most once a second, whoever asks and however often: one read of
the database in a worker thread, shared by every request that arrives meanwhile, so a flood
of health checks costs no more than one.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from alembic.migration import MigrationContext
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..db import Database
from ..stories import events

if TYPE_CHECKING:
    from . import Live

FRESH_SECONDS = 1.0  # an answer is reused this long
DATABASE_TIMEOUT = 2.0  # seconds for the database to answer before it counts as unreachable
STALE_POLLS, STALE_GRACE = 3, 2.0  # the follower is stuck after this many polls plus grace

router = APIRouter(include_in_schema=False)


class Health:
    def __init__(self, db: Database, live: Live) -> None:
        self.db = db
        self.live = live
        self._head: str | None = None  # the schema this version needs: read once
        self._answer: tuple[float, int, dict[str, Any]] | None = None
        self._working: asyncio.Future[tuple[int, dict[str, Any]]] | None = None
        self._reading_since: float | None = None  # a read still running in its thread

    async def report(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): computed afresh at most every FRESH_SECONDS."""
        if self._answer is not None and time.monotonic() - self._answer[0] < FRESH_SECONDS:
            return self._answer[1], self._answer[2]
        if self._working is None:
            self._working = asyncio.ensure_future(self._check())
            self._working.add_done_callback(self._done)
        return await asyncio.shield(self._working)

    def _done(self, future: asyncio.Future[tuple[int, dict[str, Any]]]) -> None:
        self._working = None
        if not future.cancelled() and future.exception() is None:
            status, body = future.result()
            self._answer = (time.monotonic(), status, body)

    def _read_database(self) -> tuple[str | None, str, int]:
        try:
            if self._head is None:
                self._head = self.db.schema_status()[1]
            with self.db.read() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                return current, self._head, events.last_id(conn)
        finally:
            self._reading_since = None

    async def _check(self) -> tuple[int, dict[str, Any]]:
        live = self.live
        problems: list[str] = []
        degraded: list[str] = []
        database: dict[str, Any] = {"reachable": False}
        log_last: int | None = None
        if self._reading_since is not None:
            # The last read is stuck in its thread: no second thread to wait beside it.
            waited = time.monotonic() - self._reading_since
            problems.append(f"the database has not answered for {waited:.0f} s")
        else:
            self._reading_since = time.monotonic()
            try:
                current, head, log_last = await asyncio.wait_for(
                    asyncio.to_thread(self._read_database), DATABASE_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the node cannot serve
                problems.append(f"the database cannot be read ({exc.__class__.__name__})")
            else:
                database = {"reachable": True, "schema": current, "schema_needed": head}
                if current != head:
                    problems.append(f"the database's schema is {current}, this version needs {head}")

        broker = live.broker
        if not broker.connected:
            degraded.append(f"the {broker.kind} broker is not connected: following the log by polling")

        follower = live.follower
        silent = time.monotonic() - follower.read_at
        stale_after = STALE_POLLS * follower.poll_seconds + STALE_GRACE
        if silent > stale_after:
            problems.append(f"the event log has not been read for {silent:.0f} s")

        readers = live.hub.count
        if readers >= live.max_streams:
            problems.append(f"this process holds all the streams it may ({live.max_streams})")

        status = "unavailable" if problems else "degraded" if degraded else "ok"
        body = {
            "status": status,
            "problems": problems + degraded,
            "database": {**database, "queries": self.db.queries},
            "broker": {"kind": broker.kind, "connected": broker.connected},
            "readers": {"held": readers, "limit": live.max_streams},
            # Resuming readers replayed from memory, and from the log (their cursor was older).
            "window": {"events": len(live.window.order), "bytes": live.window.size,
                       "replays_from_memory": live.window.served, "replays_from_the_log": live.window.missed},
            "events": {
                "log_last_id": log_last,
                "delivered_last_id": follower.last_id,
                "lag": None if log_last is None else max(0, log_last - follower.last_id),
                "last_read_seconds_ago": round(silent, 3),
            },
        }
        return (503 if problems else 200), body


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    live: Live = request.app.state.live
    status, body = await live.health.report()
    # Pages served from memory (reader/page_cache.py): `door_hits` of `renders`, for sizing.
    body = {**body, "pages": request.app.state.pages.stats()}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
