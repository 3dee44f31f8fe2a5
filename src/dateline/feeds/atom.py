"""Atom (RFC 4287): a story's updates, or the site's stories, as one XML document."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .items import FeedItem, stamp

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@dataclass(frozen=True)
class FeedHead:
    id: str
    title: str
    subtitle: str
    page_url: str  # the HTML page the feed follows
    self_url: str
    updated: datetime
    author: str  # the site's name: each item names its own author too
    icon: str


def document(head: FeedHead, items: Sequence[FeedItem]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<id>{xml_text(head.id)}</id>",
        f"<title>{xml_text(head.title)}</title>",
    ]
    if head.subtitle:
        parts.append(f"<subtitle>{xml_text(head.subtitle)}</subtitle>")
    parts += [
        f"<updated>{stamp(head.updated)}</updated>",
        f'<link rel="alternate" type="text/html" href="{xml_text(head.page_url)}"/>',
        f'<link rel="self" type="application/atom+xml" href="{xml_text(head.self_url)}"/>',
        f"<author><name>{xml_text(head.author)}</name></author>",
        f"<icon>{xml_text(head.icon)}</icon>",
        '<generator>Dateline</generator>',
    ]
    for item in items:
        parts += [
            "<entry>",
            f"<id>{xml_text(item.id)}</id>",
            f"<title>{xml_text(item.title)}</title>",
            f'<link rel="alternate" type="text/html" href="{xml_text(item.url)}"/>',
            f"<published>{stamp(item.published)}</published>",
            f"<updated>{stamp(item.updated)}</updated>",
        ]
        if item.author:
            parts.append(f"<author><name>{xml_text(item.author)}</name></author>")
        parts += [f'<category term="{xml_text(tag)}"/>' for tag in item.tags]
        parts += [f'<content type="html">{xml_text(item.html)}</content>', "</entry>"]
    parts.append("</feed>\n")
    return "\n".join(parts).encode()
