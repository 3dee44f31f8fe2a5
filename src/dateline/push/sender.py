"""Sends queued notifications: one sender in every server process, all sharing the outbox.

The walk for one batch: claim up to `BATCH` deliveries (a write transaction) → encrypt one
message a subscriber (RFC 8291, a fresh key each) → POST them all, at most
`push_concurrency` at a time to any one push service → record every answer (one write
transaction). Each sender walks it in `LANES` at once, one batch claimed and encrypted while
another waits for its answers. Senders of several processes, or several machines, take
different batches of the same notification, so a big fan-out uses every core.

A sender is woken by a commit in its process, by the broker's nudge (another process, maybe
on another node, has written: a notification queued there starts going out from here too at
once), or by the poll (`DATELINE_LIVE_POLL_SECONDS`, for a broker that is down). Once it has
found a batch it keeps claiming, batch after batch, until there is none. When another sender
holds the only notification with work (its claim lasts milliseconds), it tries again after
a few milliseconds, jittered so the waiting senders do not all come back at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ..config import Settings
from ..db import Database
from . import outbox, subscriptions, webpush
from .client import PushClient, PushHttpError, Response

log = logging.getLogger("dateline.push")
BATCH = 500
# Batches in flight at once in a process: while one waits for its answers (a round trip to
# the push service), the next is claimed and encrypted, so the process's core stays busy.
LANES = 2
VAPID_SECONDS = 12 * 3600  # a token lives 12 h (RFC 8292 allows up to 24 h); renewed an hour early
STOP_SECONDS = 5.0
RETRY_SECONDS = 1.0  # after a failed round (the database restarting, say)
BUSY_PAUSE = 0.005  # seconds before claiming again after a busy claim; doubled each time in a row...
BUSY_PAUSE_MAX = 0.08  # ... up to this, far below the poll

Step = Literal["sent", "busy", "idle"]


class PushSender:
    def __init__(self, db: Database, settings: Settings, poll_seconds: float | None = None) -> None:
        self.db = db
        self.settings = settings
        self.poll_seconds = settings.live_poll_seconds if poll_seconds is None else poll_seconds
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.client = PushClient(settings.push_concurrency, allow_loopback=settings.push_test_endpoints)
        self.contact = settings.push_contact or (
            settings.public_url if settings.public_url.startswith("https://") else "mailto:webmaster@localhost")
        self._key: tuple[ec.EllipticCurvePrivateKey, str] | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.db.add_commit_listener(self.nudge_threadsafe)
        self._tasks = [self._loop.create_task(self._run(), name=f"push-sender-{lane}") for lane in range(LANES)]

    async def stop(self) -> None:
        """Finish the batches in flight (a few seconds at most), record them, hand back the rest."""
        self.db.remove_commit_listener(self.nudge_threadsafe)
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await asyncio.to_thread(self._write, outbox.release)
        except Exception as exc:  # noqa: BLE001 - the lease runs out instead
            log.warning("push: could not hand back unsent deliveries (%s)", exc.__class__.__name__)
        await self.client.aclose()

    def nudge(self) -> None:
        """Another process has written (the broker says): maybe a notification to send."""
        self._wake.set()

    def nudge_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        busy = 0  # claims in a row that found the work held by another sender
        while not self._stopping:
            step: str
            try:
                step = await self.send_one_batch(look_first=not busy)
            except Exception as exc:  # noqa: BLE001 - database or network trouble: try again soon
                log.warning("push: sending failed (%s: %s); retrying", exc.__class__.__name__, exc)
                step = "failed"
            if step == "sent":
                busy = 0
                continue
            if step == "busy":
                busy += 1
                await asyncio.sleep(busy_pause(busy))
                continue
            busy = 0
            # After trouble, try again within a second however long the poll.
            timeout = self.poll_seconds if step == "idle" else min(self.poll_seconds, RETRY_SECONDS)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()

    # --- one batch -------------------------------------------------------------------------

    async def send_one_batch(self, look_first: bool = True) -> Step:
        """Claim, send and record one batch: "sent"; "idle" if there was nothing to send;
        "busy" if another sender was claiming from the only notification with work."""
        if look_first and not await asyncio.to_thread(self._has_work):
            return "idle"
        batch = await asyncio.to_thread(self._claim)
        if batch is None:
            return "idle"
        if batch == outbox.BUSY:
            return "busy"
        outcomes: dict[int, outbox.Outcome] = {}
        renewing = asyncio.create_task(self._renew_lease())
        try:
            await self._send(batch, outcomes)
        finally:
            renewing.cancel()
            # Record what was answered, also when stopping half-way (the rest goes back).
            if outcomes:
                await asyncio.shield(asyncio.to_thread(self._record, batch, outcomes))
        return "sent"

    async def _send(self, batch: outbox.Batch, outcomes: dict[int, outbox.Outcome]) -> None:
        key = await asyncio.to_thread(self._vapid_key)
        if key is None:
            for sub in batch.subscriptions:
                outcomes[sub.id] = outbox.Outcome("failed", "no VAPID key: run `dateline init`")
            return
        bodies = await asyncio.to_thread(self._encrypt, batch)
        common = [("TTL", str(batch.ttl)), ("Urgency", batch.urgency), ("Topic", batch.topic),
                  ("Content-Encoding", "aes128gcm"), ("Content-Type", "application/octet-stream")]

        async def one(sub: outbox.Subscription, body: bytes | str) -> None:
            if isinstance(body, str):  # the keys could not be used
                outcomes[sub.id] = outbox.Outcome("failed", body)
                return
            headers = [*common, ("Authorization", self._authorization(sub.endpoint, key[0]))]
            try:
                response = await self.client.post(sub.endpoint, headers, body)
            except PushHttpError as exc:
                outcomes[sub.id] = outbox.Outcome("retry" if exc.retry else "failed", str(exc))
                return
            outcomes[sub.id] = outcome_of(response, sub.endpoint)

        await asyncio.gather(*(one(sub, body) for sub, body in zip(batch.subscriptions, bodies, strict=True)))

    def _encrypt(self, batch: outbox.Batch) -> list[bytes | str]:
        bodies: list[bytes | str] = []
        for sub in batch.subscriptions:
            try:
                bodies.append(webpush.encrypt(batch.payload, webpush.unb64u(sub.p256dh), webpush.unb64u(sub.auth)))
            except ValueError as exc:
                bodies.append(f"unusable subscription keys ({exc})")
        return bodies

    def _authorization(self, endpoint: str, key: ec.EllipticCurvePrivateKey) -> str:
        """The VAPID header for this push service, signed once and reused for hours."""
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(origin)
        if cached is None or cached[1] - now < 3600:
            header = webpush.vapid_authorization(endpoint, key, self.contact, VAPID_SECONDS)
            cached = self._tokens[origin] = (header, now + VAPID_SECONDS)
        return cached[0]

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(self.settings.push_lease_seconds / 3)
            await asyncio.to_thread(self._write, outbox.renew, self.settings.push_lease_seconds)

    # --- the database ----------------------------------------------------------------------

    def _has_work(self) -> bool:
        """A read first: the claim is a write, and idle senders must not write every second."""
        with self.db.read() as conn:
            return outbox.has_work(conn, datetime.now(timezone.utc))

    def _claim(self) -> outbox.Batch | Literal["busy"] | None:
        with self.db.write() as conn:
            return outbox.claim(conn, self.owner, BATCH, self.settings.push_lease_seconds, datetime.now(timezone.utc))

    def _record(self, batch: outbox.Batch, outcomes: dict[int, outbox.Outcome]) -> None:
        with self.db.write() as conn:
            outbox.record(conn, self.owner, batch, outcomes, datetime.now(timezone.utc))

    def _write(self, action: Callable[..., object], *args: object) -> None:
        with self.db.write() as conn:
            action(conn, self.owner, *args, datetime.now(timezone.utc))

    def _vapid_key(self) -> tuple[ec.EllipticCurvePrivateKey, str] | None:
        with self.db.read() as conn:
            found = subscriptions.current_key(conn)
        if found is not None and (self._key is None or self._key[1] != found[1]):
            self._tokens.clear()  # the key was rotated: sign anew
        self._key = found
        return found


def busy_pause(times: int) -> float:
    """Seconds to wait before claiming again after `times` busy claims in a row: a few
    milliseconds, growing, and jittered so senders that skipped together spread out."""
    return min(BUSY_PAUSE * 2.0 ** min(times - 1, 8), BUSY_PAUSE_MAX) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter


def outcome_of(response: Response, endpoint: str) -> outbox.Outcome:
    """RFC 8030: 201 is delivered; 404 and 410 mean the subscription is over; 429 and 5xx
    are worth another try (after Retry-After, if the service says); the rest is an error
    on our side, kept for the editors to see."""
    status = response.status
    if 200 <= status < 300:
        return outbox.SENT
    host = urlsplit(endpoint).hostname
    detail = response.body[:200].decode("utf-8", "replace").strip()
    error = f"{status} from {host}" + (f": {detail}" if detail else "")
    if status in (404, 410):
        return outbox.GONE
    if status == 429 or status >= 500:
        return outbox.Outcome("retry", error, retry_after(response.headers.get("retry-after")))
    return outbox.Outcome("failed", error)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())
