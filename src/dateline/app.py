"""The web application: settings and database in, one ASGI app out.

This is where the parts meet: the live delivery (`live.Live`) and the push sender of this
process, the route table (`routes.py`), the error handlers and the middleware. Each process
runs one of each.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from . import __version__, routes
from .api import uploads
from .config import Settings
from .db import Database
from .live import Live
from .live.stream import check_direct_path
from .newsroom.pages import SignInRequired, sign_in_redirect
from .push.sender import PushSender
from .reader.page_cache import PageCache, catch_up_door, story_door
from .reader.pages import error_page
from .web import problems
from .web.middleware import BodyLimit, SecurityHeaders
from .web.rate_limit import AddressLimit


class DatelineApp(FastAPI):
    """FastAPI, with the routes of `door` answered before anything else.

    A story's first page and readers' catch-up answers, when current in memory, are answered
    here too (`reader/page_cache.py`): they are what a breaking story's readers all ask for.

    `/stories/{slug}/live` is the one route that holds hundreds of thousands of connections
    open. Served here, ahead of the middleware, it gets uvicorn's own `send`, so its events
    go straight to each reader's socket (see `live/stream.py`). It needs none of the
    middleware: a GET with no body, and its headers are its own.
    """

    door: Sequence[Route] = ()  # the app's own, set by create_app
    held: Sequence[PageCache] = ()  # pages and catch-up answers, set by create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            for cache in self.held:
                if await cache.answer(scope, send):
                    return  # current and in memory: its bytes, and nothing else runs
        if scope["type"] == "http" and scope["method"] == "GET":
            for route in self.door:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    return await route.handle(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "HEAD":
            # HEAD is GET without the body, on every route that answers GET: the route sees
            # GET, and the server, whose own scope still says HEAD, sends the headers alone.
            scope = {**scope, "method": "GET"}
        await super().__call__(scope, receive, send)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """405, with `Allow` naming every method the path answers, on the API, pages and files."""
    path = request.scope["path"]
    allow = ", ".join(routes.allowed_methods(request.app.router.routes, path))
    detail = f"{path} answers {allow}."
    if path.startswith("/api/"):
        return problems.problem_response(405, detail, headers={"Allow": allow}, instance=path)
    response = error_page(request, 405, detail)
    response.headers["Allow"] = allow
    return response


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # The app disposes only a database it opened itself: a caller that hands one in owns it,
    # and may share it (tests run two apps on one), so disposing it here would orphan the
    # connections the other app still has checked out, to be closed by the garbage collector.
    owns_db = db is None
    db = db or Database.from_settings(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's reporter: one line a post is noise

    live = Live(db, settings)
    push_sender = PushSender(db, settings)
    live.add_nudge_listener(push_sender.nudge)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.check_schema()  # refuse to serve a database this version does not understand
        check_direct_path()
        await live.start()
        await push_sender.start()
        # Everything built so far lives as long as the process: out of the collector's sight,
        # a full collection with 19,000 open streams has that much less to walk.
        gc.freeze()
        yield
        await push_sender.stop()
        await live.stop()
        if owns_db:
            db.dispose()

    app = DatelineApp(
        title="Dateline API",
        version=__version__,
        description="Live news coverage: stories, their updates, and the event log behind them.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the interactive docs load scripts from elsewhere; the CSP forbids it
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.live = live
    app.state.push_address_limit = AddressLimit.push_subscriptions(db)
    problems.install(app, html_error=error_page)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.add_exception_handler(405, method_not_allowed)
    app.state.photo_decoding = asyncio.Semaphore(uploads.DECODING_AT_ONCE)
    app.door = routes.install(app, live, settings)
    app.state.pages = PageCache(live.follower.current, door=story_door(settings.public_url))
    app.state.answers = PageCache(live.follower.current, max_pages=1_000, max_bytes=16 * 1024 * 1024,
                                  door=catch_up_door)  # readers' catch-up API
    app.held = (app.state.pages, app.state.answers)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, own_limits=uploads.body_limits(settings))
    app.add_middleware(SecurityHeaders)
    return app
