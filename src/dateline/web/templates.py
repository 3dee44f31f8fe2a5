"""The Jinja2 templates of every page (reader and newsroom), with their filters."""

from __future__ import annotations

import json
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from ..plain_text import entry_text, shortened
from ..times import iso
from .assets import assets

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


@pass_context
def _when(context: Context, value: datetime) -> str:
    """A moment as the page says it without scripts: in full, in the newsroom's zone and
    naming it (static/times.js then shows it in the reader's own zone)."""
    request = context.get("request")
    name = context.get("time_zone") or (request.app.state.settings.time_zone if request is not None else "UTC")
    return value.astimezone(_zone(name)).strftime("%-d %b %Y, %H:%M %Z")


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    return timezone.utc if name == "UTC" else ZoneInfo(name)


def _entry_line(row: Any, chars: int = 100) -> str:
    """An entry row as one short line of text, as the key-events list shows it."""
    fields: dict[str, str] = json.loads(row.fields)
    return shortened(entry_text({"kind": row.kind, "html": row.html, **fields}), chars)


def _facts(story: Any) -> list[str]:
    """A story row's "What we know" list."""
    facts: list[str] = json.loads(getattr(story, "facts", None) or "[]")
    return facts


def view_query(order: str, key_only: bool, **cursor: int | None) -> str:
    """The query of a story page's view: its order, the key-events filter, a page cursor.
    The default view (newest first, every update) has none, so it is the one shared URL."""
    params: dict[str, str | int] = {}
    if order == "oldest":
        params["order"] = "oldest"
    if key_only:
        params["filter"] = "key"
    params.update({name: value for name, value in cursor.items() if value is not None})
    return "?" + urlencode(params) if params else ""


templates.env.filters["when"] = _when
templates.env.filters["iso"] = iso
templates.env.filters["entry_line"] = _entry_line
templates.env.filters["facts"] = _facts
templates.env.globals["view_query"] = view_query
templates.env.globals["asset"] = assets.url  # /static/ names with their content hash
