"""The event log: every change to a story, in order, with a global strictly increasing id.

Writers call `append` inside the transaction that makes the change, so the change and its
event commit together or not at all. The catch-up API and a resuming live
reader read one story with `read_after`; each process's live follower reads the whole log
with `read_log_after`. A reader that has seen id N never later finds a new event below N.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, text, update

from ..db import mark_appended
from ..schema import entries, events, stories
from ..vocabulary import EDITING, ENTRY_DELETED, EVENT_TYPES, NEWSROOM_PREFIX, PUBLIC_STATUSES, Audience

FETCH_ROWS = 16  # rows fetched at a time by a bounded read
PRUNE_ROWS = 10_000  # rows deleted by one transaction of a prune: writers wait no longer than that
# Any constant works: it names the PostgreSQL advisory lock that orders appends.
EVENT_LOG_LOCK = 0x446174656C696E65  # "Dateline"


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    story_id: int
    type: str
    data: str  # JSON text, encoded once when the event was written
    entry_id: int | None = None  # read by the live follower: its window drops a deleted entry's events

    @property
    def public(self) -> bool:
        return not self.type.startswith(NEWSROOM_PREFIX)

    def to_json(self) -> str:
        return f'{{"id":{self.id},"type":"{self.type}","data":{self.data}}}'


def encode(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def lock(conn: Connection) -> None:
    """Hold the event-log lock until this transaction ends (PostgreSQL).

    PostgreSQL hands out sequence values at insert time but they become visible at commit,
    so two writers could commit ids 8 then 7, and a reader that saw 8 would miss 7. Taking
    this lock right before the insert makes commit order equal id order; it is held only for
    the tail of the transaction. SQLite needs nothing: BEGIN IMMEDIATE lets one writer in.

    `append` then updates the story row, so the lock order is: this lock, then the story row.
    A writer that changes the story row itself must take this lock first (`update_story`
    does), or two writers could each hold what the other waits for.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK})


def append(
    conn: Connection,
    story_id: int,
    type: str,
    data: dict[str, Any],
    now: datetime,
    entry_id: int | None = None,
) -> int:
    """Append one event in the caller's write transaction; returns its id."""
    assert type in EVENT_TYPES, type
    lock(conn)
    mark_appended(conn)
    event_id: int = conn.execute(
        events.insert()
        .values(story_id=story_id, type=type, entry_id=entry_id, data=encode(data), created_at=now)
        .returning(events.c.id)
    ).scalar_one()
    if not type.startswith(NEWSROOM_PREFIX):  # readers' pages change, and so does their validator
        conn.execute(
            update(stories).where(stories.c.id == story_id).values(last_event_id=event_id, updated_at=now)
        )
    return event_id


def read_after(
    conn: Connection, story_id: int, after: int, limit: int = 500, *, audience: Audience = Audience.readers,
    max_bytes: int | None = None,
) -> list[Event]:
    """Events of a story after `after`, oldest first, as visible now.

    Events of an entry deleted since are left out (its `entry.deleted` event stays), so a
    catch-up never brings a deleted update back to life, not even for a moment. Readers see
    no newsroom-only events and nothing of entries still pending.

    With `max_bytes`, rows are fetched a few at a time and the read stops once their data
    reaches that size (one event at least): a live replay holds one bounded batch at a time.
    """
    visible = [or_(events.c.entry_id.is_(None), events.c.type == ENTRY_DELETED, entries.c.deleted_at.is_(None))]
    if audience is Audience.readers:
        visible += [
            events.c.type.notlike(NEWSROOM_PREFIX + "%"),
            or_(events.c.entry_id.is_(None), events.c.type == ENTRY_DELETED, entries.c.status == "published"),
        ]
    query = (
        select(events.c.id, events.c.story_id, events.c.type, events.c.data)
        .select_from(events.outerjoin(entries, entries.c.id == events.c.entry_id))
        .where(events.c.story_id == story_id, events.c.id > after, *visible)
        .order_by(events.c.id)
        .limit(limit)
    )
    if max_bytes is None:
        return [Event(row.id, row.story_id, row.type, row.data) for row in conn.execute(query)]
    found: list[Event] = []
    size = 0
    with conn.execute(query.execution_options(yield_per=FETCH_ROWS)) as rows:
        for row in rows:
            found.append(Event(row.id, row.story_id, row.type, row.data))
            size += len(row.data)
            if size >= max_bytes:
                break
    return found


def read_replay(
    conn: Connection, story_id: int, after: int, limit: int, max_bytes: int, audience: Audience
) -> list[Event] | None:
    """One batch of a live replay, or None when the story is no longer there for this
    audience (back to draft, deleted): checked in the same read, so no event goes out of a
    story its reader may no longer see."""
    status = conn.execute(select(stories.c.status).where(stories.c.id == story_id)).scalar_one_or_none()
    if status is None or (audience is Audience.readers and status not in PUBLIC_STATUSES):
        return None
    return read_after(conn, story_id, after, limit, audience=audience, max_bytes=max_bytes)


def story_last_id(conn: Connection, story_id: int, audience: Audience) -> int:
    """The story's newest event this audience can see: for readers the one their pages'
    validators use; the newsroom's also counts newsroom-only events (held posts, presence)."""
    if audience is Audience.readers:
        found = conn.execute(select(stories.c.last_event_id).where(stories.c.id == story_id)).scalar_one_or_none()
    else:
        found = conn.execute(select(func.max(events.c.id)).where(events.c.story_id == story_id)).scalar_one()
    return int(found or 0)


LOG_COLUMNS = (events.c.id, events.c.story_id, events.c.type, events.c.data, events.c.entry_id)


def read_log_after(conn: Connection, after: int, limit: int = 1000) -> list[Event]:
    """The whole log after `after`, every story, as written: what live delivery follows."""
    rows = conn.execute(select(*LOG_COLUMNS).where(events.c.id > after).order_by(events.c.id).limit(limit))
    return [Event(row.id, row.story_id, row.type, row.data, row.entry_id) for row in rows]


def read_log_newest(conn: Connection, upto: int, limit: int) -> list[Event]:
    """The newest `limit` events of the whole log up to id `upto`, oldest first: each process
    starts its window of recent events with them."""
    rows = conn.execute(select(*LOG_COLUMNS).where(events.c.id <= upto).order_by(events.c.id.desc()).limit(limit))
    return [Event(row.id, row.story_id, row.type, row.data, row.entry_id) for row in reversed(rows.all())]


def last_id(conn: Connection) -> int:
    """The newest event id in the whole log (0 when empty)."""
    return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def first_id(conn: Connection) -> int:
    """The oldest id still in the log: a cursor below it may have missed pruned events."""
    return int(conn.execute(select(func.coalesce(func.min(events.c.id), 0))).scalar_one())


def prune_presence(conn: Connection, before: datetime, above: int) -> tuple[int, int]:
    """Delete "who is editing" events written before `before` (they are only true for
    seconds), looking only at ids above `above`; returns (deleted, the id to look above next
    time). Ids grow with time, so the next run starts where this one's old rows ended."""
    old = events.c.id > above, events.c.created_at < before
    highest = conn.execute(select(func.max(events.c.id)).where(*old)).scalar_one()
    if highest is None:
        return 0, above
    deleted = conn.execute(delete(events).where(*old, events.c.type == EDITING)).rowcount
    return int(deleted or 0), int(highest)


def prune_older(conn: Connection, before: datetime) -> int:
    """Delete up to PRUNE_ROWS of the oldest events written before `before`; returns how many.
    The newest event of the log is always kept, so the log's first and last ids keep telling a
    resuming reader whether it missed anything."""
    first_kept = conn.execute(
        select(events.c.id).where(events.c.created_at >= before).order_by(events.c.id).limit(1)
    ).scalar_one_or_none()
    cut = int(first_kept) if first_kept is not None else last_id(conn)
    upto = min(cut, first_id(conn) + PRUNE_ROWS)
    deleted = conn.execute(delete(events).where(events.c.id < upto)).rowcount
    return int(deleted or 0)
