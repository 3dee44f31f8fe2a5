"""Embed routes: `/stories/{slug}/embed` and `/stories/{slug}/teaser` (the framed views),
`/embed.js` (the loader) and `/oembed`.

The framed views are the story page without the site around it, live all the same, under
the same strict policy but for `frame-ancestors`, which names the sites the operator allows
(`DATELINE_EMBED_ORIGINS`). They set no cookie and read none, so nothing of ours is stored
in a third-party context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Row

from ..db import Database
from ..reader import structured_data
from ..reader.page_cache import cache_control, framed_key, held_answer
from ..stories import entries, figures
from ..stories import story as stories
from ..vocabulary import MAX_SLUG, SLUG_PATTERN
from ..web.middleware import content_security_policy
from ..web.problems import Problem
from ..web.public_url import origin_of
from ..web.templates import templates
from .snippet import DEFAULT_HEIGHTS, frame_ancestors, snippet

router = APIRouter(include_in_schema=False)
LOADER = Path(__file__).parent.parent / "static" / "embed.js"
TEASER_UPDATES = 3
MAX_OEMBED_WIDTH = 2000


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _origin(request: Request) -> str:
    return origin_of(request.scope, request.app.state.settings.public_url)


def _story(request: Request, slug: str) -> Row[Any]:
    with _db(request).read() as conn:
        story = stories.get_story(conn, slug)
    if story is None:
        raise Problem(404, "There is no story at this address.")
    return story


def _framed(request: Request, slug: str, view: str, scheme: str) -> Response:
    story = _story(request, slug)
    settings = request.app.state.settings
    origin = _origin(request)
    teaser = view == "teaser"

    def build() -> bytes:
        with _db(request).read() as conn:
            rows = entries.list_entries(conn, story.id, limit=(TEASER_UPDATES if teaser else settings.page_size) + 1)
            pinned = [] if teaser else entries.list_flagged(conn, story.id, "pinned", limit=5)
            key_events = [] if teaser else entries.list_flagged(conn, story.id, "key_event", limit=8)
            blocks = [] if teaser else figures.list_blocks(conn, story.id)
        size = TEASER_UPDATES if teaser else settings.page_size
        pinned_ids = {row.id for row in pinned}
        return templates.get_template("embed.html").render(
            site_name=settings.site_name, time_zone=settings.time_zone, origin=origin, story=story, view=view,
            scheme=scheme, order="newest", live_position="top", paged=False, pinned=pinned, key_events=key_events,
            blocks=blocks,
            entries=[row for row in rows[:size] if row.id not in pinned_ids], more=len(rows) > size,
            card=structured_data.card(story, rows[:size], origin),
        ).encode()

    etag = f'W/"{view}-{story.id}-{story.last_event_id}-{scheme}"'
    return held_answer(request, framed_key(view, slug, scheme, origin), etag, story.updated_at,
                       "text/html; charset=utf-8", build, cache_control(story.status), story.id,
                       story.last_event_id,
                       headers={"Content-Security-Policy": content_security_policy(frame_ancestors(settings))},
                       at_door=True)


Scheme = Annotated[Literal["auto", "light", "dark"], Query(description="Light or dark, or as the reader's device")]


@router.api_route("/stories/{slug}/embed", methods=["GET", "HEAD"])
def embed(request: Request, slug: str, scheme: Scheme = "auto") -> Response:
    """The story, live, to be framed in a publisher's article."""
    return _framed(request, slug, "embed", scheme)


@router.api_route("/stories/{slug}/teaser", methods=["GET", "HEAD"])
def teaser(request: Request, slug: str, scheme: Scheme = "auto") -> Response:
    """Headline, status and the latest three updates, live: for home pages and section fronts."""
    return _framed(request, slug, "teaser", scheme)


@router.get("/embed.js")
def loader() -> FileResponse:
    """The loader publishers paste: at a fixed address, so checked back now and then."""
    return FileResponse(LOADER, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/oembed")
def oembed(
    request: Request,
    url: Annotated[str, Query(max_length=2048, description="A story's address on this site")],
    format: Literal["json", "xml"] = "json",
    maxwidth: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    maxheight: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    view: Literal["embed", "teaser"] = "embed",
) -> Response:
    """oEmbed 1.0 (https://oembed.com): the snippet of the story at `url`, as a `rich` type."""
    if format != "json":
        raise Problem(501, "Only the JSON format of oEmbed is answered here.")
    origin = _origin(request)
    parts = urlsplit(url)
    slug = parts.path.removeprefix("/stories/").split("/")[0] if parts.path.startswith("/stories/") else ""
    if f"{parts.scheme}://{parts.netloc}" != origin or not slug or len(slug) > MAX_SLUG or not SLUG_PATTERN.match(slug):
        raise Problem(404, f"{url!r} is not the address of a story on {origin}.")
    story = _story(request, slug)
    width = min(maxwidth or 640, MAX_OEMBED_WIDTH)
    height = min(maxheight or DEFAULT_HEIGHTS[view], DEFAULT_HEIGHTS[view])
    body = {
        "version": "1.0", "type": "rich", "title": story.headline,
        "provider_name": request.app.state.settings.site_name, "provider_url": f"{origin}/",
        "html": snippet(origin, slug, view), "width": width, "height": height,
        "cache_age": 3600,
    }
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})
