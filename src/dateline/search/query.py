"""One page of search hits, as an audience may see them.

Readers find public stories (scheduled, live, ended) and the published updates of those (never a draft
story, a post pending approval, a deleted update). The newsroom also finds drafts and
pending posts, never deleted ones. The index holds the approved copy of each update: the
words of an edit waiting for approval are not found until an editor approves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from markupsafe import Markup
from sqlalchemy import ColumnElement, Connection, Row, Select, and_, case, func, literal, null, or_, select, union_all

from ..schema import entries, stories
from ..vocabulary import PUBLIC_STATUSES, Audience
from . import index
from .snippets import entry_texts, highlight
from .terms import DEFAULT_LIMIT, MAX_COUNTED, fts5_query, plain_query

HitKind = Literal["story", "update"]


@dataclass(frozen=True)
class Search:
    words: list[str]
    story_id: int | None = None
    since: datetime | None = None  # the first moment admitted
    until: datetime | None = None  # the last moment admitted
    newest_first: bool = False  # else best match first
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    kind: HitKind
    story: str  # slug
    headline: str
    story_status: str
    entry_id: int | None
    entry_kind: str | None
    entry_status: str | None
    published_at: datetime  # an update's publication, a story's start
    snippet: Markup

    @property
    def path(self) -> str:
        """The hit's permalink on the reader's site."""
        if self.entry_id is None:
            return f"/stories/{self.story}"
        return f"/stories/{self.story}/entries/{self.entry_id}"


@dataclass(frozen=True)
class Found:
    hits: list[Hit] = field(default_factory=list)
    total: int = 0  # counted up to MAX_COUNTED
    total_exact: bool = True  # False: more than `total`
    has_more: bool = False


def run(conn: Connection, search: Search, audience: Audience) -> Found:
    """The page of hits `search` asks for, best match (or newest) first, and how many there
    are, counted up to MAX_COUNTED."""
    if not search.words:
        return Found()
    hits = _sqlite_hits(search, audience) if conn.dialect.name == "sqlite" else _postgresql_hits(search, audience)
    found = hits.subquery()
    order = (found.c.score.desc(),) if not search.newest_first else ()
    page = conn.execute(
        select(found).order_by(*order, found.c.moment.desc(), found.c.ref.desc())
        .limit(search.limit + 1).offset(search.offset)
    ).all()
    counted = conn.execute(select(func.count()).select_from(hits.limit(MAX_COUNTED + 1).subquery())).scalar_one()
    return Found(
        hits=[_hit(row, search.words) for row in page[: search.limit]],
        total=min(counted, MAX_COUNTED),
        total_exact=counted <= MAX_COUNTED,
        has_more=len(page) > search.limit,
    )


def _visible_story(search: Search, audience: Audience) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if audience is Audience.readers:
        conditions.append(stories.c.status.in_(PUBLIC_STATUSES))
    if search.story_id is not None:
        conditions.append(stories.c.id == search.story_id)
    return conditions


def _visible_entry(audience: Audience) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [entries.c.deleted_at.is_(None)]
    if audience is Audience.readers:
        conditions.append(entries.c.status == "published")
    return conditions


def _in_window(moment: ColumnElement[Any], search: Search) -> list[ColumnElement[bool]]:
    conditions = []
    if search.since is not None:
        conditions.append(moment >= search.since)
    if search.until is not None:
        conditions.append(moment <= search.until)
    return conditions


_STORY_COLUMNS = (stories.c.slug, stories.c.headline, stories.c.summary, stories.c.dateline,
                  stories.c.status.label("story_status"))


def _sqlite_hits(search: Search, audience: Audience) -> Select[Any]:
    """One FTS5 query over both kinds: a story's row has its id negated."""
    rowid = index.fts.c.rowid
    is_story = rowid < 0
    moment = case((is_story, stories.c.created_at), else_=entries.c.published_at)
    found = (
        index.fts.outerjoin(entries, and_(rowid > 0, entries.c.id == rowid))
        .join(stories, stories.c.id == case((is_story, -rowid), else_=entries.c.story_id))
    )
    return (
        select(
            case((is_story, "story"), else_="update").label("kind"), *_STORY_COLUMNS,
            entries.c.id.label("entry_id"), entries.c.kind.label("entry_kind"),
            entries.c.status.label("entry_status"), entries.c.body, entries.c.fields,
            moment.label("moment"), rowid.label("ref"), index.fts_score().label("score"),
        )
        .select_from(found)
        .where(index.fts_match(fts5_query(search.words)), or_(is_story, and_(*_visible_entry(audience))),
               *_visible_story(search, audience), *_in_window(moment, search))
    )


def _postgresql_hits(search: Search, audience: Audience) -> Select[Any]:
    """The updates and the stories matched, each by its own tsvector column."""
    words = plain_query(search.words)
    updates = (
        select(
            literal("update").label("kind"), *_STORY_COLUMNS,
            entries.c.id.label("entry_id"), entries.c.kind.label("entry_kind"),
            entries.c.status.label("entry_status"), entries.c.body, entries.c.fields,
            entries.c.published_at.label("moment"), entries.c.id.label("ref"),
            index.ts_score(entries, words).label("score"),
        )
        .select_from(entries.join(stories, stories.c.id == entries.c.story_id))
        .where(index.ts_match(entries, words), *_visible_entry(audience), *_visible_story(search, audience),
               *_in_window(entries.c.published_at, search))
    )
    whole_stories = (
        select(
            literal("story").label("kind"), *_STORY_COLUMNS,
            null(), null(), null(), null(), null(),
            stories.c.created_at.label("moment"), (-stories.c.id).label("ref"),
            index.ts_score(stories, words).label("score"),
        )
        .where(index.ts_match(stories, words), *_visible_story(search, audience),
               *_in_window(stories.c.created_at, search))
    )
    return union_all(updates, whole_stories).subquery().select()


def _hit(row: Row[Any], words: list[str]) -> Hit:
    if row.kind == "story":
        texts = [row.summary, row.headline, row.dateline]
    else:
        texts = entry_texts(row.entry_kind, row.body, json.loads(row.fields))
    return Hit(
        kind=row.kind, story=row.slug, headline=row.headline, story_status=row.story_status,
        entry_id=row.entry_id, entry_kind=row.entry_kind, entry_status=row.entry_status,
        published_at=row.moment, snippet=highlight(texts, words),
    )
