"""Rate limits every server process and node shares: counted in the database.

Each limit counts requests per client address (an IPv6 client by its /64, which it may pick
any address in) in `rate_counters`, one row a key, with one statement a request: an upsert
that starts a new window once the last has run out, or counts one more in it, and returns
the count. Atomic on SQLite and PostgreSQL alike, so requests arriving at once at different
processes are all counted. A window starts at the address's first request after the last one
ended (a fixed window: at most `limit` in it, so at most twice that across two windows'
seam).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, case, delete
from sqlalchemy.dialects import postgresql, sqlite

from ..accounts.sessions import clean_address
from ..db import Database
from ..schema import rate_counters
from ..times import now as utc_now
from .addresses import address_key
from .problems import Problem

PRUNE_EVERY = 100  # one check in this many also deletes the limit's windows that have ended


class AddressLimit:
    """At most `limit` requests a `window` of seconds from one address, across every server
    process and node (push subscription changes: a reader needs a handful; a script filling
    the table with junk gets 429)."""

    def __init__(self, db: Database, name: str, limit: int = 30, window: float = 60.0,
                 detail: str = "Too many requests from this address; try again shortly.") -> None:
        self.db = db
        self.name = name
        self.limit = limit
        self.window = timedelta(seconds=window)
        self.detail = detail

    @classmethod
    def push_subscriptions(cls, db: Database) -> AddressLimit:
        """Subscribing and unsubscribing: 30 changes a minute from one address."""
        return cls(db, "push", 30, 60.0, "Too many subscription changes from this address; try again shortly.")

    def check(self, request: Request) -> None:
        """Count this request; 429 with Retry-After once the address is over the limit.
        Blocking (one small write transaction): call it off the event loop, as FastAPI runs
        the plain `def` routes that use it, on a worker thread."""
        host = request.client.host if request.client else "unknown"
        wait = self.hit(address_key(clean_address(host)), utc_now())
        if wait:
            raise Problem(429, self.detail, headers={"Retry-After": str(wait)})

    def hit(self, address: str, now: datetime) -> int:
        """Count one request from `address`: the seconds to wait if it is over the limit, else 0."""
        key = f"{self.name}:{address}"[:128]
        started: datetime
        hits: int
        with self.db.write() as conn:
            started, hits = conn.execute(self._count(conn, key, now)).one()
            if secrets.randbelow(PRUNE_EVERY) == 0:
                self.prune(conn, now)
        if hits <= self.limit:
            return 0
        return max(1, math.ceil((started + self.window - now).total_seconds()))

    def _count(self, conn: Connection, key: str, now: datetime) -> Any:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        fresh = dialect.insert(rate_counters).values(key=key, window_start=now, hits=1)
        ended = rate_counters.c.window_start <= now - self.window  # the stored row's, not the new one's
        return fresh.on_conflict_do_update(
            index_elements=[rate_counters.c.key],
            set_={"window_start": case((ended, fresh.excluded.window_start), else_=rate_counters.c.window_start),
                  "hits": case((ended, 1), else_=rate_counters.c.hits + 1)},
        ).returning(rate_counters.c.window_start, rate_counters.c.hits)

    def prune(self, conn: Connection, now: datetime) -> int:
        """Delete this limit's windows that have ended (now and then: `window_start` is indexed)."""
        ended = delete(rate_counters).where(
            rate_counters.c.key.startswith(f"{self.name}:", autoescape=True),
            rate_counters.c.window_start <= now - self.window,
        )
        return int(conn.execute(ended).rowcount)
