"""The plain-ASGI middleware every answer passes through: security headers and the body limit.

Plain ASGI, not Starlette's BaseHTTPMiddleware, so nothing here ever buffers a stream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..stories.embeds import PLAYER_ORIGINS
from . import problems

log = logging.getLogger("dateline")

def content_security_policy(frame_ancestors: str = "'none'") -> str:
    """The policy of every page; `frame_ancestors` names who may frame it (embeds only)."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-src {' '.join(PLAYER_ORIGINS)}; "
        f"frame-ancestors {frame_ancestors}"
    )


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]

# What a style sheet or script under /static/ carries instead. The policies above govern a
# document (or a worker: /sw.js is not under /static/ and keeps them all), never a file a page
# links with <link> or <script>; nosniff keeps a browser from taking one for a page. Sent with
# each of a first load's files, the rest would be about 450 bytes each, for nothing.
LINKED_FILE_HEADERS = [(n, v) for n, v in SECURITY_HEADERS if n in (b"x-content-type-options", b"referrer-policy")]
LINKED_FILE_TYPES = (b"text/css", b"text/javascript", b"application/javascript")


def linked_file(path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer is a style sheet or script of /static/ (its headers: LINKED_FILE_HEADERS)."""
    if not path.startswith("/static/"):
        return False
    return any(name.lower() == b"content-type" and value.startswith(LINKED_FILE_TYPES) for name, value in headers)


def missing_security_headers(present: set[bytes]) -> list[tuple[bytes, bytes]]:
    """The security headers an answer lacks. One with its own policy (an embed's, framable by
    the sites the operator allows) decides its own framing: no X-Frame-Options, which can
    name no list of sites, beside it."""
    own_policy = b"content-security-policy" in present
    return [(n, v) for n, v in SECURITY_HEADERS
            if n not in present and not (own_policy and n == b"x-frame-options")]


class SecurityHeaders:
    """Adds the security headers to every response that has not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if linked_file(scope["path"], headers):
                    headers += [(n, v) for n, v in LINKED_FILE_HEADERS if n not in present]
                else:
                    headers += missing_security_headers(present)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            # Unexpected: answered here, inside this middleware, so the 500 carries the
            # security headers too (Starlette's own handler sits outside every middleware).
            if started:
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            response = problems.problem_response(
                500, "Something went wrong on our side; it has been logged.", instance=scope.get("path")
            )
            await response(scope, receive, with_headers)


class BodyLimit:
    """Refuses request bodies over the limit with 413, however they are sent: a Content-Length
    over it before a byte of the body is read, a chunked body as soon as it passes the limit.

    The 413 goes out then and there, and the handler hears that the client is gone (its own
    answer, say a 400 for the body it could not finish reading, is dropped). The server then
    closes the connection gently, so the client reads the 413 (web/server.py). A path of
    `own_limits` (photo uploads) has its own limit, and its own words for the refusal.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, own_limits: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.own_limits = dict(own_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, detail = self.own_limits.get(scope["path"], (self.max_bytes, ""))
        detail = detail or f"The request body is larger than the limit of {size_text(limit)}."
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return await self._refuse(scope, receive, send, detail)
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await self._refuse(scope, receive, send, detail)
                    return {"type": "http.disconnect"}
            return message

        async def answering_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent instead
            started = True
            await send(message)

        await self.app(scope, counting_receive, answering_send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        response = problems.problem_response(413, detail, instance=scope.get("path"))
        await response(scope, receive, send)


def size_text(size: int) -> str:
    """1048576 bytes, or 15 MB (15728640 bytes) for whole megabytes, as the desk shows them."""
    megabytes, rest = divmod(size, 1024 * 1024)
    return f"{megabytes} MB ({size} bytes)" if megabytes and not rest else f"{size} bytes"
