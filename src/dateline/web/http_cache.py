"""HTTP validators: answer 304 when the client already has this version."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from fastapi import Request, Response


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (or is `*`), weakly compared as RFC 9110 §13.1.2
    says: `W/"x"` and `"x"` are one version, whatever its encoding."""
    if not if_none_match:
        return False
    etag = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in if_none_match.split(","))


def unmodified_since(if_modified_since: str | None, modified: datetime) -> bool:
    """Whether `If-Modified-Since` is at or after `modified` (to the second, as HTTP dates go)."""
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False  # not a date: as if it were not sent (RFC 9110 §13.1.3)
    return since.tzinfo is not None and int(modified.timestamp()) <= since.timestamp()


def not_modified(request: Request, etag: str, cache_control: str,
                 extra: Mapping[str, str] | None = None, modified: datetime | None = None) -> Response | None:
    """A 304 if `If-None-Match` names `etag`, or, when it is absent, `If-Modified-Since` is
    no older than `modified`; None means render the full answer."""
    if_none_match = request.headers.get("if-none-match")
    fresh = matches(if_none_match, etag) if if_none_match is not None else (
        modified is not None and unmodified_since(request.headers.get("if-modified-since"), modified))
    if fresh:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control, **(extra or {})})
    return None
