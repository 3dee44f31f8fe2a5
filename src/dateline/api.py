"""The JSON API under /api/v1. Each handler: load, check, act, respond.

Handlers are plain functions (run in the thread pool) over short transactions. Writes go
through `idempotency.run`, which holds the change, its event and the stored answer in one
transaction.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Row

from . import accounts, auth, entries, events, idempotency, sessions, stories, uploads
from .accounts import Role, User
from .api_models import (
    MAX_PAGE, EntryCreate, EntryPage, EntryUpdate, EventPage, RevisionList, Story, StoryCreate,
    StoryList, StoryUpdate, UserCreate, UserCreated, UserList, UserOut, UserUpdate, check_kind,
    PasswordChange, Preview, SessionOut, SignIn, Upload,
)
from .api_models import Entry as EntryOut
from .db import Database
from .http_cache import http_date, not_modified
from .problems import Problem
from .push import outbox

router = APIRouter(prefix="/api/v1")
bearer = HTTPBearer(auto_error=False, description="An API token from `dateline token create`.")

PROBLEM = {"content": {"application/problem+json": {}}}
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request", **PROBLEM},
    401: {"description": "Missing or bad token", **PROBLEM},
    403: {"description": "Role not allowed", **PROBLEM},
    404: {"description": "No such story, entry or user", **PROBLEM},
    413: {"description": "Request body too large", **PROBLEM},
    422: {"description": "Invalid fields", **PROBLEM},
}
WRITE_ERRORS = {**COMMON_ERRORS, 409: {"description": "Conflict", **PROBLEM}}
EDIT_ERRORS = {**WRITE_ERRORS, 412: {"description": "If-Match is stale", **PROBLEM}}

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry a POST with the same key: it is done once."),
]
SlugPath = Annotated[str, Path(max_length=200, examples=["night-two"], description="The story's slug.")]
EntryId = Annotated[int, Path(ge=1, le=2**62, examples=[1])]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="The ETag you edited; 412 if it is stale.")
]


# --- dependencies ------------------------------------------------------------------------


def database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


Db = Annotated[Database, Depends(database)]


def optional_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User | None:
    return auth.user_for_request(request, credentials.credentials if credentials else None)


Viewer = Annotated[User | None, Depends(optional_user)]


def signed_in(user: Viewer) -> User:
    if user is None:
        raise Problem(
            401, "Send an API token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


Member = Annotated[User, Depends(signed_in)]


def require(user: User, role: Role, action: str) -> None:
    if not user.role.at_least(role):
        raise Problem(403, f"Only {role.value}s and above can {action}; you are a {user.role.value}.")


def sees_drafts(user: User | None) -> bool:
    """Newsroom members see draft stories (reporters post to them too); readers do not."""
    return user is not None


def story_for(conn: Connection, slug: SlugPath, user: User | None) -> Row[Any]:
    story = stories.get_story(conn, slug, include_drafts=sees_drafts(user))
    if story is None:
        raise Problem(404, f"No story with the slug {slug!r}.")
    return story


def _entry(conn: Connection, story: Row[Any], entry_id: int, user: User | None = None) -> Row[Any]:
    entry = entries.get_entry(conn, story.id, entry_id, include_pending=sees_drafts(user))
    if entry is None:
        raise Problem(404, f"Story {story.slug!r} has no entry {entry_id}.")
    return entry


def _check_if_match(if_match: str | None, etag: str) -> None:
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" not in candidates and etag not in candidates:
        raise Problem(
            412, "This was changed by someone else since you loaded it; reload and redo your change.",
            current_etag=etag,
        )


def _ttl(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.idempotency_ttl_hours)


# --- stories ------------------------------------------------------------------------------


@router.get("/stories", response_model=StoryList, tags=["stories"])
def list_stories(db: Db, user: Viewer) -> dict[str, Any]:
    """Stories, live ones first. Drafts only for newsroom members."""
    with db.read() as conn:
        rows = stories.list_stories(conn, include_drafts=sees_drafts(user))
    return {"stories": [stories.story_json(row) for row in rows]}


@router.post("/stories", status_code=201, response_model=Story, responses=WRITE_ERRORS, tags=["stories"])
def create_story(
    payload: StoryCreate, request: Request, db: Db, user: Member, key: IdempotencyKey = None
) -> JSONResponse:
    require(user, Role.editor, "create stories")

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            row = stories.create_story(conn, **payload.model_dump())
        except stories.StoryError as exc:
            raise Problem(409, str(exc)) from None
        return 201, stories.story_json(row), {
            "Location": f"/api/v1/stories/{row.slug}", "ETag": stories.story_etag(row)
        }

    print_ = idempotency.fingerprint("POST", request.url.path, payload.model_dump_json())
    return idempotency.run(db, user.id, idempotency.check_key(key), print_, _ttl(request), work)


@router.get("/stories/{slug}", response_model=Story, responses=COMMON_ERRORS, tags=["stories"])
def read_story(slug: SlugPath, db: Db, user: Viewer, response: Response) -> dict[str, Any]:
    with db.read() as conn:
        story = story_for(conn, slug, user)
    response.headers["ETag"] = stories.story_etag(story)
    return stories.story_json(story)


@router.patch("/stories/{slug}", response_model=Story, responses=EDIT_ERRORS, tags=["stories"])
def update_story(
    slug: SlugPath, payload: StoryUpdate, db: Db, user: Member, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    require(user, Role.editor, "change stories")
    changes = payload.model_dump(exclude_none=True)
    with db.write() as conn:
        story = story_for(conn, slug, user)
        _check_if_match(if_match, stories.story_etag(story))
        story = stories.update_story(conn, story, changes)
    response.headers["ETag"] = stories.story_etag(story)
    return stories.story_json(story)


# --- entries ------------------------------------------------------------------------------


@router.get(
    "/stories/{slug}/entries", response_model=EntryPage, responses=COMMON_ERRORS,
    response_model_exclude_unset=True, tags=["entries"],
)
def list_entries(
    slug: SlugPath, db: Db, user: Viewer,
    cursor: Annotated[str | None, Query(max_length=20, description="From `next_cursor`.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
) -> dict[str, Any]:
    """Visible entries, newest first, a page at a time."""
    before = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit()):
            raise Problem(400, "cursor must be a value from next_cursor.")
        before = int(cursor)
    with db.read() as conn:
        story = story_for(conn, slug, user)
        rows = entries.list_entries(
            conn, story.id, before=before, limit=limit + 1, include_pending=sees_drafts(user)
        )
    page = rows[:limit]
    return {
        "entries": [entries.entry_json(row, story.slug) for row in page],
        "next_cursor": str(page[-1].id) if len(rows) > limit else None,
    }


@router.post(
    "/stories/{slug}/entries", status_code=201, response_model=EntryOut, responses=WRITE_ERRORS,
    tags=["entries"],
)
def create_entry(
    slug: SlugPath, payload: EntryCreate, request: Request, db: Db, user: Member,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Post an update. Reporters and above; pinning and notifying readers need an editor."""
    if payload.pinned:
        require(user, Role.editor, "pin entries")
    if payload.notify:
        require(user, Role.editor, "notify readers")

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, str]]:
        story = story_for(conn, slug, user)
        if story.status == "ended":
            raise Problem(409, "This story has ended; an editor can set it live again to post.")
        needs_approval = story.requires_approval and not user.role.at_least(Role.editor)
        data = entries.create_entry(
            conn, story, user, kind=payload.kind, body=payload.body or "",
            fields=payload.kind_fields(), pinned=bool(payload.pinned),
            key_event=bool(payload.key_event), status="pending" if needs_approval else "published",
        )
        if payload.notify:
            if story.status != "live":
                raise Problem(409, "Only a live story's followers can be notified; set it live first.")
            # In the same transaction as the entry: an acknowledged post is never left unsent.
            data["notification"] = outbox.enqueue(
                conn, story, data, request.app.state.settings.push_ttl_seconds, datetime.now(timezone.utc))
        return 201, data, {
            "Location": f"/api/v1/stories/{slug}/entries/{data['id']}",
            "ETag": f'"e{data["id"]}-r{data["revision"]}"',
        }

    print_ = idempotency.fingerprint("POST", request.url.path, payload.model_dump_json())
    return idempotency.run(db, user.id, idempotency.check_key(key), print_, _ttl(request), work)


@router.get(
    "/stories/{slug}/entries/{entry_id}", response_model=EntryOut, responses=COMMON_ERRORS,
    response_model_exclude_unset=True, tags=["entries"],
)
def read_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Viewer, response: Response) -> dict[str, Any]:
    with db.read() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
    response.headers["ETag"] = entries.entry_etag(entry)
    return entries.entry_json(entry, story.slug)


@router.patch(
    "/stories/{slug}/entries/{entry_id}", response_model=EntryOut, responses=EDIT_ERRORS,
    response_model_exclude_unset=True, tags=["entries"],
)
def update_entry(
    slug: SlugPath, entry_id: EntryId, payload: EntryUpdate, db: Db, user: Member, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Edit an entry. Reporters edit their own; editors any. Each edit keeps a revision."""
    changes = payload.model_dump(exclude_none=True)
    if "pinned" in changes:
        require(user, Role.editor, "pin entries")
    with db.write() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
        if entry.author_id != user.id:
            require(user, Role.editor, "edit other people's entries")
        _check_if_match(if_match, entries.entry_etag(entry))
        merged = {**json.loads(entry.fields), **payload.kind_fields()}
        try:
            check_kind(entry.kind, changes.get("body", entry.body), merged)
        except ValueError as exc:
            raise Problem(422, str(exc)) from None
        data = entries.update_entry(conn, story, entry, user, changes)
    response.headers["ETag"] = f'"e{data["id"]}-r{data["revision"]}"'
    return data


@router.delete(
    "/stories/{slug}/entries/{entry_id}", status_code=204, responses=EDIT_ERRORS, tags=["entries"]
)
def delete_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Member, if_match: IfMatch = None) -> Response:
    """Delete an entry (editors). Readers stop seeing it; its history is kept."""
    require(user, Role.editor, "delete entries")
    with db.write() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
        _check_if_match(if_match, entries.entry_etag(entry))
        entries.delete_entry(conn, story, entry)
    return Response(status_code=204)


@router.post(
    "/stories/{slug}/entries/{entry_id}/approve", response_model=EntryOut, responses=EDIT_ERRORS,
    response_model_exclude_unset=True, tags=["entries"],
)
def approve_entry(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> dict[str, Any]:
    """Publish a reporter's pending post (editors): readers get it now."""
    require(user, Role.editor, "approve posts")
    with db.write() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
        if entry.status != "pending":
            raise Problem(409, "This entry is already published.")
        return entries.approve_entry(conn, story, entry)


@router.post(
    "/stories/{slug}/entries/{entry_id}/editing", status_code=204, responses=COMMON_ERRORS, tags=["entries"]
)
def editing(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> Response:
    """Tell the newsroom you have this entry open in the editor (send every 15 s while so)."""
    with db.write() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
        data = {"id": entry.id, "user": user.username, "name": user.display_name, "seconds": 30}
        events.append(conn, story.id, events.EDITING, data, datetime.now(timezone.utc), entry_id=entry.id)
    return Response(status_code=204)


@router.get(
    "/stories/{slug}/entries/{entry_id}/revisions", response_model=RevisionList,
    responses=COMMON_ERRORS, tags=["entries"],
)
def list_revisions(slug: SlugPath, entry_id: EntryId, db: Db, user: Member) -> dict[str, Any]:
    """Every revision of an entry, oldest first (newsroom members)."""
    with db.read() as conn:
        story = story_for(conn, slug, user)
        entry = _entry(conn, story, entry_id, user)
        rows = entries.list_revisions(conn, entry.id)
    return {
        "revisions": [
            {
                "revision": r.revision, "body": r.body, "fields": json.loads(r.fields),
                "edited_by": r.username, "edited_at": stories.iso(r.edited_at),
            }
            for r in rows
        ]
    }


@router.post("/preview", response_model=Preview, responses=COMMON_ERRORS, tags=["entries"])
def preview(payload: EntryCreate, user: Member) -> dict[str, str]:
    """The html an entry would have, without posting it (the composer's preview)."""
    return {"html": entries.render_html(payload.kind, payload.body or "", payload.kind_fields())}


@router.post(
    "/uploads", status_code=201, response_model=Upload, tags=["entries"],
    responses=COMMON_ERRORS | {415: {"description": "Not an accepted image", **PROBLEM}},
)
async def upload_photo(request: Request, user: Member, file: UploadFile) -> dict[str, Any]:
    """Upload a photo (JPEG, PNG or WebP). It is checked, cleaned of EXIF and resized;
    use the answer's `url` as an image entry's `image_url`."""
    data = await file.read(uploads.MAX_UPLOAD_BYTES + 1)
    media = FilePath(request.app.state.settings.media_dir)
    try:
        stored = await asyncio.to_thread(uploads.process, data, media)
    except uploads.UploadError as exc:
        raise Problem(415, str(exc)) from None
    return {"url": stored.url, "srcset": stored.srcset, "width": stored.width, "height": stored.height}


# --- events -------------------------------------------------------------------------------


@router.get(
    "/stories/{slug}/events", response_model=EventPage, responses=COMMON_ERRORS, tags=["events"]
)
def list_events(
    slug: SlugPath, request: Request, db: Db, user: Viewer,
    after: Annotated[int, Query(ge=0, le=2**62, description="Last event id seen; 0 for all.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Response:
    """Catch-up for clients that cannot stream: the story's events after `after`, in order."""
    with db.read() as conn:
        story = story_for(conn, slug, user)
        etag = f'"ev{story.last_event_id}-{after}-{limit}"'
        cache_control = "private, no-cache" if sees_drafts(user) else "public, max-age=1, stale-while-revalidate=5"
        if (cached := not_modified(request, etag, cache_control)) is not None:
            return cached
        page = events.read_after(conn, story.id, after, limit + 1, newsroom=sees_drafts(user))
    has_more = len(page) > limit
    page = page[:limit]
    last = page[-1].id if page else after
    # The stored JSON is spliced in as is: no decode and re-encode per request.
    body = (
        '{"events":[' + ",".join(e.to_json() for e in page)
        + f'],"last_event_id":{last},"has_more":{"true" if has_more else "false"}}}'
    )
    return Response(
        body, media_type="application/json",
        # Members get newsroom events too: a cache must not hand one answer to the other.
        headers={"ETag": etag, "Cache-Control": cache_control, "Vary": "Authorization, Cookie",
                 "Last-Modified": http_date(story.updated_at)},
    )


# --- accounts -----------------------------------------------------------------------------


def _user_out(user: User) -> dict[str, Any]:
    return {"username": user.username, "name": user.display_name, "role": user.role, "disabled": user.disabled}


@router.post("/session", response_model=SessionOut, responses=WRITE_ERRORS | {429: {"description": "Throttled", **PROBLEM}}, tags=["accounts"])
def sign_in(payload: SignIn, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with a password: sets the session cookie; unsafe requests then need `csrf_token`."""
    token, session = auth.sign_in(request, payload.username, payload.password)
    auth.set_session_cookie(request, response, token)
    return {"user": _user_out(session.user), "csrf_token": session.csrf_token}


@router.delete("/session", status_code=204, responses=COMMON_ERRORS, tags=["accounts"])
def sign_out(request: Request, db: Db) -> Response:
    """End this session (needs its CSRF token, as every unsafe request with a cookie does)."""
    session = auth.session_from_cookie(request)
    if session is None:
        raise Problem(401, "Not signed in.")
    if not auth.csrf_ok(session, request.headers.get(auth.CSRF_HEADER)):
        raise Problem(403, "This request needs the session's CSRF token (X-CSRF-Token header).")
    with db.write() as conn:
        sessions.end(conn, session.id)
    response = Response(status_code=204)
    auth.clear_session_cookie(response)
    return response


@router.post("/me/password", status_code=204, responses=WRITE_ERRORS, tags=["accounts"])
def change_password(payload: PasswordChange, request: Request, db: Db, user: Member) -> Response:
    """Change your password; your other sessions end."""
    with db.read() as conn:
        if accounts.authenticate(conn, user.username, payload.current_password) is None:
            raise Problem(403, "The current password is wrong.")
    try:
        with db.write() as conn:
            accounts.set_password(conn, user, payload.new_password)
            current = auth.session_from_cookie(request)
            sessions.end_all(conn, user.id, keep=current.id if current else None)
    except accounts.AccountError as exc:
        raise Problem(422, str(exc)) from None
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=COMMON_ERRORS, tags=["accounts"])
def me(user: Member) -> dict[str, Any]:
    return _user_out(user)


@router.get("/users", response_model=UserList, responses=COMMON_ERRORS, tags=["accounts"])
def list_users(db: Db, user: Member) -> dict[str, Any]:
    require(user, Role.admin, "manage users")
    with db.read() as conn:
        return {"users": [_user_out(u) for u in accounts.list_users(conn)]}


@router.post(
    "/users", status_code=201, response_model=UserCreated, responses=WRITE_ERRORS, tags=["accounts"]
)
def create_user(payload: UserCreate, db: Db, user: Member) -> dict[str, Any]:
    """Create an account; without `password`, one is generated and shown once."""
    require(user, Role.admin, "manage users")
    password = payload.password or accounts.generate_password()
    try:
        with db.write() as conn:
            created = accounts.create_user(conn, payload.username, password, payload.role, payload.name)
    except accounts.AccountError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise Problem(status, str(exc)) from None
    return {**_user_out(created), "password": None if payload.password else password}


@router.patch(
    "/users/{username}", response_model=UserOut, responses=WRITE_ERRORS, tags=["accounts"]
)
def update_user(username: str, payload: UserUpdate, db: Db, user: Member) -> dict[str, Any]:
    """Change a user's role, name, or disable the account (which revokes its tokens' use)."""
    require(user, Role.admin, "manage users")
    with db.write() as conn:
        target = accounts.get_user(conn, username)
        if target is None:
            raise Problem(404, f"No user named {username!r}.")
        if target.id == user.id and (payload.disabled or (payload.role and payload.role != Role.admin)):
            raise Problem(409, "You cannot disable yourself or lower your own role.")
        updated = accounts.update_user(
            conn, target, role=payload.role, disabled=payload.disabled, display_name=payload.name
        )
        if updated.disabled or not updated.role.at_least(target.role):
            sessions.end_all(conn, target.id)  # disabled or demoted: signed out everywhere, now
    return _user_out(updated)
