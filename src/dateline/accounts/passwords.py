"""Password hashing, bounded: argon2id work runs on a fixed few threads of its own.

Each argon2id check takes 19 MiB and a core for about 30 ms. Run on the server's request
threads, a flood of sign-ins would take 19 MiB on each of them at once (and the allocator
keeps it), and starve every reader of the CPU. Here a process runs at most `slots` checks at
once, on `slots` threads; a few more may wait for one (`WAITING_PER_SLOT` each), and a sign-in
beyond those is refused at once (`PasswordWorkBusy`: the caller answers 503 with Retry-After)
rather than queued. An unknown user's check is a verify against `DUMMY_HASH`, the same cost
as a real one, so neither time nor memory tells which names exist.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane): about 30 ms a check here,
# slow for a guesser, cheap enough for a newsroom signing in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# The hash of a random secret that was thrown away, at the same cost: what unknown names are
# checked against.
DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$S+JPlUn28E3BdiUq4I6T3g$qRO1D9EgFlmOoteONGU+8j5IzC6swUV9hrs6fh3cSNA"
DEFAULT_SLOTS = 2
WAITING_PER_SLOT = 4
RETRY_AFTER_SECONDS = 1


class PasswordWorkBusy(Exception):
    """Every slot for password checks is taken, and as many are waiting as may."""


class PasswordWork:
    """At most `slots` argon2 computations at once, on threads of their own."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="password-check")
        self._room = threading.BoundedSemaphore(slots * (1 + WAITING_PER_SLOT))

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """A place among the checks running or waiting, or `PasswordWorkBusy` at once."""
        if not self._room.acquire(blocking=False):
            raise PasswordWorkBusy(f"Too many sign-ins at once; try again in {RETRY_AFTER_SECONDS} second.")
        try:
            yield
        finally:
            self._room.release()

    def hash(self, password: str) -> str:
        return self._pool.submit(_hasher.hash, password).result()

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; None (no such user) costs the same and is False."""
        return self._pool.submit(_verify, stored, password).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


def _verify(stored: str | None, password: str) -> bool:
    try:
        _hasher.verify(stored or DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


_work = PasswordWork(DEFAULT_SLOTS)
_work_lock = threading.Lock()


def work(slots: int | None = None) -> PasswordWork:
    """The process's password work, with `slots` slots if given (the server's setting)."""
    global _work
    if slots is not None and slots != _work.slots:
        with _work_lock:
            if slots != _work.slots:
                _work.shutdown()
                _work = PasswordWork(slots)
    return _work


def hash_password(password: str) -> str:
    return work().hash(password)


def verify(stored: str | None, password: str) -> bool:
    return work().verify(stored, password)
