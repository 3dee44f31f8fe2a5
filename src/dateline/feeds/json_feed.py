"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1): the same feed as `atom.py`, in JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .atom import FeedHead
from .items import FeedItem, stamp

VERSION = "https://jsonfeed.org/version/1.1"


def document(head: FeedHead, items: Sequence[FeedItem], language: str = "en") -> bytes:
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": head.title,
        "home_page_url": head.page_url,
        "feed_url": head.self_url,
        "language": language,
        "icon": head.icon,
        "authors": [{"name": head.author}],
        "items": [_item(item) for item in items],
    }
    if head.subtitle:
        feed["description"] = head.subtitle
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode()


def _item(item: FeedItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.id,
        "url": item.url,
        "title": item.title,
        "content_html": item.html,
        "content_text": item.text,
        "date_published": stamp(item.published),
        "date_modified": stamp(item.updated),
    }
    if item.author:
        data["authors"] = [{"name": item.author}]
    if item.tags:
        data["tags"] = list(item.tags)
    if item.image:
        data["image"] = item.image
    return data
