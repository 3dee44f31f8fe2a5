"""The API's JSON bodies, read once and checked for text that is not Unicode.

JSON may spell a lone UTF-16 surrogate (`"\\ud800"`); Python decodes it into a `str` that no
database, hash or encoder accepts. Such a body is refused here with a 422 before any field is
read, so nothing downstream meets one. Every API router is made by `api_router`, so every
route gets the check and the prefix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute

API_PREFIX = "/api/v1"


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class _CheckedRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = json.loads(body)
            # Only an escape can spell a surrogate: bodies without one skip the walk.
            if b"\\u" in body and _has_lone_surrogate(value):
                raise HTTPException(422, "The request holds text that is not valid Unicode (a lone surrogate).")
            self._json = value
        return self._json


class CheckedJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_CheckedRequest(request.scope, request.receive))

        return route


def api_router(tag: str) -> APIRouter:
    """A router for one part of the JSON API."""
    return APIRouter(prefix=API_PREFIX, tags=[tag], route_class=CheckedJsonRoute)
