"""Every route of Dateline, in one table: what answers which path.

The readers' live stream is the one route answered *at the door*: `DatelineApp` hands it
uvicorn's own `send`, ahead of the middleware, so events go straight to each reader's
socket (see live/stream.py). It is declared once, below, and also sits in the ordinary
table, where HEAD and servers other than uvicorn find it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route

from .api import accounts, entries, events, figures, push, stories, tokens, uploads
from .api import search as search_api
from .config import Settings
from .embedding import pages as embedding
from .feeds import pages as feeds
from .live import Live, LiveEndpoint, health
from .newsroom import desk, signin
from .reader import pages, search_page
from .stories import media, photos
from .vocabulary import Audience
from .web.assets import assets
from .web.http_cache import matches
from .web.problems import Problem

ROUTERS: tuple[APIRouter, ...] = (
    stories.router,  # /api/v1/stories
    entries.router,  # /api/v1/stories/{slug}/entries, /api/v1/preview
    events.router,  # /api/v1/stories/{slug}/events
    figures.router,  # /api/v1/stories/{slug}/blocks
    uploads.router,  # /api/v1/uploads
    accounts.router,  # /api/v1/session, /api/v1/me, /api/v1/users
    tokens.router,  # /api/v1/tokens
    push.router,  # /api/v1/push/…, /api/v1/stories/{slug}/notifications
    search_api.router,  # /api/v1/search
    signin.router,  # /newsroom/login, /logout, /password
    desk.router,  # /newsroom, /newsroom/stories/…
    pages.router,  # /, /stories/{slug}, /stories/{slug}/entries/{id}, /sw.js
    search_page.router,  # /search
    embedding.router,  # /stories/{slug}/embed, /stories/{slug}/teaser, /embed.js, /oembed
    feeds.router,  # /stories/{slug}/feed.atom|json, /feed.atom|json, /sitemap.xml, /sitemap-news.xml, /robots.txt
    health.router,  # /healthz
)


IMMUTABLE = "public, max-age=31536000, immutable"


class MediaFiles(StaticFiles):
    """Uploaded photos in the folder store: content-addressed names, so they never change
    and cache forever."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()  # no folder yet, before the first upload: nothing is found (404)

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = IMMUTABLE
        return response


class MediaFromDatabase:
    """`/media/{name}` in the database store: any node serves what any node stored. Each
    process keeps the photos it serves most in a `media.MediaCache`; a miss is read off the
    event loop. The name is a content hash, hence the strong ETag that never goes stale."""

    def __init__(self, store: media.DatabaseStore, cache: media.MediaCache) -> None:
        self.store = store
        self.cache = cache

    async def serve(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not photos.VARIANT_NAME.fullmatch(name):
            raise Problem(404, f"Nothing here: {request.url.path}")
        variant = self.cache.get(name)
        if variant is None:
            variant = await asyncio.to_thread(self.store.read, name)
            if variant is None:
                raise Problem(404, f"Nothing here: {request.url.path}")
            self.cache.put(variant)
        headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{name}"'}
        if matches(request.headers.get("if-none-match"), f'"{name}"'):
            return Response(status_code=304, headers=headers)
        return Response(variant.data, media_type=variant.content_type, headers=headers)


def install(app: FastAPI, live: Live, settings: Settings) -> list[Route]:
    """Put every route on `app`; returns the routes to answer at the door."""
    at_the_door = [Route("/stories/{slug}/live", live.endpoint, methods=["GET"])]
    app.router.routes.extend(at_the_door)
    app.router.routes.append(
        Route("/newsroom/stories/{slug}/live", LiveEndpoint(live, Audience.newsroom), methods=["GET"])
    )
    for router in ROUTERS:
        app.include_router(router)
    # `:path`: the demo's photos sit in a folder of their own.
    app.router.routes.append(Route("/static/{name:path}", assets.serve, methods=["GET"], name="static"))
    if settings.media_in_database:
        # `:path`: every /media/… is answered here, a name with a slash too (a 404 all the same).
        photos_of = MediaFromDatabase(media.DatabaseStore(app.state.db), media.MediaCache())  # db: set by create_app
        app.router.routes.append(Route("/media/{name:path}", photos_of.serve, methods=["GET"], name="media"))
    else:
        app.mount("/media", MediaFiles(directory=settings.media_dir, check_dir=False), name="media")
    return at_the_door


PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(table: Sequence[BaseRoute], path: str) -> list[str]:
    """Every method some route of `table` answers at `path`, for a 405's `Allow`: HEAD
    wherever GET is (`DatelineApp` answers it as GET), GET and HEAD for files."""
    found = []
    for method in PROBED_METHODS:
        scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": [], "query_string": b""}
        if any(route.matches(scope)[0] is Match.FULL and (method == "GET" or not isinstance(route, Mount))
               for route in table):
            found.append(method)
    return [*found[:1], "HEAD", *found[1:]] if "GET" in found else found
