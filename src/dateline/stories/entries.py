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
from sqlalchemy import Connection, Row, and_, bindparam, select, tuple_, update

from ..accounts.users import User
from ..errors import NotFound
from ..schema import entries, entry_revisions, users
from ..times import iso
from ..times import now as utc_now
from ..vocabulary import (
    ENTRY_CREATED,
    ENTRY_DELETED,
    ENTRY_FLAGS,
    ENTRY_RESTORED,
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


_proposal = entry_revisions.alias("proposal")


def _select_entries() -> Any:
    """Entries with their author and, when one waits for approval, the edit proposed."""
    return (
        select(entries, users.c.username, users.c.display_name,
               _proposal.c.body.label("proposed_body"), _proposal.c.fields.label("proposed_fields"))
        .join(users, users.c.id == entries.c.author_id)
        .outerjoin(_proposal, and_(_proposal.c.entry_id == entries.c.id,
                                   _proposal.c.revision == entries.c.proposed_revision))
    )


def stored_fields(row: Row[Any]) -> dict[str, str]:
    """An entry's kind fields as stored (JSON in one column)."""
    fields: dict[str, str] = json.loads(row.fields)
    return fields


def newsroom_content(row: Row[Any]) -> tuple[str, dict[str, str]]:
    """Body and fields as the newsroom edits them: the edit waiting for approval, if any."""
    if row.proposed_revision is None:
        return row.body, stored_fields(row)
    return row.proposed_body, json.loads(row.proposed_fields)


def entry_json(row: Row[Any], story_slug: str, audience: Audience = Audience.readers) -> dict[str, Any]:
    """The entry as `audience` sees it: readers the approved copy, the newsroom an edit that
    waits for approval in its place (marked `edit_pending`, present only then)."""
    body, fields, html, revision = row.body, stored_fields(row), row.html, row.revision
    edit_pending = audience is Audience.newsroom and row.proposed_revision is not None
    if edit_pending:
        body, fields = newsroom_content(row)
        html, revision = render_html(row.kind, body, fields), row.proposed_revision
    data: dict[str, Any] = {
        "id": row.id,
        "story": story_slug,
        "kind": row.kind,
        "body": body,
        "html": html,
        "author": {"username": row.username, "name": row.display_name},
        "published_at": iso(row.published_at),
        "updated_at": iso(row.updated_at),
        "revision": revision,
        "etag": entry_etag(row),
        "pinned": row.pinned,
        "key_event": row.key_event,
        "status": row.status,
    }
    if edit_pending:
        data["edit_pending"] = True
    for name in KIND_FIELDS[row.kind]:
        data[name] = fields.get(name, "")
    return data


def entry_etag(row: Row[Any]) -> str:
    return etag_of(row.id, row.revision, pinned=row.pinned, key_event=row.key_event,
                   pending=row.status == "pending", proposed=row.proposed_revision)


def _visible(story_id: int, audience: Audience, deleted: bool = False) -> list[Any]:
    gone = entries.c.deleted_at.is_not(None) if deleted else entries.c.deleted_at.is_(None)
    conditions = [entries.c.story_id == story_id, gone]
    if audience is Audience.readers:
        conditions.append(entries.c.status == "published")
    return conditions


def get_entry(
    conn: Connection, story_id: int, entry_id: int, audience: Audience = Audience.readers,
    *, deleted: bool = False,
) -> Row[Any] | None:
    """The entry as `audience` may see it; with `deleted`, only if it was deleted (to restore it)."""
    return conn.execute(
        _select_entries().where(entries.c.id == entry_id, *_visible(story_id, audience, deleted))
    ).first()


_NEWEST_FIRST = (entries.c.published_at.desc(), entries.c.id.desc())


def _place_of(conn: Connection, story_id: int, entry_id: int) -> Any:
    """The place of the entry a page cursor names (any entry of the story, even one deleted
    since: the cursor stays good)."""
    found = conn.execute(
        select(entries.c.published_at, entries.c.id).where(entries.c.id == entry_id, entries.c.story_id == story_id)
    ).first()
    if found is None:
        raise NotFound(f"This story has no entry {entry_id} to page from.")
    # Bound with the column's own type, so the time compares as the database stores it.
    return tuple_(bindparam(None, found.published_at, type_=entries.c.published_at.type), found.id)


def list_entries(
    conn: Connection, story_id: int, *, before: int | None = None, after: int | None = None,
    limit: int = 20, oldest_first: bool = False, audience: Audience = Audience.readers, key_only: bool = False,
) -> list[Row[Any]]:
    """One page of a story's visible entries in publication order, newest first unless asked
    otherwise. `before` and `after` name the entry the page continues from (a cursor is the
    last entry's id), so a post approved late sits where it was published."""
    query = _select_entries().where(*_visible(story_id, audience))
    if key_only:
        query = query.where(entries.c.key_event.is_(True))
    place = tuple_(entries.c.published_at, entries.c.id)  # an entry's place in the story
    if before is not None:
        query = query.where(place < _place_of(conn, story_id, before))
    if after is not None:
        query = query.where(place > _place_of(conn, story_id, after))
    order = (entries.c.published_at.asc(), entries.c.id.asc()) if oldest_first else _NEWEST_FIRST
    return list(conn.execute(query.order_by(*order).limit(limit)))


def list_flagged(conn: Connection, story_id: int, flag: str, limit: int = 20) -> list[Row[Any]]:
    """Pinned or key-event entries of a story, newest first."""
    column = entries.c[flag]
    query = (
        _select_entries()
        .where(*_visible(story_id, Audience.readers), column.is_(True))
        .order_by(*_NEWEST_FIRST)
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
    data = entry_json(_load(conn, entry_id), story.slug)  # new: nothing of it waits yet
    event = ENTRY_CREATED if status == "published" else ENTRY_SUBMITTED
    events.append(conn, story.id, event, data, now, entry_id=entry_id)
    return data


def approve_entry(conn: Connection, story: Row[Any], entry: Row[Any]) -> dict[str, Any]:
    """Publish what waits: a pending post (readers get it now, as a new update) or an edit
    (it becomes the copy readers see)."""
    now = utc_now()
    values: dict[str, Any] = {"updated_at": now}
    if entry.status == "pending":
        values.update(status="published", published_at=now)
    else:
        body, fields = newsroom_content(entry)
        values.update(body=body, fields=entry.proposed_fields, html=render_html(entry.kind, body, fields),
                      revision=entry.proposed_revision, proposed_revision=None)
    conn.execute(update(entries).where(entries.c.id == entry.id).values(**values))
    row = _load(conn, entry.id)
    event = ENTRY_CREATED if entry.status == "pending" else ENTRY_UPDATED
    events.append(conn, story.id, event, entry_json(row, story.slug), now, entry_id=entry.id)
    return entry_json(row, story.slug, Audience.newsroom)


def propose_edit(
    conn: Connection, story: Row[Any], entry: Row[Any], editor: User, body: str, fields: dict[str, str]
) -> dict[str, Any]:
    """Keep an edit of a published entry for an editor's approval: readers keep the approved
    copy; the newsroom sees the edit in its place."""
    if (body, fields) == newsroom_content(entry):
        return entry_json(entry, story.slug, Audience.newsroom)
    now = utc_now()
    number = max(entry.revision, entry.proposed_revision or 0) + 1
    _keep_revision(conn, entry.id, number, body, json.dumps(fields, ensure_ascii=False, sort_keys=True), editor, now)
    conn.execute(update(entries).where(entries.c.id == entry.id).values(proposed_revision=number))
    data = entry_json(_load(conn, entry.id), story.slug, Audience.newsroom)
    events.append(conn, story.id, ENTRY_SUBMITTED, data, now, entry_id=entry.id)
    return data


def update_entry(
    conn: Connection, story: Row[Any], entry: Row[Any], editor: User, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply changes to body, kind fields and flags; a new revision if the content changed.

    Content changes apply to what the newsroom sees: an edit waiting for approval, when one
    does, which this then publishes. A change of flags alone leaves such an edit waiting."""
    content = {k: v for k, v in changes.items() if k == "body" or k in KIND_FIELDS[entry.kind]}
    publishes_proposal = bool(content) and entry.proposed_revision is not None
    base_body, base_fields = newsroom_content(entry) if content else (entry.body, stored_fields(entry))
    new_fields = {**base_fields, **{k: v for k, v in content.items() if k != "body"}}
    body = content.get("body", base_body)
    flags: dict[str, Any] = {k: changes[k] for k in ENTRY_FLAGS if k in changes and changes[k] != getattr(entry, k)}
    content_changed = body != entry.body or new_fields != stored_fields(entry)
    if not content_changed and not flags and not publishes_proposal:
        return entry_json(entry, story.slug, Audience.newsroom)
    now = utc_now()
    values: dict[str, Any] = {"updated_at": now, **flags}
    if publishes_proposal:
        values["proposed_revision"] = None
    if content_changed:
        fields_json = json.dumps(new_fields, ensure_ascii=False, sort_keys=True)
        if publishes_proposal and (body, new_fields) == (base_body, base_fields):
            number = entry.proposed_revision  # published as proposed: that revision is kept already
        else:
            number = max(entry.revision, entry.proposed_revision or 0) + 1
            _keep_revision(conn, entry.id, number, body, fields_json, editor, now)
        values.update(body=body, fields=fields_json, html=render_html(entry.kind, body, new_fields), revision=number)
    conn.execute(update(entries).where(entries.c.id == entry.id).values(**values))
    row = _load(conn, entry.id)
    if entry.status == "published":
        events.append(conn, story.id, ENTRY_UPDATED, entry_json(row, story.slug), now, entry_id=entry.id)
    if entry.status == "pending" or row.proposed_revision is not None:
        # The newsroom's view differs from the readers': it gets its own event.
        newsroom = entry_json(row, story.slug, Audience.newsroom)
        events.append(conn, story.id, ENTRY_SUBMITTED, newsroom, now, entry_id=entry.id)
    return entry_json(row, story.slug, Audience.newsroom)


def delete_entry(conn: Connection, story: Row[Any], entry: Row[Any]) -> None:
    """Leave a tombstone: the row and its revisions stay, readers no longer see it."""
    now = utc_now()
    conn.execute(update(entries).where(entries.c.id == entry.id).values(deleted_at=now, updated_at=now))
    data = {"id": entry.id, "story": story.slug, "deleted_at": iso(now)}
    events.append(conn, story.id, ENTRY_DELETED, data, now, entry_id=entry.id)


def restore_entry(conn: Connection, story: Row[Any], entry: Row[Any]) -> dict[str, Any]:
    """Take the tombstone away: the entry is back where it was published, as it was. Its
    `entry.restored` event carries it whole, as `entry.created` does."""
    now = utc_now()
    conn.execute(update(entries).where(entries.c.id == entry.id).values(deleted_at=None, updated_at=now))
    row = _load(conn, entry.id)
    if row.status == "published":
        events.append(conn, story.id, ENTRY_RESTORED, entry_json(row, story.slug), now, entry_id=entry.id)
    if row.status == "pending" or row.proposed_revision is not None:
        events.append(conn, story.id, ENTRY_SUBMITTED, entry_json(row, story.slug, Audience.newsroom), now,
                      entry_id=entry.id)
    return entry_json(row, story.slug, Audience.newsroom)


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
