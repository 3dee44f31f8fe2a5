"""Moments as Dateline writes them: ISO 8601 in JSON, HTTP dates in headers."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from email.utils import format_datetime


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime) -> str:
    """For JSON: "2026-11-25T21:42:07.123Z"."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def http_date(moment: datetime) -> str:
    """For `Last-Modified`: "Wed, 25 Nov 2026 21:42:08 GMT" for 21:42:07.3, rounded up to the
    second (`web/http_cache.py` says why)."""
    return format_datetime(datetime.fromtimestamp(math.ceil(moment.timestamp()), timezone.utc), usegmt=True)
