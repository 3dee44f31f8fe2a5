"""An update as plain text: for a notification, a feed entry's title, structured data and
social cards, wherever the update's HTML cannot go."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3


def plain(fragment: str) -> str:
    """Sanitized HTML's words, paragraphs apart."""
    return html.unescape(nh3.clean(fragment.replace("</p>", "</p> "), tags=set()))


def entry_text(entry: dict[str, Any]) -> str:
    """The update's words (`entry_json`'s shape), on one line: a quote with its speaker, a
    photo by its caption."""
    kind = entry["kind"]
    if kind == "quote":
        text = f"“{plain(entry['html'].split('<footer>')[0]).strip()}” — {entry.get('speaker') or ''}"
    elif kind == "image":
        text = entry.get("caption") or entry.get("alt") or plain(entry["html"])
    else:
        text = plain(entry["html"])
    return re.sub(r"\s+", " ", text).strip()


def shortened(text: str, chars: int) -> str:
    """At most `chars` characters, cut at a word where one is near, with an ellipsis."""
    if len(text) <= chars:
        return text
    cut = text[: chars - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > chars * 0.6 else cut).rstrip(" ,;:.") + "…"
