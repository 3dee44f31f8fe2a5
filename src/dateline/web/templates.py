"""The Jinja2 templates of every page (reader and newsroom), with their filters."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi.templating import Jinja2Templates

from ..times import iso
from .assets import assets

templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%-d %b %Y, %H:%M UTC")


templates.env.filters["when"] = _when
templates.env.filters["iso"] = iso
templates.env.globals["asset"] = assets.url  # /static/ names with their content hash
