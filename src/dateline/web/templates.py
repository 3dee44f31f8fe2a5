"""The Jinja2 templates of every page (reader and newsroom), with their filters."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.templating import Jinja2Templates

from ..plain_text import entry_text, shortened
from ..times import iso
from .assets import assets

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def _when(value: datetime) -> str:
    """A moment as the page says it without scripts: in full, with its zone (static/times.js
    then shows it in the reader's own zone)."""
    return value.astimezone(timezone.utc).strftime("%-d %b %Y, %H:%M UTC")


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
