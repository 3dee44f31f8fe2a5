"""The push outbox: what is to be sent, to whom, and how far it has got.

A notification is written in the same transaction as its entry, so an acknowledged post
with "notify readers" is never forgotten. Senders in any server process take batches of
subscribers from it (`claim`), send, and write down every answer (`record`): sent, gone
(the subscription is deleted), to retry later, or failed. Each claimed delivery is a row
owned by one process under a lease; a crash leaves its rows behind, and once the lease has
run out another sender sends them again. Nothing acknowledged is lost; what can be sent
twice is only a crashed process's last batch, whose answers were never recorded.

Senders on many nodes share a fan-out without queueing. One sender at a time claims from a
notification, holding its row for the claim's short transaction; on PostgreSQL the others
skip that row (`FOR UPDATE SKIP LOCKED`) instead of waiting behind it, and claim from another
notification or try again a moment later. Due deliveries are taken with SKIP LOCKED too, so a
late owner recording their answers is not waited for, and `record` locks the rows it writes,
so a delivery taken over is counted once. A lock that waits is taken on deliveries before the
notification row, never after, so senders never deadlock. On SQLite writers take turns
(BEGIN IMMEDIATE), and the same statements simply run one after another.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import (
    Connection,
    and_,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from ..plain_text import entry_text
from ..schema import entries, figure_blocks, push_deliveries, push_notifications, push_subscriptions
from ..times import iso_or_none
from . import recipients

MAX_ATTEMPTS = 6
MAX_RETRY_SECONDS = 3600
SNIPPET_CHARS = 180
PAYLOAD_LIMIT = 3000  # bytes of JSON; a push message carries at most about 3,993
BUSY: Final = "busy"  # what `claim` answers when another sender holds the only work there is


@dataclass(frozen=True)
class Subscription:
    id: int
    endpoint: str
    p256dh: str
    auth: str
    attempts: int


@dataclass(frozen=True)
class Batch:
    notification_id: int
    payload: bytes
    topic: str
    urgency: str
    ttl: int
    subscriptions: list[Subscription]


@dataclass(frozen=True)
class Outcome:
    """What a push service answered for one subscription."""

    kind: str  # sent | gone | retry | failed
    error: str | None = None
    retry_after: float | None = None  # seconds, from the push service's Retry-After


SENT = Outcome("sent")
GONE = Outcome("gone")


# --- writing a notification ---------------------------------------------------------------


def snippet(entry: dict[str, Any]) -> str:
    """Plain text for the notification: the update's words, or the photo's caption."""
    text = entry_text(entry)
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def payload(notification_id: int, story: Row[Any], entry: dict[str, Any]) -> bytes:
    """The JSON every subscriber's message carries (the service worker shows it)."""
    message: dict[str, Any] = {
        "id": notification_id,
        "story": story.slug,
        "title": story.headline,
        "body": snippet(entry),
        "url": f"/stories/{story.slug}/entries/{entry['id']}",
        "timestamp": entry["published_at"],
    }
    if entry["kind"] == "image" and str(entry.get("image_url", "")).startswith(("/", "https://")):
        message["image"] = entry["image_url"]
    return _encode(message)


def _encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    while len(data) > PAYLOAD_LIMIT:  # a headline and snippet this long are rare: shorten them
        message["title"] = message["title"][: len(message["title"]) // 2] + "…"
        message["body"] = message["body"][: len(message["body"]) // 2] + "…"
        data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    return data


def enqueue(conn: Connection, story: Row[Any], entry: dict[str, Any], ttl: int, now: datetime) -> int:
    """Queue a notification of this entry for the story's and the site's followers, in the
    caller's transaction (the one that writes the entry)."""
    return _enqueue(conn, story, {"entry_id": entry["id"]}, ttl, now,
                    lambda notification_id: payload(notification_id, story, entry))


def enqueue_figures(conn: Connection, story: Row[Any], block: dict[str, Any], line: str, ttl: int,
                    now: datetime) -> int:
    """Queue a notification of a live figures block's new figures (`line`, as text)."""
    def message(notification_id: int) -> bytes:
        return _encode({
            "id": notification_id, "story": story.slug, "title": story.headline,
            "body": f"{block['title']}: {line}", "url": f"/stories/{story.slug}#block-{block['id']}",
            "timestamp": block["updated_at"],
        })
    return _enqueue(conn, story, {"block_id": block["id"]}, ttl, now, message)


def _enqueue(conn: Connection, story: Row[Any], about: dict[str, int], ttl: int, now: datetime,
             message: Callable[[int], bytes]) -> int:
    count, last = recipients.followers(conn, story.id)
    notification_id: int = conn.execute(
        insert(push_notifications)
        .values(
            story_id=story.id, **about, payload="{}", topic=f"story-{story.id}",
            urgency="high", ttl=ttl, created_at=now, recipients=count, last_subscription_id=last,
            cursor=0, sent=0, failed=0, removed=0, finished_at=None if count else now,
        )
        .returning(push_notifications.c.id)
    ).scalar_one()
    conn.execute(  # the message carries the notification's own id: known only now
        update(push_notifications)
        .where(push_notifications.c.id == notification_id)
        .values(payload=message(notification_id).decode())
    )
    return notification_id


# --- sending ------------------------------------------------------------------------------


def has_work(conn: Connection, now: datetime) -> bool:
    """Whether a notification has subscribers not reached yet, deliveries due, or nothing
    left but to be marked finished: a read, so idle senders do not write every second."""
    notes, deliveries = push_notifications, push_deliveries
    of_note = deliveries.c.notification_id == notes.c.id
    return conn.execute(select(notes.c.id).where(
        notes.c.finished_at.is_(None),
        (notes.c.cursor < notes.c.last_subscription_id)
        | exists().where(of_note, deliveries.c.not_before <= now)
        | ~exists().where(of_note),
    ).limit(1)).first() is not None


def claim(
    conn: Connection, owner: str, size: int, lease_seconds: float, now: datetime,
) -> Batch | Literal["busy"] | None:
    """Take up to `size` deliveries of the oldest notification with work to do: retries that
    are due, deliveries a crashed process left behind, then subscribers not reached yet.
    None when there is nothing to send; BUSY when another sender is claiming from every
    notification that may have work (its transaction lasts milliseconds: try again soon)."""
    unfinished = conn.execute(
        select(push_notifications.c.id).where(push_notifications.c.finished_at.is_(None))
        .order_by(push_notifications.c.id).limit(20)
    ).scalars().all()
    busy = False
    for notification_id in unfinished:
        # One claimer a notification, so two never take the same subscribers; the others
        # skip it rather than queue behind it (PostgreSQL; SQLite's writers are one at a time).
        note = conn.execute(
            select(push_notifications)
            .where(push_notifications.c.id == notification_id, push_notifications.c.finished_at.is_(None))
            .with_for_update(skip_locked=True)
        ).first()
        if note is None:
            busy = True  # being claimed from (or finished just now: the next try sees it)
            continue
        if _withdrawn(conn, note):
            # Deleted while it was going out (posted by mistake): send it to nobody else.
            if not _stop(conn, note.id, now):
                busy = True
            continue
        lease = now + timedelta(seconds=lease_seconds)
        due = conn.execute(
            select(push_deliveries.c.subscription_id)
            .where(push_deliveries.c.notification_id == note.id, push_deliveries.c.not_before <= now)
            .limit(size)
            .with_for_update(skip_locked=True)  # a late owner recording these answers: leave them to it
        ).scalars().all()
        if due:
            conn.execute(
                update(push_deliveries)
                .where(push_deliveries.c.notification_id == note.id, push_deliveries.c.subscription_id.in_(due))
                .values(state="sending", owner=owner, not_before=lease)
            )
        subs = push_subscriptions.c
        fresh: list[Subscription] = []
        if len(due) < size and note.cursor < note.last_subscription_id:
            # Subscribers not reached yet come with their keys in the same read: a first try
            # has no delivery row to join until this claim writes it.
            fresh = [Subscription(row.id, row.endpoint, row.p256dh, row.auth, 0) for row in recipients.following(
                conn, note.story_id, note.cursor, note.last_subscription_id, size - len(due))]
            cursor = fresh[-1].id if len(fresh) == size - len(due) else note.last_subscription_id
            conn.execute(update(push_notifications).where(push_notifications.c.id == note.id).values(cursor=cursor))
            if fresh:
                conn.execute(insert(push_deliveries), [
                    {"notification_id": note.id, "subscription_id": sub.id, "state": "sending", "owner": owner,
                     "attempts": 0, "not_before": lease} for sub in fresh
                ])
        if not due and not fresh:
            if note.cursor >= note.last_subscription_id and not _has_deliveries(conn, note.id):
                conn.execute(
                    update(push_notifications).where(push_notifications.c.id == note.id).values(finished_at=now))
            continue
        retried: list[Subscription] = []
        if due:
            retried = [Subscription(*row) for row in conn.execute(
                select(subs.id, subs.endpoint, subs.p256dh, subs.auth, push_deliveries.c.attempts)
                .join(push_deliveries, push_deliveries.c.subscription_id == subs.id)
                .where(push_deliveries.c.notification_id == note.id, push_deliveries.c.owner == owner,
                       push_deliveries.c.state == "sending", subs.id.in_(due))
            )]
        return Batch(note.id, note.payload.encode(), note.topic, note.urgency, note.ttl, retried + fresh)
    return BUSY if busy else None


def _stop(conn: Connection, notification_id: int, now: datetime) -> bool:
    """End a notification whose update was deleted; False while another sender is still
    recording answers for it (the next claim finishes the job)."""
    # Deliveries out with a sender (another lane, process or node) are left to it: their
    # messages may be on the way, and its record counts them; the notification ends once
    # they are in. Those it is recording right now are skipped, not waited for: that sender
    # waits for the notification row, which this transaction holds.
    deliveries = push_deliveries.c
    free = conn.execute(
        select(deliveries.subscription_id)
        .where(deliveries.notification_id == notification_id,
               (deliveries.state != "sending") | (deliveries.not_before <= now))
        .with_for_update(skip_locked=True)
    ).scalars().all()
    if free:
        conn.execute(delete(push_deliveries).where(
            push_deliveries.c.notification_id == notification_id, push_deliveries.c.subscription_id.in_(free)))
    if _has_deliveries(conn, notification_id):
        return False
    conn.execute(update(push_notifications).where(push_notifications.c.id == notification_id).values(
        finished_at=now, last_error="Stopped: the update was deleted."))
    return True


def _withdrawn(conn: Connection, note: Row[Any]) -> bool:
    """The update (or the figures block) the notification tells of is deleted."""
    if note.block_id is not None:
        gone = select(figure_blocks.c.deleted_at).where(figure_blocks.c.id == note.block_id)
        return conn.execute(gone).scalar() is not None
    if note.entry_id is None:
        return True
    return conn.execute(select(entries.c.deleted_at).where(entries.c.id == note.entry_id)).scalar() is not None


def _has_deliveries(conn: Connection, notification_id: int) -> bool:
    return conn.execute(
        select(push_deliveries.c.subscription_id).where(push_deliveries.c.notification_id == notification_id).limit(1)
    ).first() is not None


def renew(conn: Connection, owner: str, lease_seconds: float, now: datetime) -> None:
    """Still sending: keep this process's deliveries from being taken over."""
    conn.execute(
        update(push_deliveries).where(push_deliveries.c.owner == owner, push_deliveries.c.state == "sending")
        .values(not_before=now + timedelta(seconds=lease_seconds))
    )


def release(conn: Connection, owner: str, now: datetime) -> None:
    """Shutting down: deliveries not sent yet are due again at once, for any process."""
    conn.execute(
        update(push_deliveries).where(push_deliveries.c.owner == owner, push_deliveries.c.state == "sending")
        .values(state="retry", owner=None, not_before=now)
    )


def retry_delay(attempts: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(max(retry_after, 1.0), MAX_RETRY_SECONDS)
    return float(min(5 * 2 ** attempts, MAX_RETRY_SECONDS))


def record(conn: Connection, owner: str, batch: Batch, outcomes: dict[int, Outcome], now: datetime) -> None:
    """Write down each answer of a batch (only deliveries this process still owns)."""
    note_id = batch.notification_id
    mine = and_(push_deliveries.c.notification_id == note_id, push_deliveries.c.owner == owner,
                push_deliveries.c.state == "sending")
    by_id = {s.id: s for s in batch.subscriptions}
    done: dict[int, Outcome] = {}  # answered for good: sent, or failed past retrying
    later: dict[int, Outcome] = {}  # gone, or to try again
    for sid, outcome in outcomes.items():
        final = outcome.kind in ("sent", "failed") or (
            outcome.kind == "retry" and by_id[sid].attempts + 1 >= MAX_ATTEMPTS)
        (done if final else later)[sid] = outcome
    counts = {"sent": 0, "failed": 0, "removed": 0}
    last_error = None
    # A delivery whose lease ran out may have been taken over by another process: its answer
    # counts there, not here. The statements below touch only rows this process still owns,
    # and lock them (PostgreSQL), so a delivery taken over is counted once. Most answers are
    # final: their rows are deleted, and the rows deleted are the ones that count.
    if done:
        deleted = conn.execute(
            delete(push_deliveries).where(mine, push_deliveries.c.subscription_id.in_(list(done)))
            .returning(push_deliveries.c.subscription_id)
        ).scalars().all()
        for sid in deleted:
            outcome = done[sid]
            if outcome.kind == "sent":
                counts["sent"] += 1
            else:
                counts["failed"] += 1
                last_error = outcome.error
    owned = set(conn.execute(
        select(push_deliveries.c.subscription_id).where(mine, push_deliveries.c.subscription_id.in_(list(later)))
        .with_for_update()
    ).scalars()) if later else set()
    gone_endpoints: list[str] = []
    for sid, outcome in later.items():
        if sid not in owned:
            continue
        sub = by_id[sid]
        if outcome.kind == "gone":
            counts["removed"] += 1
            gone_endpoints.append(sub.endpoint)
        else:
            delay = retry_delay(sub.attempts, outcome.retry_after)
            conn.execute(
                update(push_deliveries).where(mine, push_deliveries.c.subscription_id == sid)
                .values(state="retry", owner=None, attempts=sub.attempts + 1,
                        not_before=now + timedelta(seconds=delay), last_error=outcome.error)
            )
    if gone_endpoints:
        # The push service says this browser's subscription is over: forget it everywhere.
        conn.execute(delete(push_deliveries).where(
            push_deliveries.c.subscription_id.in_(
                select(push_subscriptions.c.id).where(push_subscriptions.c.endpoint.in_(gone_endpoints)))))
        conn.execute(delete(push_subscriptions).where(push_subscriptions.c.endpoint.in_(gone_endpoints)))
    values: dict[str, Any] = {k: push_notifications.c[k] + v for k, v in counts.items() if v}
    if last_error:
        values["last_error"] = last_error
    if values:
        conn.execute(update(push_notifications).where(push_notifications.c.id == note_id).values(**values))


# --- progress -----------------------------------------------------------------------------


def progress(conn: Connection, story_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The story's latest notifications and how far each has got, for its editors."""
    rows = conn.execute(
        select(push_notifications).where(push_notifications.c.story_id == story_id)
        .order_by(push_notifications.c.id.desc()).limit(limit)
    )
    return [progress_json(row) for row in rows]


def progress_json(row: Row[Any]) -> dict[str, Any]:
    message = json.loads(row.payload)
    return {
        "id": row.id, "entry_id": row.entry_id, "title": message.get("title"), "body": message.get("body"),
        "recipients": row.recipients, "sent": row.sent, "failed": row.failed, "removed": row.removed,
        "last_error": row.last_error, "created_at": iso_or_none(row.created_at),
        "finished_at": iso_or_none(row.finished_at),
    }
