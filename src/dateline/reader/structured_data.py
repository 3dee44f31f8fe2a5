"""What search engines and social networks read in a story's page head: schema.org
`LiveBlogPosting` JSON-LD, and OpenGraph and Twitter card tags.

Every URL here is absolute, built on the site's public address (`web/public_url.py`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from ..plain_text import entry_text, shortened
from ..stories import figures
from ..stories.entries import entry_json
from ..stories.photos import StoredImage
from ..times import iso

HEADLINE_CHARS = 110  # the longest headline search engines show in full
DESCRIPTION_CHARS = 200
LATEST_UPDATES = 10  # updates listed in `liveBlogUpdate`


@dataclass(frozen=True)
class Card:
    """A social card: OpenGraph and Twitter tags."""

    title: str
    description: str
    url: str
    image: str | None = None
    image_alt: str = ""
    image_width: int | None = None
    image_height: int | None = None


def _absolute(origin: str, url: str) -> str:
    return origin + url if url.startswith("/") else url


def _person(name: str) -> dict[str, str]:
    return {"@type": "Person", "name": name}


def story_url(origin: str, slug: str) -> str:
    return f"{origin}/stories/{slug}"


def entry_url(origin: str, slug: str, entry_id: int) -> str:
    return f"{origin}/stories/{slug}/entries/{entry_id}"


def _photo(origin: str, entries: list[dict[str, Any]]) -> tuple[str, str, StoredImage | None] | None:
    """The newest photo among `entries`: (absolute URL, alt text, its stored sizes)."""
    for entry in entries:
        url = entry.get("image_url") or ""
        if entry["kind"] == "image" and url.startswith(("/", "https://")):
            return _absolute(origin, url), entry.get("alt") or "", StoredImage.from_url(url)
    return None


def card(story: Row[Any], rows: list[Row[Any]], origin: str) -> Card:
    """The social card of a story's page: its headline, summary (or latest update) and newest photo."""
    updates = [entry_json(row, story.slug) for row in rows]
    description = story.summary or (entry_text(updates[0]) if updates else "")
    photo = _photo(origin, updates)
    stored = photo[2] if photo else None
    return Card(
        title=story.headline, description=shortened(description, DESCRIPTION_CHARS),
        url=story_url(origin, story.slug), image=photo[0] if photo else None,
        image_alt=photo[1] if photo else "", image_width=stored.width if stored else None,
        image_height=stored.height if stored else None,
    )


def entry_card(story: Row[Any], row: Row[Any], origin: str) -> Card:
    """The social card of one update's permalink."""
    update = entry_json(row, story.slug)
    photo = _photo(origin, [update])
    stored = photo[2] if photo else None
    return Card(
        title=story.headline, description=shortened(entry_text(update), DESCRIPTION_CHARS),
        url=entry_url(origin, story.slug, row.id), image=photo[0] if photo else None,
        image_alt=photo[1] if photo else "", image_width=stored.width if stored else None,
        image_height=stored.height if stored else None,
    )


def blog_posting(story: Row[Any], update: dict[str, Any], origin: str) -> dict[str, Any]:
    text = entry_text(update)
    posting: dict[str, Any] = {
        "@type": "BlogPosting",
        "@id": entry_url(origin, story.slug, update["id"]),
        "url": entry_url(origin, story.slug, update["id"]),
        "headline": shortened(text, HEADLINE_CHARS) or story.headline,
        "articleBody": text,
        "datePublished": update["published_at"],
        "dateModified": update["updated_at"],
        "author": _person(update["author"]["name"]),
    }
    if (photo := _photo(origin, [update])) is not None:
        posting["image"] = photo[0]
    return posting


def live_blog(story: Row[Any], rows: list[Row[Any]], origin: str, site_name: str,
              coverage_start: str, coverage_end: str | None, blocks: Sequence[Row[Any]] = ()) -> dict[str, Any]:
    """schema.org `LiveBlogPosting` of a story, with its latest updates, its "What we
    know" as the `abstract`, and its live figures, as text, as `Table` parts."""
    updates = [entry_json(row, story.slug) for row in rows[:LATEST_UPDATES]]
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": story_url(origin, story.slug),
        "url": story_url(origin, story.slug),
        "mainEntityOfPage": story_url(origin, story.slug),
        "headline": shortened(story.headline, HEADLINE_CHARS),
        "datePublished": iso(story.created_at),
        "dateModified": iso(story.updated_at),
        "coverageStartTime": coverage_start,
        "publisher": {"@type": "Organization", "name": site_name,
                      "logo": {"@type": "ImageObject", "url": f"{origin}/static/icon-192.png"}},
        "liveBlogUpdate": [blog_posting(story, update, origin) for update in updates],
    }
    if story.summary:
        data["description"] = story.summary
    if facts := json.loads(getattr(story, "facts", None) or "[]"):
        data["abstract"] = "\n".join(facts)
    if blocks:
        data["hasPart"] = [{
            "@type": "Table", "@id": f"{story_url(origin, story.slug)}#block-{block.id}", "name": block.title,
            "text": figures.as_text(block), "dateModified": iso(block.updated_at),
        } for block in blocks]
    if story.dateline:
        data["contentLocation"] = {"@type": "Place", "name": story.dateline}
    if coverage_end is not None:
        data["coverageEndTime"] = coverage_end
    if (photo := _photo(origin, updates)) is not None:
        data["image"] = photo[0]
    authors = list(dict.fromkeys(update["author"]["name"] for update in updates))
    if authors:
        data["author"] = [_person(name) for name in authors]
    return data


def script_json(data: dict[str, Any]) -> str:
    """JSON safe inside `<script type="application/ld+json">`: nothing in it can end the
    element or open a comment, whatever the text of an update says."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
