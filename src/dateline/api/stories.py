"""`/api/v1/stories`: list, start, read and change stories."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from ..stories import posting
from ..stories import story as stories
from ..web import idempotency
from ..web.deps import (
    ANONYMOUS_OK,
    Config,
    Db,
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
from .models import Story, StoryCreate, StoryList, StoryUpdate

router = api_router("stories")


@router.get("/stories", response_model=StoryList, openapi_extra=ANONYMOUS_OK)
def list_stories(db: Db, user: Viewer) -> dict[str, Any]:
    """Stories, live ones first. Drafts only for newsroom members."""
    with db.read() as conn:
        rows = stories.list_stories(conn, audience_of(user))
    return {"stories": [stories.story_json(row) for row in rows]}


@router.post("/stories", status_code=201, response_model=Story, responses=WRITE_ERRORS)
def create_story(
    payload: StoryCreate, request: Request, db: Db, user: Member, settings: Config, key: IdempotencyKey = None
) -> JSONResponse:
    """Start a story (editors)."""

    def work(conn: Connection) -> tuple[int, dict[str, Any], dict[str, str]]:
        row = posting.start_story(conn, user, **payload.model_dump())
        return 201, stories.story_json(row), {
            "Location": f"/api/v1/stories/{row.slug}", "ETag": stories.story_etag(row)
        }

    return idempotency.run(db, user.id, key, idempotency.fingerprint(request, payload), settings, work)


@router.get("/stories/{slug}", response_model=Story, responses=COMMON_ERRORS, openapi_extra=ANONYMOUS_OK)
def read_story(slug: SlugPath, db: Db, user: Viewer, response: Response) -> dict[str, Any]:
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience_of(user))
    response.headers["ETag"] = stories.story_etag(story)
    return stories.story_json(story)


@router.patch("/stories/{slug}", response_model=Story, responses=EDIT_ERRORS)
def update_story(
    slug: SlugPath, payload: StoryUpdate, db: Db, user: Member, response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Change a story's headline, dateline, summary, status or approval rule (editors)."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, audience_of(user))
        check_if_match(if_match, stories.story_etag(story))
        story = posting.change_story(conn, user, story, payload.model_dump(exclude_none=True))
    response.headers["ETag"] = stories.story_etag(story)
    return stories.story_json(story)
