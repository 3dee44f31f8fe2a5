"""Feed and sitemap routes: `/stories/{slug}/feed.atom`, `/stories/{slug}/feed.json`, the
site's `/feed.atom` and `/feed.json`, `/sitemap.xml`, `/sitemap-news.xml`, `/robots.txt`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Row

from ..db import Database
from ..reader.page_cache import CACHE_PUBLIC, cache_control, feed_key, held_answer
from ..stories import story as stories
from ..times import now
from ..web.problems import Problem
from ..web.public_url import origin_of
from . import atom, json_feed, sitemaps
from .atom import FeedHead
from .items import FeedItem, story_as_item, story_items

router = APIRouter(include_in_schema=False)
ATOM = "application/atom+xml; charset=utf-8"
JSON_FEED = "application/feed+json; charset=utf-8"
XML = "application/xml; charset=utf-8"
SITE_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)  # Last-Modified of a site with no story yet
FORMATS: dict[str, tuple[str, Callable[[FeedHead, list[FeedItem]], bytes]]] = {
    "atom": (ATOM, atom.document), "json": (JSON_FEED, json_feed.document),
}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _origin(request: Request) -> str:
    return origin_of(request.scope, request.app.state.settings.public_url)


def _story_feed(request: Request, slug: str, kind: str) -> Response:
    with _db(request).read() as conn:
        story = stories.get_story(conn, slug)
    if story is None:
        raise Problem(404, "There is no story at this address.")
    origin = _origin(request)
    content_type, render = FORMATS[kind]

    def build() -> bytes:
        with _db(request).read() as conn:
            items = story_items(conn, story, origin)
        head = FeedHead(
            id=f"{origin}/stories/{slug}", title=story.headline, subtitle=story.summary,
            page_url=f"{origin}/stories/{slug}", self_url=f"{origin}/stories/{slug}/feed.{kind}",
            updated=story.updated_at, author=request.app.state.settings.site_name,
            icon=f"{origin}/static/icon-192.png",
        )
        return render(head, items)

    etag = f'W/"feed-{kind}-{story.id}-{story.last_event_id}"'
    return held_answer(request, feed_key(kind, slug, origin), etag, story.updated_at, content_type, build,
                       cache_control(story.status), story.id, story.last_event_id, at_door=True)


@router.api_route("/stories/{slug}/feed.atom", methods=["GET", "HEAD"])
def story_atom(request: Request, slug: str) -> Response:
    """The story's latest updates for feed readers, as Atom."""
    return _story_feed(request, slug, "atom")


@router.api_route("/stories/{slug}/feed.json", methods=["GET", "HEAD"])
def story_json_feed(request: Request, slug: str) -> Response:
    """The story's latest updates for feed readers, as JSON Feed 1.1."""
    return _story_feed(request, slug, "json")


def _site(request: Request, name: str, content_type: str,
          build: Callable[[str, list[Row[Any]]], bytes], extra: str = "") -> Response:
    """A site-wide document, one version per newest event of any public story."""
    with _db(request).read() as conn:
        rows = stories.list_stories(conn, limit=sitemaps.MAX_URLS)
    origin = _origin(request)
    newest = max((row.last_event_id for row in rows), default=0)
    modified = max((row.updated_at for row in rows), default=SITE_EPOCH)
    etag = f'W/"{name}-{newest}-{len(rows)}{extra}"'
    return held_answer(request, (name, origin), etag, modified, content_type, lambda: build(origin, rows),
                       CACHE_PUBLIC)


def _site_feed(request: Request, kind: str) -> Response:
    settings = request.app.state.settings
    content_type, render = FORMATS[kind]

    def build(origin: str, rows: list[Row[Any]]) -> bytes:
        head = FeedHead(
            id=f"{origin}/", title=settings.site_name, subtitle=f"Live coverage by {settings.site_name}.",
            page_url=f"{origin}/", self_url=f"{origin}/feed.{kind}",
            updated=max((row.updated_at for row in rows), default=SITE_EPOCH), author=settings.site_name,
            icon=f"{origin}/static/icon-192.png",
        )
        return render(head, [story_as_item(row, origin) for row in rows[: sitemaps.MAX_NEWS_URLS]])

    return _site(request, f"site-{kind}", content_type, build)


@router.api_route("/feed.atom", methods=["GET", "HEAD"])
def site_atom(request: Request) -> Response:
    """Every public story, most recently updated first, as Atom."""
    return _site_feed(request, "atom")


@router.api_route("/feed.json", methods=["GET", "HEAD"])
def site_json_feed(request: Request) -> Response:
    """Every public story, most recently updated first, as JSON Feed 1.1."""
    return _site_feed(request, "json")


@router.api_route("/sitemap.xml", methods=["GET", "HEAD"])
def sitemap(request: Request) -> Response:
    return _site(request, "sitemap", XML, sitemaps.sitemap)


@router.api_route("/sitemap-news.xml", methods=["GET", "HEAD"])
def news_sitemap(request: Request) -> Response:
    name = request.app.state.settings.site_name
    # A story leaves the news sitemap two days after it began: a new version each day.
    return _site(request, "sitemap-news", XML, lambda origin, rows: sitemaps.news_sitemap(origin, name, rows),
                 extra=f"-{now().date().isoformat()}")


@router.get("/robots.txt")
def robots(request: Request) -> Response:
    return Response(sitemaps.robots(_origin(request)), media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})
