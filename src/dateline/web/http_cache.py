"""HTTP validators: answer 304 when the client already has this version."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request, Response


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (or is `*`), weakly compared as RFC 9110 §13.1.2
    says: `W/"x"` and `"x"` are one version, whatever its encoding."""
    if not if_none_match:
        return False
    etag = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in if_none_match.split(","))


def not_modified(request: Request, etag: str, cache_control: str,
                 extra: Mapping[str, str] | None = None) -> Response | None:
    """A 304 if `If-None-Match` names `etag`; None means render the full answer."""
    if matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control, **(extra or {})})
    return None
