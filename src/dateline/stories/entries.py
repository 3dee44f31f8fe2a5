"""Entries: the short timestamped updates of a story, with revisions and tombstones.

`entry_json` is the one shape of an entry: the API answers with it, the event log stores it,
the live stream sends it. The rules of who may post, edit or approve live in `posting`;
this module only stores and renders. Its `html` is the whole rendered update (quote attribution, photo
with caption and credit, embed card), sanitized, so every surface shows the same thing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from markupsafe import escape
from sqlalchemy import Connection, Row, select, update

from ..accounts.users import User
from ..schema import entries, entry_revisions, users
from ..times import iso
from ..times import now as utc_now
from ..vocabulary import (
    ENTRY_CREATED,
    ENTRY_DELETED,
    ENTRY_FLAGS,
    ENTRY_SUBMITTED,
    ENTRY_UPDATED,
    KIND_FIELDS,
    Audience,
    EntryKind,
    EntryStatus,
)
from ..vocabulary import (
    entry_etag as etag_of,
)
from . import embeds, events
from .markup import render_markdown
from .photos import StoredImage


def render_html(kind: EntryKind, body: str, fields: dict[str, str]) -> str:
    """The update as HTML: user text is either escaped or sanitized Markdown."""
    html = _render_kind(kind, render_markdown(body) if body.strip() else "", fields)
    if fields.get("correction", "").strip():
        html += f'<p class="correction"><strong>Correction:</strong> {escape(fields["correction"])}</p>'
    return html


def _render_kind(kind: EntryKind, body_html: str, fields: dict[str, str]) -> str:
    if kind == "quote":
        who = f"<cite>{escape(fields.get('speaker', ''))}</cite>"
        if fields.get("role"):
            who += f", {escape(fields['role'])}"
        return f'<blockquote class="quote">{body_html}<footer>{who}</footer></blockquote>'
    if kind == "image":
        caption = str(escape(fields.get("caption", "")))
        if fields.get("credit"):
            caption += f' <span class="credit">{escape(fields["credit"])}</span>'
        upload = StoredImage.from_url(fields["image_url"])
        sizing = (
            f' srcset="{upload.srcset}" sizes="(min-width: 44rem) 42rem, 100vw" '
            f'width="{upload.width}" height="{upload.height}"' if upload else ""
        )
        figure = (
            f'<figure class="photo"><img src="{escape(fields["image_url"])}"{sizing} '
            f'alt="{escape(fields.get("alt", ""))}" loading="lazy" decoding="async">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
        return figure + body_html
    if kind == "embed":
        # A card: nothing loads from a third party until the reader asks for it.
        return body_html + embeds.render(fields["url"])
    return body_html


def _select_entries() -> Any:
    return select(entries, users.c.username, users.c.display_name).join(
        users, users.c.id == entries.c.author_id
    )


def stored_fields(row: Row[Any]) -> dict[str, str]:
    """An entry's kind fields as stored (JSON in one column)."""
    fields: dict[str, str] = json.loads(row.fields)
    return fields


def entry_json(row: Row[Any], story_slug: str) -> dict[str, Any]:
    fields = stored_fields(row)
    data: dict[str, Any] = {
        "id": row.id,
        "story": story_slug,
        "kind": row.kind,
        "body": row.body,
        "html": row.html,
        "author": {"username": row.username, "name": row.display_name},
        "published_at": iso(row.published_at),
        "updated_at": iso(row.updated_at),
        "revision": row.revision,
        "pinned": row.pinned,
        "key_event": row.key_event,
        "status": row.status,
    }
    for name in KIND_FIELDS[row.kind]:
        data[name] = fields.get(name, "")
    return data


def entry_etag(row: Row[Any]) -> str:
    return etag_of(row.id, row.revision)


def _visible(story_id: int, audience: Audience) -> list[Any]:
    conditions = [entries.c.story_id == story_id, entries.c.deleted_at.is_(None)]
    if audience is Audience.readers:
        conditions.append(entries.c.status == "published")
    return conditions


def get_entry(
    conn: Connection, story_id: int, entry_id: int, audience: Audience = Audience.readers
) -> Row[Any] | None:
    return conn.execute(
        _select_entries().where(entries.c.id == entry_id, *_visible(story_id, audience))
    ).first()


def list_entries(
    conn: Connection, story_id: int, *, before: int | None = None, after: int | None = None,
    limit: int = 20, oldest_first: bool = False, audience: Audience = Audience.readers,
) -> list[Row[Any]]:
    """One page of a story's visible entries, by id: newest first unless asked otherwise."""
    query = _select_entries().where(*_visible(story_id, audience))
    if before is not None:
        query = query.where(entries.c.id < before)
    if after is not None:
        query = query.where(entries.c.id > after)
    order = entries.c.id.asc() if oldest_first else entries.c.id.desc()
    return list(conn.execute(query.order_by(order).limit(limit)))


def list_flagged(conn: Connection, story_id: int, flag: str, limit: int = 20) -> list[Row[Any]]:
    """Pinned or key-event entries of a story, newest first."""
    column = entries.c[flag]
    query = (
        _select_entries()
        .where(*_visible(story_id, Audience.readers), column.is_(True))
        .order_by(entries.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))


def create_entry(
    conn: Connection, story: Row[Any], author: User, *, kind: EntryKind, body: str,
    fields: dict[str, str], pinned: bool = False, key_event: bool = False,
    published_at: datetime | None = None, status: EntryStatus = "published",
) -> dict[str, Any]:
    """Store an update; a `pending` one waits for an editor's approval, seen by the newsroom
    only. `published_at` backdates it (imports and the demo only)."""
    now = published_at or utc_now()
    fields_json = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    entry_id = conn.execute(
        entries.insert()
        .values(
            story_id=story.id, kind=kind, body=body, html=render_html(kind, body, fields),
            fields=fields_json, author_id=author.id, published_at=now, updated_at=now,
            revision=1, pinned=pinned, key_event=key_event, status=status,
        )
        .returning(entries.c.id)
    ).scalar_one()
    _keep_revision(conn, entry_id, 1, body, fields_json, author, now)
    data = entry_json(_load(conn, entry_id), story.slug)
    event = ENTRY_CREATED if status == "published" else ENTRY_SUBMITTED
    events.append(conn, story.id, event, data, now, entry_id=entry_id)
    return data


def approve_entry(conn: Connection, story: Row[Any], entry: Row[Any]) -> dict[str, Any]:
    """Publish a pending entry: readers get it now, as a new update."""
    now = utc_now()
    conn.execute(
        update(entries).where(entries.c.id == entry.id).values(status="published", published_at=now, updated_at=now)
    )
    data = entry_json(_load(conn, entry.id), story.slug)
    events.append(conn, story.id, ENTRY_CREATED, data, now, entry_id=entry.id)
    return data


def update_entry(
    conn: Connection, story: Row[Any], entry: Row[Any], editor: User, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply changes to body, kind fields and flags; a new revision if the content changed."""
    fields = stored_fields(entry)
    new_fields = {**fields, **{k: v for k, v in changes.items() if k in KIND_FIELDS[entry.kind]}}
    body = changes.get("body", entry.body)
    flags: dict[str, Any] = {k: changes[k] for k in ENTRY_FLAGS if k in changes and changes[k] != getattr(entry, k)}
    content_changed = body != entry.body or new_fields != fields
    if not content_changed and not flags:
        return entry_json(entry, story.slug)
    now = utc_now()
    values: dict[str, Any] = {"updated_at": now, **flags}
    if content_changed:
        fields_json = json.dumps(new_fields, ensure_ascii=False, sort_keys=True)
        values.update(
            body=body, fields=fields_json, html=render_html(entry.kind, body, new_fields),
            revision=entry.revision + 1,
        )
        _keep_revision(conn, entry.id, entry.revision + 1, body, fields_json, editor, now)
    conn.execute(update(entries).where(entries.c.id == entry.id).values(**values))
    data = entry_json(_load(conn, entry.id), story.slug)
    event = ENTRY_UPDATED if entry.status == "published" else ENTRY_SUBMITTED
    events.append(conn, story.id, event, data, now, entry_id=entry.id)
    return data


def delete_entry(conn: Connection, story: Row[Any], entry: Row[Any]) -> None:
    """Leave a tombstone: the row and its revisions stay, readers no longer see it."""
    now = utc_now()
    conn.execute(update(entries).where(entries.c.id == entry.id).values(deleted_at=now, updated_at=now))
    data = {"id": entry.id, "story": story.slug, "deleted_at": iso(now)}
    events.append(conn, story.id, ENTRY_DELETED, data, now, entry_id=entry.id)


def list_revisions(conn: Connection, entry_id: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(entry_revisions, users.c.username)
            .join(users, users.c.id == entry_revisions.c.edited_by)
            .where(entry_revisions.c.entry_id == entry_id)
            .order_by(entry_revisions.c.revision)
        )
    )


def _keep_revision(
    conn: Connection, entry_id: int, revision: int, body: str, fields_json: str, by: User,
    at: datetime,
) -> None:
    conn.execute(
        entry_revisions.insert().values(
            entry_id=entry_id, revision=revision, body=body, fields=fields_json, edited_by=by.id,
            edited_at=at,
        )
    )


def _load(conn: Connection, entry_id: int) -> Row[Any]:
    return conn.execute(_select_entries().where(entries.c.id == entry_id)).one()
