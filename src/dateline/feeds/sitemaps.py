"""What search engines read to find every story: sitemap.xml, a news sitemap of the last two
days (the format news search documents) and robots.txt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row

from ..times import now
from .atom import xml_text
from .items import stamp

MAX_URLS = 50_000  # the most one sitemap may list
NEWS_DAYS = 2  # news sitemaps list what was published in the last two days
MAX_NEWS_URLS = 1_000


def sitemap(origin: str, stories: Sequence[Row[Any]]) -> bytes:
    """The front page and every public story, most recently updated first."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
             f"<url><loc>{xml_text(origin)}/</loc></url>"]
    for story in stories[: MAX_URLS - 1]:
        parts.append(f"<url><loc>{xml_text(origin)}/stories/{story.slug}</loc>"
                     f"<lastmod>{stamp(story.updated_at)}</lastmod></url>")
    parts.append("</urlset>\n")
    return "\n".join(parts).encode()


def news_sitemap(origin: str, site_name: str, stories: Sequence[Row[Any]], language: str = "en") -> bytes:
    """Stories whose coverage began in the last two days."""
    since = now() - timedelta(days=NEWS_DAYS)
    recent = [story for story in stories if story.created_at >= since][:MAX_NEWS_URLS]
    parts = ['<?xml version="1.0" encoding="utf-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
             'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">']
    for story in recent:
        parts.append(
            f"<url><loc>{xml_text(origin)}/stories/{story.slug}</loc><news:news><news:publication>"
            f"<news:name>{xml_text(site_name)}</news:name><news:language>{language}</news:language>"
            f"</news:publication><news:publication_date>{stamp(story.created_at)}</news:publication_date>"
            f"<news:title>{xml_text(story.headline)}</news:title></news:news></url>"
        )
    parts.append("</urlset>\n")
    return "\n".join(parts).encode()


def robots(origin: str) -> bytes:
    """Everything readers see may be indexed; the newsroom and the API may not."""
    return (
        "User-agent: *\n"
        "Disallow: /newsroom/\n"
        "Disallow: /api/\n"
        "Disallow: /stories/*/live\n"
        "Allow: /\n"
        f"\nSitemap: {origin}/sitemap.xml\n"
        f"Sitemap: {origin}/sitemap-news.xml\n"
    ).encode()
