"""Errors as RFC 9457 `application/problem+json`, for every failure of the API.

Handlers raise `Problem`, the domain raises `errors.Refused`; validation errors, unknown
routes, database outages and anything unexpected are turned into the same shape here, so a
client never sees a stack trace. The pages get the same errors as an HTML page instead.
The tables at the end declare these answers in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Refused

log = logging.getLogger("dateline")

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class Problem(Exception):
    def __init__(
        self, status: int, detail: str, *, title: str | None = None,
        headers: dict[str, str] | None = None, **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None,
    instance: str | None = None, **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install(app: FastAPI, html_error: Callable[[Request, int, str], Response]) -> None:
    """Route every error to problem+json under /api, to `html_error` for the pages."""
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.detail, title=exc.title, headers=exc.headers,
            instance=request.url.path, **exc.extra,
        )

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> Response:
        if not request.url.path.startswith("/api/"):
            return html_error(request, exc.status, str(exc))
        return problem_response(exc.status, str(exc), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                return problem_response(
                    400, "The request body is not valid JSON.", instance=request.url.path
                )
            message = error["msg"].removeprefix("Value error, ")
            errors.append({"field": _location(tuple(error.get("loc", ()))), "message": message})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, summary, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"Nothing here: {request.url.path}"
        if not request.url.path.startswith("/api/"):
            return html_error(request, exc.status_code, detail)
        return problem_response(
            exc.status_code, detail, headers=getattr(exc, "headers", None), instance=request.url.path
        )

    @app.exception_handler(OperationalError)
    async def on_database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return problem_response(
            503, "The database is busy or unreachable; try again shortly.",
            headers={"Retry-After": "2"}, instance=request.url.path,
        )

    @app.exception_handler(DataError)
    async def on_data_refused(request: Request, exc: DataError) -> JSONResponse:
        # Validation should have caught it; the database's refusal is still the client's input.
        log.warning("database refused a value on %s: %s", request.url.path, exc.orig)
        return problem_response(
            422, "A value in the request cannot be stored.", instance=request.url.path
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Something went wrong on our side; it has been logged.", instance=request.url.path
        )


# --- the same answers, declared in the OpenAPI document -----------------------------------

PROBLEM: dict[str, Any] = {"content": {MEDIA_TYPE: {}}}
Responses = dict[int | str, dict[str, Any]]


def _declare(status: int, description: str) -> Responses:
    return {status: {"description": description, **PROBLEM}}


COMMON_ERRORS: Responses = {
    **_declare(400, "Malformed request"),
    **_declare(401, "Missing or bad token"),
    **_declare(403, "Role not allowed"),
    **_declare(404, "No such story, entry or user"),
    **_declare(413, "Request body too large"),
    **_declare(422, "Invalid fields"),
}
WRITE_ERRORS: Responses = {**COMMON_ERRORS, **_declare(409, "Conflict")}
EDIT_ERRORS: Responses = {**WRITE_ERRORS, **_declare(412, "If-Match is stale")}
THROTTLED: Responses = _declare(429, "Too many requests; see Retry-After")
UNSUPPORTED_MEDIA: Responses = _declare(415, "Not an accepted image")
