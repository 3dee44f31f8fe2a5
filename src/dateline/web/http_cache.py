"""HTTP validators: answer 304 when the client already has this version.

The ETag is exact. A date is exact too, though HTTP dates are whole seconds, by two rules:

- A version's date is the second its change was made in, rounded up: 21:42:08 for 21:42:07.3.
  A client that asks `If-Modified-Since` with an earlier date, even one taken from the
  `Date` of an answer sent within that second (as some caches do), gets the full answer.
- `Last-Modified` is sent only once that second is over (`reader/page_cache.py` sends every
  answer that has one). Within it, a second change could still come under the same date,
  so an answer sent then carries no date to revalidate with (RFC 9110 §8.8.2.2 calls such a
  date weak). A reader with the ETag is not affected.

So a poller holding a date holds every change made up to it, and any later change has a
later date. That holds across nodes as far as their clocks agree.
"""

from __future__ import annotations

import math
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
    """Whether `If-Modified-Since` is at or after `modified`, rounded up to the second."""
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False  # not a date: as if it were not sent (RFC 9110 §13.1.3)
    return since.tzinfo is not None and math.ceil(modified.timestamp()) <= since.timestamp()


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
