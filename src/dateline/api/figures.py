"""`/api/v1/stories/{slug}/blocks`: live figures (results, counters, competing estimates),
created and updated by editors from the desk or a script, read by anyone who may read the story.

As for entries, each handler parses, calls the rules in `stories.posting` inside one
transaction, and answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Response
from sqlalchemy import Connection

from ..stories import figures, posting
from ..vocabulary import MAX_ID, Audience
from ..web.deps import ANONYMOUS_OK, Config, Db, IfMatch, Member, SlugPath, Viewer, audience_of, check_if_match
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS, EDIT_ERRORS, WRITE_ERRORS
from .figures_models import Block, BlockCheck, BlockCreate, BlockList, BlockRevisionList, BlockUpdate

router = api_router("figures")
BlockId = Annotated[int, Path(ge=1, le=MAX_ID, description="The block's id.")]


@router.get("/stories/{slug}/blocks", response_model=BlockList, responses=COMMON_ERRORS, openapi_extra=ANONYMOUS_OK)
def list_blocks(slug: SlugPath, db: Db, user: Viewer) -> dict[str, Any]:
    """The story's live figures blocks, in the order readers see them."""
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience_of(user))
        rows = figures.list_blocks(conn, story.id)
    return {"blocks": [figures.block_json(row, story.slug) for row in rows]}


@router.post("/stories/{slug}/blocks", status_code=201, response_model=Block, responses=WRITE_ERRORS)
def create_block(slug: SlugPath, payload: BlockCreate, db: Db, user: Member, settings: Config,
                 response: Response) -> dict[str, Any]:
    """Add a block (editors). `warnings` lists what the desk should have confirmed (shares
    that fall well short of 100 %); readers get it at once as `block.updated`."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        data = posting.add_block(
            conn, user, story, kind=payload.kind, title=payload.title, values=payload.figures(),
            key_event=bool(payload.key_event), notify=bool(payload.notify), push_ttl_seconds=settings.push_ttl_seconds,
        )
    response.headers["Location"] = f"/api/v1/stories/{slug}/blocks/{data['id']}"
    response.headers["ETag"] = data["etag"]
    return data


@router.post("/stories/{slug}/blocks/check", response_model=BlockCheck, responses=COMMON_ERRORS)
def check_block(slug: SlugPath, payload: BlockCreate, db: Db, user: Member) -> dict[str, Any]:
    """What a block would be, without saving it: the shares computed, the warnings to confirm,
    the HTML readers would see (the desk's check before publishing)."""
    with db.read() as conn:
        posting.find_story(conn, slug, Audience.newsroom)
    checked = figures.check(payload.kind, payload.figures())
    return {"rows": checked.data["rows"], "warnings": checked.warnings,
            "html": figures.preview(payload.kind, payload.title, checked)}


@router.get("/stories/{slug}/blocks/{block_id:int}", response_model=Block, responses=COMMON_ERRORS,
            openapi_extra=ANONYMOUS_OK)
def read_block(slug: SlugPath, block_id: BlockId, db: Db, user: Viewer, response: Response) -> dict[str, Any]:
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience_of(user))
        block = posting.find_block(conn, story, block_id)
    data = figures.block_json(block, story.slug)
    response.headers["ETag"] = data["etag"]
    return data


@router.patch("/stories/{slug}/blocks/{block_id:int}", response_model=Block, responses=EDIT_ERRORS)
def update_block(slug: SlugPath, block_id: BlockId, payload: BlockUpdate, db: Db, user: Member, settings: Config,
                 response: Response, if_match: IfMatch = None) -> dict[str, Any]:
    """New figures (`rows` replaces them all), a correction (`correction` says what was
    wrong; readers see it with the earlier figures), a title, the key-event mark."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        block = posting.find_block(conn, story, block_id)
        check_if_match(if_match, figures.block_json(block, story.slug)["etag"])
        data = _change(conn, user, story, block, payload, settings.push_ttl_seconds)
    response.headers["ETag"] = data["etag"]
    return data


def _change(conn: Connection, user: Any, story: Any, block: Any, payload: BlockUpdate, ttl: int) -> dict[str, Any]:
    changes = payload.model_dump(exclude_none=True, exclude={"notify"})
    if payload.rows is not None:
        changes["rows"] = [row.model_dump() for row in payload.rows]
    return posting.change_block(conn, user, story, block, changes, notify=bool(payload.notify), push_ttl_seconds=ttl)


@router.delete("/stories/{slug}/blocks/{block_id:int}", status_code=204, responses=EDIT_ERRORS)
def delete_block(slug: SlugPath, block_id: BlockId, db: Db, user: Member) -> Response:
    """Take the block off the story (editors); readers get `block.deleted`. Its versions stay."""
    with db.write() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        block = posting.find_block(conn, story, block_id)
        posting.delete_block(conn, user, story, block)
    return Response(status_code=204)


@router.get("/stories/{slug}/blocks/{block_id:int}/revisions", response_model=BlockRevisionList,
            responses=COMMON_ERRORS, openapi_extra=ANONYMOUS_OK)
def list_revisions(slug: SlugPath, block_id: BlockId, db: Db, user: Viewer) -> dict[str, Any]:
    """Every version of the block's figures, newest first: how each value changed, and when."""
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience_of(user))
        block = posting.find_block(conn, story, block_id)
        rows = figures.revisions(conn, block.id)
    return {"revisions": [figures.revision_json(row) for row in rows]}
