"""The dashboard, and the desk where a live story is run: its settings, its composer and
live list (`static/newsroom.js`, over the JSON API), and an update's history."""

from __future__ import annotations

import difflib
import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Connection
from starlette.exceptions import HTTPException

from ..accounts.users import Role
from ..embedding.snippet import VIEWS, snippet
from ..errors import Invalid, NotFound
from ..push import recipients
from ..stories import entries, posting
from ..stories import story as stories
from ..vocabulary import KIND_FIELDS, MAX_FACT, MAX_FACTS, MAX_ID, Audience, EntryKind, StoryStatus
from ..web import idempotency
from ..web.public_url import origin_of
from .pages import db, editor_form, render, session_of

router = APIRouter(prefix="/newsroom", include_in_schema=False)
KIND_LABELS: dict[EntryKind, str] = {"text": "Text", "quote": "Quote", "image": "Photo", "embed": "Embed"}
STATUS_LABELS: dict[StoryStatus, str] = {
    "draft": "Draft: not public", "scheduled": "Coming up", "live": "Live", "ended": "Ended",
}
# What the composer sends for each kind (a correction is added later, by editing).
COMPOSER_FIELDS = {kind: [f for f in fields if f != "correction"] for kind, fields in KIND_FIELDS.items()}


def _desk_story(conn: Connection, slug: str) -> Any:
    try:
        return posting.find_story(conn, slug, Audience.newsroom)
    except NotFound:
        raise HTTPException(404, "There is no story at this address.") from None


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    session = session_of(request)
    with db(request).read() as conn:
        rows = stories.list_stories(conn, Audience.newsroom)
    return render(request, "dashboard.html", session, stories=rows, can_edit=session.user.can(Role.editor),
                  form_key=secrets.token_urlsafe(16))


@router.post("/stories")
def create_story(
    request: Request, headline: Annotated[str, Form(min_length=1, max_length=200)],
    dateline: Annotated[str, Form(max_length=80)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
    form_key: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{16,64}$")] = "",
) -> Response:
    """Start a story. The form carries a key made when it was shown: a double click, or a
    resend after a lost answer, opens the story the first submit made instead of a second."""
    session = editor_form(request, csrf_token, "start stories")

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, str]]:
        story = posting.start_story(conn, session.user, headline=headline, dateline=dateline)
        return 303, {"slug": story.slug}, {"Location": f"/newsroom/stories/{story.slug}"}

    # The key covers what was typed: sent back from the browser's history with another
    # headline, the same form starts that other story.
    print_ = idempotency.fingerprint(request, {"headline": headline, "dateline": dateline})
    key = f"form:{form_key}:{print_[:16]}" if form_key else None
    return idempotency.run(db(request), session.user.id, key, print_, request.app.state.settings, work)


@router.get("/stories/{slug}", response_class=HTMLResponse)
def desk(request: Request, slug: str) -> Response:
    session = session_of(request)
    with db(request).read() as conn:
        story = _desk_story(conn, slug)
        followers = recipients.follower_count(conn, story.id)
    return render(
        request, "desk.html", session, story=story, story_json=json.dumps(stories.story_json(story)),
        can_edit=session.user.can(Role.editor), followers=followers, kinds=KIND_LABELS,
        statuses=STATUS_LABELS, composer_fields=json.dumps(COMPOSER_FIELDS),
        max_upload_bytes=request.app.state.settings.max_upload_bytes,
        snippets={view: snippet(origin_of(request.scope, request.app.state.settings.public_url), story.slug, view)
                  for view in VIEWS},
        upload_limit=megabytes(request.app.state.settings.max_upload_bytes),
        facts=json.loads(story.facts), max_facts=MAX_FACTS, max_fact=MAX_FACT,
    )


def megabytes(size: int) -> str:
    """A size as the desk says it: 15 MB, 2.5 MB."""
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


@router.post("/stories/{slug}")
def update_story(
    request: Request, slug: str, headline: Annotated[str, Form(min_length=1, max_length=200)],
    dateline: Annotated[str, Form(max_length=80)] = "", summary: Annotated[str, Form(max_length=2000)] = "",
    status: Annotated[StoryStatus | None, Form()] = None,
    requires_approval: Annotated[str, Form(max_length=5)] = "", csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    session = editor_form(request, csrf_token, "change stories")
    changes: dict[str, Any] = {"headline": headline, "dateline": dateline, "summary": summary,
                               "requires_approval": requires_approval == "on"}
    if status is not None:
        changes["status"] = status
    with db(request).write() as conn:
        story = _desk_story(conn, slug)
        posting.change_story(conn, session.user, story, changes)
    return RedirectResponse(f"/newsroom/stories/{slug}", status_code=303)


@router.post("/stories/{slug}/coverage")
def coverage(
    request: Request, slug: str, action: Annotated[Literal["live", "end", "schedule"], Form()],
    closing_summary: Annotated[str, Form(max_length=2000)] = "",
    starts_at: Annotated[str, Form(max_length=40)] = "",
    utc_offset_minutes: Annotated[int, Form(ge=-18 * 60, le=18 * 60)] = 0,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The coverage's life in one click: go live (or reopen), end it with an optional closing
    summary, or schedule it (a time in the editor's own zone, which the desk's script sends)."""
    session = editor_form(request, csrf_token, "start or end coverage")
    changes: dict[str, Any] = {"status": {"live": "live", "end": "ended", "schedule": "scheduled"}[action]}
    if action == "end":
        changes["closing_summary"] = closing_summary
    if action == "schedule":
        try:
            local = datetime.fromisoformat(starts_at)
        except ValueError:
            raise Invalid("starts_at: choose the date and time the coverage begins") from None
        zone = timezone(timedelta(minutes=utc_offset_minutes))
        changes["starts_at"] = (local if local.tzinfo else local.replace(tzinfo=zone)).astimezone(timezone.utc)
    with db(request).write() as conn:
        story = _desk_story(conn, slug)
        posting.change_story(conn, session.user, story, changes)
    return RedirectResponse(f"/newsroom/stories/{slug}", status_code=303)


@router.post("/stories/{slug}/facts")
def facts(
    request: Request, slug: str, facts: Annotated[str, Form(max_length=MAX_FACTS * (MAX_FACT + 2) + 200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """"What we know", typed one fact a line: readers' pages change live."""
    session = editor_form(request, csrf_token, "change stories")
    with db(request).write() as conn:
        story = _desk_story(conn, slug)
        posting.change_story(conn, session.user, story, {"facts": facts.splitlines()})
    return RedirectResponse(f"/newsroom/stories/{slug}", status_code=303)


@router.post("/stories/{slug}/entries/{entry_id}/restore")
def restore(
    request: Request, slug: str, entry_id: int, csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Put a deleted update back, from its history page (the desk's own undo uses the API)."""
    session = editor_form(request, csrf_token, "restore deleted updates")
    with db(request).write() as conn:
        story = _desk_story(conn, slug)
        if entry_id > MAX_ID:
            raise HTTPException(404, "This update has no history here.")
        entry = posting.find_deleted_entry(conn, story, entry_id)
        posting.restore_entry(conn, session.user, story, entry)
    return RedirectResponse(f"/newsroom/stories/{slug}#desk-entry-{entry_id}", status_code=303)


@router.get("/stories/{slug}/entries/{entry_id}/history", response_class=HTMLResponse)
def history(request: Request, slug: str, entry_id: int) -> Response:
    session = session_of(request)
    with db(request).read() as conn:
        story = _desk_story(conn, slug)
        entry = None
        if entry_id <= MAX_ID:
            entry = (entries.get_entry(conn, story.id, entry_id, Audience.newsroom)
                     or entries.get_entry(conn, story.id, entry_id, Audience.newsroom, deleted=True))
        revisions = entries.list_revisions(conn, entry_id) if entry else []
    if not revisions:
        raise HTTPException(404, "This update has no history here.")
    steps = []
    previous: list[str] = []
    for revision in revisions:
        fields = entries.stored_fields(revision)
        lines = revision.body.splitlines() + [f"{k}: {v}" for k, v in sorted(fields.items())]
        diff = list(difflib.ndiff(previous, lines)) if previous else [f"  {line}" for line in lines]
        steps.append({"revision": revision, "diff": [(d[:1], d[2:]) for d in diff if not d.startswith("?")]})
        previous = lines
    return render(request, "history.html", session, story=story, entry_id=entry_id, steps=steps,
                  deleted_at=entry.deleted_at if entry else None, can_edit=session.user.can(Role.editor))
