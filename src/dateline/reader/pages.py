"""The reader's pages: the front page, a story, an update's permalink, the service worker.

Rendered on the server from the database and complete without JavaScript. Each page's
ETag is the story's newest event id, so a revalidation costs one indexed read and no render,
and each version is rendered and compressed once (`page_cache.py`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy import Row
from starlette.exceptions import HTTPException

from ..db import Database
from ..stories import entries, figures
from ..stories import story as stories
from ..times import http_date, iso
from ..vocabulary import MAX_ID
from ..web.compression import PAGE_BROTLI_QUALITY, Encoded
from ..web.deps import EntryId
from ..web.http_cache import not_modified
from ..web.public_url import origin_of
from ..web.templates import templates
from . import structured_data
from .page_cache import CACHE_PUBLIC, CachedPage, PageCache, cache_control, story_key

router = APIRouter(include_in_schema=False)
VARY = {"Vary": "Accept-Encoding"}
SERVICE_WORKER = Path(__file__).parent.parent / "static" / "sw.js"


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _cache(request: Request) -> PageCache:
    cache: PageCache = request.app.state.pages
    return cache


def _render(request: Request, key: tuple[object, ...], name: str, etag: str, modified: datetime,
            story_id: int | None = None, version: int = 0, cache: str = CACHE_PUBLIC, **context: Any) -> CachedPage:
    """The page of this version: held, or rendered, compressed and held now."""
    pages = _cache(request)
    if (page := pages.get(key, etag)) is not None:
        return page
    context["site_name"] = request.app.state.settings.site_name
    context["time_zone"] = request.app.state.settings.time_zone
    context["origin"] = _origin(request)
    html = templates.get_template(name).render(context).encode()
    headers = {"Content-Type": "text/html; charset=utf-8", "Last-Modified": http_date(modified),
               "Cache-Control": cache}
    return pages.put(key, CachedPage(etag, Encoded.of(html, PAGE_BROTLI_QUALITY), headers, story_id, version))


def _origin(request: Request) -> str:
    """The base of the page's absolute links (`web/public_url.py`)."""
    return origin_of(request.scope, request.app.state.settings.public_url)


def _keyed(request: Request, key: tuple[object, ...]) -> tuple[object, ...]:
    """A page's key in the cache: per origin too, when the origin comes from the request."""
    return key if request.app.state.settings.public_url else (*key, _origin(request))


def _answer(request: Request, page: CachedPage) -> Response:
    return page.response(request.headers.get("accept-encoding"))


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    context = {"status": status, "message": message, "site_name": request.app.state.settings.site_name}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def _publication(row: Row[Any]) -> tuple[datetime, int]:
    return row.published_at, row.id


def _story_or_404(request: Request, slug: str) -> Row[Any]:
    with _db(request).read() as conn:
        story = stories.get_story(conn, slug)
    if story is None:
        raise HTTPException(404, "There is no story at this address.")
    return story


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def home(request: Request) -> Response:
    with _db(request).read() as conn:
        rows = stories.list_stories(conn)
    newest = max((row.last_event_id for row in rows), default=0)
    modified = max((row.updated_at for row in rows), default=datetime(2026, 1, 1, tzinfo=timezone.utc))
    etag = f'W/"home-{newest}-{len(rows)}"'
    if (cached := not_modified(request, etag, CACHE_PUBLIC, VARY)) is not None:
        return cached
    return _answer(request, _render(request, _keyed(request, ("home",)), "home.html", etag, modified, stories=rows))


@router.api_route("/stories/{slug}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def story_page(
    request: Request, slug: str,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    order: Literal["newest", "oldest"] = "newest",
    filter: Literal["all", "key"] = "all",
) -> Response:
    """The story a page at a time: newest first (`before` pages back) or oldest first (`after`),
    every update or the key events only."""
    story = _story_or_404(request, slug)
    oldest = order == "oldest"
    key_only = filter == "key"
    view = f"{order}-key" if key_only else order
    cursor = (after if oldest else before) or 0
    etag = f'W/"story-{story.id}-{story.last_event_id}-{view}-{cursor}"'
    key = story_key(slug, view, cursor, "" if request.app.state.settings.public_url else _origin(request))
    held = _cache(request).get(key, etag)  # also tells the door the page it holds is still current
    cached = not_modified(request, etag, cache_control(story.status), VARY)
    # The page the door answers is rendered and held even for a 304, so that a process that
    # only ever sees revalidations (a CDN's, say) answers the next ones at the door.
    at_door = cursor == 0 and view == "newest"
    if cached is not None and (held is not None or not at_door):
        return cached
    if held is not None:
        return _answer(request, held)
    size = request.app.state.settings.page_size
    first_page = cursor == 0
    with _db(request).read() as conn:
        rows = entries.list_entries(
            conn, story.id, before=None if oldest else before, after=after if oldest else None,
            limit=size + 1, oldest_first=oldest, key_only=key_only,
        )
        pinned = entries.list_flagged(conn, story.id, "pinned", limit=5) if first_page else []
        if key_only:
            pinned = [row for row in pinned if row.key_event]
        key_events = entries.list_flagged(conn, story.id, "key_event", limit=8) if first_page else []
        blocks = figures.list_blocks(conn, story.id) if first_page else []
    page = rows[:size]
    pinned_ids = {row.id for row in pinned}
    more = page[-1].id if len(rows) > size else None
    origin = _origin(request)
    newest = [] if oldest or not first_page else sorted([*pinned, *page], key=_publication, reverse=True)
    rendered = _render(
        request, key, "story.html", etag, story.updated_at, story.id, story.last_event_id,
        cache_control(story.status),
        story=story,
        order=order,
        key_only=key_only,
        pinned=pinned,
        entries=[row for row in page if row.id not in pinned_ids],
        key_events=key_events,
        blocks=blocks,
        more=more,
        paged=not first_page,
        # Live updates join the page only where they belong: the top of the newest page, or
        # the end of the oldest-first list once its last page is shown.
        live_position=("top" if first_page else "none") if not oldest else ("bottom" if more is None else "none"),
        card=structured_data.card(story, newest or page, origin),
        # Search engines read the canonical page: the latest updates, newest first.
        live_blog=structured_data.script_json(structured_data.live_blog(
            story, newest, origin, request.app.state.settings.site_name,
            iso(story.coverage_started_at or story.starts_at or story.created_at),
            iso(story.coverage_ended_at) if story.status == "ended" and story.coverage_ended_at else None,
            blocks,
        )) if newest or (first_page and not oldest) else None,
    )
    return cached if cached is not None else _answer(request, rendered)


@router.api_route("/stories/{slug}/entries/{entry_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def entry_page(request: Request, slug: str, entry_id: EntryId) -> Response:
    story = _story_or_404(request, slug)
    with _db(request).read() as conn:
        entry = entries.get_entry(conn, story.id, entry_id)
    if entry is None:
        raise HTTPException(404, "This update does not exist or was removed.")
    etag = f'W/"entry-{entry.id}-{entry.revision}-{story.last_event_id}"'
    if (cached := not_modified(request, etag, cache_control(story.status), VARY)) is not None:
        return cached
    page = _render(request, _keyed(request, ("entry", story.id, entry.id)), "entry.html", etag, entry.updated_at,
                   cache=cache_control(story.status), story=story, entry=entry,
                   card=structured_data.entry_card(story, entry, _origin(request)))
    return _answer(request, page)


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """The service worker, served from the root so its scope is the whole site; revalidated
    on every check so a new version reaches readers at once."""
    return FileResponse(SERVICE_WORKER, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
