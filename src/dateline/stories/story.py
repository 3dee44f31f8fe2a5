"""Stories: the developing events a newsroom covers live, stored and read.

The rules of who may create or change one live in `posting`; this module only stores.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, select, update

from ..errors import Conflict
from ..schema import stories
from ..times import iso, iso_or_none
from ..times import now as utc_now
from ..vocabulary import (
    MAX_SLUG,
    PUBLIC_STATUSES,
    SLUG_PATTERN,
    STORY_CREATED,
    STORY_FACTS,
    STORY_UPDATED,
    Audience,
)
from . import events


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:60].rstrip("-") or "story"


def _unique_slug(conn: Connection, base: str) -> str:
    taken = set(conn.execute(select(stories.c.slug).where(stories.c.slug.like(f"{base}%"))).scalars())
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def story_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "slug": row.slug,
        "headline": row.headline,
        "dateline": row.dateline,
        "summary": row.summary,
        "status": row.status,
        "requires_approval": row.requires_approval,
        "starts_at": iso_or_none(row.starts_at),
        "coverage_started_at": iso_or_none(row.coverage_started_at),
        "coverage_ended_at": iso_or_none(row.coverage_ended_at),
        "closing_summary": row.closing_summary,
        "facts": json.loads(row.facts),
        "facts_updated_at": iso_or_none(row.facts_updated_at),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def story_etag(row: Row[Any]) -> str:
    """Changes when an editor-visible field changes, not when an update is posted."""
    digest = hashlib.sha256(
        "\x1f".join((row.headline, row.dateline, row.summary, row.status, str(row.requires_approval),
                     str(row.starts_at), row.closing_summary, row.facts)).encode()
    ).hexdigest()[:20]
    return f'"s{row.id}-{digest}"'


def get_story(conn: Connection, slug: str, audience: Audience = Audience.readers) -> Row[Any] | None:
    if len(slug) > MAX_SLUG or not SLUG_PATTERN.match(slug):
        return None  # not a slug Dateline could have made: no need to ask the database
    query = select(stories).where(stories.c.slug == slug)
    if audience is Audience.readers:
        query = query.where(stories.c.status.in_(PUBLIC_STATUSES))
    return conn.execute(query).first()


def list_stories(conn: Connection, audience: Audience = Audience.readers, limit: int = 100) -> list[Row[Any]]:
    """Live stories first, then those coming up, drafts, and ended ones; most recently
    updated first within each."""
    query = select(stories)
    if audience is Audience.readers:
        query = query.where(stories.c.status.in_(PUBLIC_STATUSES))
    live_first = case((stories.c.status == "live", 0), (stories.c.status == "scheduled", 1),
                      (stories.c.status == "draft", 2), else_=3)
    return list(conn.execute(query.order_by(live_first, stories.c.updated_at.desc()).limit(limit)))


def create_story(
    conn: Connection,
    *,
    headline: str,
    slug: str | None = None,
    dateline: str = "",
    summary: str = "",
    status: str = "draft",
    requires_approval: bool = False,
    starts_at: datetime | None = None,
) -> Row[Any]:
    now = utc_now()
    if slug:
        if conn.execute(select(stories.c.id).where(stories.c.slug == slug)).first():
            raise Conflict(f"The slug {slug!r} is already used by another story.")
    else:
        slug = _unique_slug(conn, slugify(headline))
    story_id = conn.execute(
        stories.insert()
        .values(
            slug=slug, headline=headline, dateline=dateline, summary=summary, status=status,
            requires_approval=requires_approval, created_at=now, updated_at=now, last_event_id=0,
            starts_at=starts_at, closing_summary="", **coverage_moments(None, {"status": status}, now),
        )
        .returning(stories.c.id)
    ).scalar_one()
    return _log_story_change(conn, story_id, STORY_CREATED, now)


def coverage_moments(old_status: str | None, changes: dict[str, Any], now: datetime,
                     started: datetime | None = None) -> dict[str, Any]:
    """What a change of status also changes: going live starts the coverage (once; a reopened
    story keeps its first start) and clears an ending; ending it marks the moment."""
    status = changes.get("status", old_status)
    if status == old_status:
        return {}
    moments: dict[str, Any] = {}
    if status in ("live", "ended") and started is None:
        moments["coverage_started_at"] = now
    if status == "ended":
        moments["coverage_ended_at"] = now
    elif old_status == "ended":
        moments["coverage_ended_at"] = None  # reopened (or back to draft): no longer ended
        if "closing_summary" not in changes:
            moments["closing_summary"] = ""
    return moments


def update_story(conn: Connection, story: Row[Any], changes: dict[str, Any]) -> Row[Any]:
    """Change a story's fields. "What we know" has its own event (`story.facts`), so a
    reader's page and the feeds learn of it as such; every other change is `story.updated`."""
    if "facts" in changes:
        changes["facts"] = json.dumps(changes["facts"], ensure_ascii=False)
    changes = {k: v for k, v in changes.items() if getattr(story, k) != v}
    if not changes:
        return story
    now = utc_now()
    facts_changed = "facts" in changes
    if facts_changed:
        changes["facts_updated_at"] = now
    changes.update(coverage_moments(story.status, changes, now, story.coverage_started_at))
    events.lock(conn)  # before the story row: the order every writer follows
    conn.execute(update(stories).where(stories.c.id == story.id).values(**changes))
    if changes.keys() - {"facts", "facts_updated_at"}:
        story = _log_story_change(conn, story.id, STORY_UPDATED, now)
    if facts_changed:
        story = _log_story_change(conn, story.id, STORY_FACTS, now, facts_json)
    return story


def facts_json(row: Row[Any]) -> dict[str, Any]:
    """A `story.facts` event: the whole list as it now stands, and when it changed."""
    return {"slug": row.slug, "facts": json.loads(row.facts), "facts_updated_at": iso_or_none(row.facts_updated_at),
            "updated_at": iso(row.updated_at)}


def _log_story_change(conn: Connection, story_id: int, type: str, now: datetime,
                      data: Callable[[Row[Any]], dict[str, Any]] = story_json) -> Row[Any]:
    conn.execute(update(stories).where(stories.c.id == story_id).values(updated_at=now))
    row = conn.execute(select(stories).where(stories.c.id == story_id)).one()
    events.append(conn, story_id, type, data(row), now)
    return conn.execute(select(stories).where(stories.c.id == story_id)).one()  # with its last_event_id
