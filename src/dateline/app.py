"""The web application: settings and database in, one ASGI app out.

Routes: the live stream (`live.LiveEndpoint`), the JSON API (`api.router`), the reader
pages (`reader.router`), the newsroom and push subscriptions. Each process also runs a push
sender, which works through the notification outbox. The middleware here is plain ASGI so it never buffers a stream.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from typing import Any
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, api, newsroom, problems, reader
from .config import Settings
from .db import Database
from .embeds import PLAYER_ORIGINS
from .live import Live, LiveEndpoint
from .push import routes as push_routes
from .push.sender import PushSender

STATIC = Path(__file__).with_name("static")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    f"frame-src {' '.join(PLAYER_ORIGINS)}; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """Adds the security headers to every response that has not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """Refuses request bodies over the limit with 413, before any handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._refuse(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem_response(
            413, f"The request body is larger than the limit of {self.max_bytes} bytes.",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class MediaFiles(StaticFiles):
    """Uploaded photos: content-addressed names, so they never change and cache forever."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class DatelineApp(FastAPI):
    """FastAPI, with the readers' live stream answered at the door.

    `/stories/{slug}/live` is the one route that holds hundreds of thousands of connections
    open. Served here, ahead of the middleware, it gets uvicorn's own `send`, so its events
    go straight to each reader's socket (see `live/stream.py`). It needs none of the
    middleware: a GET with no body, and its headers are its own.
    """

    live_endpoint: LiveEndpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith("/stories/") and path.endswith("/live"):
                slug = path[len("/stories/"):-len("/live")]
                if slug and "/" not in slug:
                    scope["path_params"] = {"slug": slug}
                    return await self.live_endpoint(scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    db = db or Database.from_settings(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's reporter: one line a post is noise

    live = Live(db, settings)
    push_sender = PushSender(db, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.check_schema()  # refuse to serve a database this version does not understand
        await live.start()
        await push_sender.start()
        # Everything built so far lives as long as the process: out of the collector's sight,
        # a full collection with 19,000 open streams has that much less to walk.
        gc.freeze()
        yield
        await push_sender.stop()
        await live.stop()
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
    app.state.push_address_limit = push_routes.AddressLimit()
    problems.install(app, html_error=reader.error_page)
    app.live_endpoint = LiveEndpoint(live)
    app.router.routes.append(Route("/stories/{slug}/live", app.live_endpoint, methods=["GET"]))  # HEAD, docs
    app.router.routes.append(
        Route("/newsroom/stories/{slug}/live", LiveEndpoint(live, newsroom=True), methods=["GET"])
    )
    app.include_router(api.router)
    app.include_router(newsroom.router)
    app.include_router(push_routes.router)
    app.add_exception_handler(newsroom.SignInRequired, newsroom.sign_in_redirect)  # type: ignore[arg-type]
    app.include_router(reader.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/media", MediaFiles(directory=settings.media_dir, check_dir=False), name="media")
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    return app
