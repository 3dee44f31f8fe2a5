"""Rate limits held in memory, per server process."""

from __future__ import annotations

import threading
import time
from collections import deque

from fastapi import Request

from .problems import Problem


class AddressLimit:
    """At most `limit` requests a minute from one address, per server process (push
    subscription changes: a reader needs a handful; a script filling the table with junk
    gets 429)."""

    def __init__(self, limit: int = 30, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, request: Request) -> None:
        address = request.client.host if request.client else "?"
        now = time.monotonic()
        with self.lock:
            if len(self.seen) > 100_000:
                self.seen.clear()
            times = self.seen.setdefault(address, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                wait = int(times[0] + self.window - now) + 1
                raise Problem(429, "Too many subscription changes from this address; try again shortly.",
                              headers={"Retry-After": str(wait)})
            times.append(now)
