"""`/api/v1/stories/{slug}/entries`: a story's updates, posted, edited, approved, deleted.

Each handler parses, calls the rules in `stories.posting` inside one transaction, and
answers: no rule about who may do what is written here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from ..stories import entries, posting
from ..times import iso
from ..vocabulary import CURSOR_REGEX, Audience
from ..web import idempotency
from ..web.deps import (
    ANONYMOUS_OK,
    Config,
    Db,
    EntryId,
    IdempotencyKey,
    IfMatch,
    Member,
    SlugPath,
    Viewer,
    audience_of,
    check_if_match,
)
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS, EDIT_ERRORS, WRITE_ERRORS
from .models import (
    MAX_PAGE,
    Entry,
    EntryCreate,
    EntryPage,
    EntryUpdate,
    Preview,
    RevisionList,
)

router = api_router("entries")


@router.get(
    "/stories/{slug}/entries", response_model=EntryPage, responses=COMMON_ERRORS,
    response_model_exclude_unset=True, openapi_extra=ANONYMOUS_OK,
)
def list_entries(
    slug: SlugPath, db: Db, user: Viewer,
    cursor: Annotated[str | None, Query(pattern=CURSOR_REGEX, description="From `next_cursor`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
) -> dict[str, Any]:
    """Visible entries, newest first, a page at a time."""
    audience = audience_of(user)
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience)
        rows = entries.list_entries(
            conn, story.id, before=None if cursor is None else int(cursor), limit=limit + 1, audience=audience
        )
    page = rows[:limit]
    return {
        "entries": [entries.entry_json(row, story.slug, audience) for row in page],
        "next_cursor": str(page[-1].id) if len(rows) > limit else None,
    }


@router.post("/stories/{slug}/entries", status_code=201, response_model=Entry, responses=WRITE_ERRORS)
def create_entry(
    slug: SlugPath, payload: EntryCreate, request: Request, db: Db, user: Member, settings: Config,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Post an update. Reporters and above; pinning and notifying readers need an editor."""

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, str]]:
        story = posting.find_story(conn, slug, audience_of(user))
        data = posting.post_entry(
            conn, user, story, kind=payload.kind, body=payload.body or "", fields=payload.kind_fields(),
            pinned=bool(payload.pinned), key_event=bool(payload.key_event), notify=bool(payload.notify),
            push_ttl_seconds=settings.push_ttl_seconds,
        )
        return 201, data, {
            "Location": f"/api/v1/stories/{slug}/entries/{data['id']}",
            "ETag": data["etag"],
        }

    return idempotency.run(db, user.id, key, idempotency.fingerprint(request, payload), settings, work)


@router.get(
    "/stories/{slug}/entries/{entry_id}", response_model=Entry, responses=COMMON_ERRORS,
    response_model_exclude_unset=True, openapi_extra=ANONYMOUS_OK,
)
def read_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Viewer, response: Response) -> dict[str, Any]:
    audience = audience_of(user)
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience)
        entry = posting.find_entry(conn, story, entry_id, audience)
    response.headers["ETag"] = entries.entry_etag(entry)
    return entries.entry_json(entry, story.slug, audience)


@router.patch(
    "/stories/{slug}/entries/{entry_id}", response_model=Entry, responses=EDIT_ERRORS,
    response_model_exclude_unset=True,
)
def update_entry(
    slug: SlugPath, entry_id: EntryId, payload: EntryUpdate, db: Db, user: Member, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Edit an entry. Reporters edit their own; editors any. Each edit keeps a revision."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_entry(conn, story, entry_id, Audience.newsroom)
        check_if_match(if_match, entries.entry_etag(entry))
        data = posting.edit_entry(conn, user, story, entry, payload.model_dump(exclude_none=True))
    response.headers["ETag"] = data["etag"]
    return data


@router.delete("/stories/{slug}/entries/{entry_id}", status_code=204, responses=EDIT_ERRORS)
def delete_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Member, if_match: IfMatch = None) -> Response:
    """Delete an entry (editors). Readers stop seeing it; its history is kept."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_entry(conn, story, entry_id, Audience.newsroom)
        check_if_match(if_match, entries.entry_etag(entry))
        posting.delete_entry(conn, user, story, entry)
    return Response(status_code=204)


@router.post(
    "/stories/{slug}/entries/{entry_id}/restore", response_model=Entry, responses=EDIT_ERRORS,
    response_model_exclude_unset=True,
)
def restore_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> dict[str, Any]:
    """Undo a delete (editors): the update is back where it was published, for readers too
    (an `entry.restored` event). 409 if it is not deleted."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_deleted_entry(conn, story, entry_id)
        return posting.restore_entry(conn, user, story, entry)


@router.post(
    "/stories/{slug}/entries/{entry_id}/approve", response_model=Entry, responses=EDIT_ERRORS,
    response_model_exclude_unset=True,
)
def approve_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> dict[str, Any]:
    """Publish a reporter's pending post (editors): readers get it now."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_entry(conn, story, entry_id, Audience.newsroom)
        return posting.approve_entry(conn, user, story, entry)


@router.post("/stories/{slug}/entries/{entry_id}/editing", status_code=204, responses=COMMON_ERRORS)
def editing(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> Response:
    """Tell the newsroom you have this entry open in the editor (send every 15 s while so)."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_entry(conn, story, entry_id, Audience.newsroom)
        posting.announce_editing(conn, user, story, entry)
    return Response(status_code=204)


@router.get("/stories/{slug}/entries/{entry_id}/revisions", response_model=RevisionList, responses=COMMON_ERRORS)
def list_revisions(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> dict[str, Any]:
    """Every revision of an entry, oldest first (newsroom members)."""
    with db.read() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        entry = posting.find_entry(conn, story, entry_id, Audience.newsroom)
        rows = entries.list_revisions(conn, entry.id)
    return {
        "revisions": [
            {
                "revision": r.revision, "body": r.body, "fields": entries.stored_fields(r),
                "edited_by": r.username, "edited_at": iso(r.edited_at),
            }
            for r in rows
        ]
    }


@router.post("/preview", response_model=Preview, responses=COMMON_ERRORS)
def preview(payload: EntryCreate, user: Member) -> dict[str, str]:
    """The html an entry would have, without posting it (the composer's preview)."""
    return {"html": entries.render_html(payload.kind, payload.body or "", payload.kind_fields())}
