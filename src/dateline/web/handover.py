"""What `web/server.py` needs to hand a readers' stream to its own protocol (live/connection.py):
which requests are one, and the live delivery of the app being served."""

from __future__ import annotations

import re
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Any

import httptools

if TYPE_CHECKING:
    from ..live import Live

READER_STREAM = re.compile(r"/stories/([^/]+)/live")
_live_of_app: weakref.WeakKeyDictionary[Any, Live | None] = weakref.WeakKeyDictionary()
_last: tuple[Any, Live | None] = (None, None)  # the app asked last and its answer, read as one


def reader_stream(url: bytes) -> tuple[str, bytes] | None:
    """(slug, query string) when the request target is a readers' live stream."""
    parsed = httptools.parse_url(url)
    raw = parsed.path.decode("latin-1")
    match = READER_STREAM.fullmatch(urllib.parse.unquote(raw) if "%" in raw else raw)
    return None if match is None else (match[1], parsed.query or b"")


def live_of(app: Any) -> Live | None:
    """The live delivery of the app uvicorn serves, under whatever wraps it (its proxy
    headers middleware): found once per app."""
    global _last
    last = _last
    if app is last[0]:
        return last[1]  # the one app a process serves: asked once per connection
    if app in _live_of_app:
        _last = (app, _live_of_app[app])
        return _last[1]
    found, inner = None, app
    for _ in range(16):
        found = getattr(getattr(inner, "state", None), "live", None)
        inner = getattr(inner, "app", None)
        if found is not None or inner is None:
            break
    _live_of_app[app] = found
    _last = (app, found)
    return found
