"""HTTP validators: answer 304 when the client already has this version."""

from __future__ import annotations

from fastapi import Request, Response


def not_modified(request: Request, etag: str, cache_control: str) -> Response | None:
    """A 304 if `If-None-Match` names `etag`; None means render the full answer."""
    sent = request.headers.get("if-none-match")
    if sent and (sent.strip() == "*" or etag in {tag.strip() for tag in sent.split(",")}):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    return None
