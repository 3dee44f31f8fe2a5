"""A feed's contents, read once and shaped for every format: the story's "What we know",
its live figures and its latest updates as `FeedItem`s, with absolute links."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import escape
from sqlalchemy import Connection, Row

from ..plain_text import entry_text, shortened
from ..stories import entries, figures
from ..times import iso

FEED_UPDATES = 50  # the latest updates a story's feed carries
TITLE_CHARS = 100

# Links of ours in an update's HTML are site-relative: a feed read elsewhere needs them whole.
_RELATIVE = re.compile(r'((?:\ssrc|\shref|\ssrcset)="|, )/(?=media/|stories/|static/)')


@dataclass(frozen=True)
class FeedItem:
    id: str  # the update's permalink, which never changes
    url: str
    title: str
    html: str
    text: str
    author: str
    published: datetime
    updated: datetime
    tags: tuple[str, ...]  # "key event", "correction", "what we know", "figures"
    image: str | None


def absolute_html(fragment: str, origin: str) -> str:
    return _RELATIVE.sub(lambda m: m.group(1) + origin + "/", fragment)


def item_of(row: Row[Any], slug: str, origin: str) -> FeedItem:
    update: dict[str, Any] = entries.entry_json(row, slug)
    text = entry_text(update)
    tags = ("key event",) * bool(update["key_event"]) + ("correction",) * bool(update.get("correction", "").strip())
    image = update.get("image_url") or None
    url = f"{origin}/stories/{slug}/entries/{row.id}"
    return FeedItem(
        id=url, url=url, title=shortened(text, TITLE_CHARS) or "Update", html=absolute_html(update["html"], origin),
        text=text, author=update["author"]["name"], published=row.published_at, updated=row.updated_at,
        tags=tags, image=(origin + image if image and image.startswith("/") else image),
    )


def facts_item(story: Row[Any], origin: str) -> FeedItem | None:
    """"What we know" as one item that changes in place: its id stays, its `updated` moves."""
    facts: list[str] = json.loads(story.facts or "[]")
    if not facts or story.facts_updated_at is None:
        return None
    url = f"{origin}/stories/{story.slug}#what-we-know"
    html = "<ul>" + "".join(f"<li>{escape(fact)}</li>" for fact in facts) + "</ul>"
    return FeedItem(
        id=url, url=url, title="What we know", html=html, text="\n".join(facts), author="",
        published=story.facts_updated_at, updated=story.facts_updated_at, tags=("what we know",), image=None,
    )


def block_item(block: Row[Any], slug: str, origin: str) -> FeedItem:
    """A live figures block as one item that changes in place: the latest figures as text,
    and the block's own table (the HTML readers see, with its history)."""
    url = f"{origin}/stories/{slug}#block-{block.id}"
    return FeedItem(
        id=url, url=url, title=shortened(block.title, TITLE_CHARS), html=block.html,
        text=figures.as_text(block), author="", published=block.created_at, updated=block.updated_at,
        tags=("figures",) + ("key event",) * bool(block.key_event), image=None,
    )


def story_items(conn: Connection, story: Row[Any], origin: str) -> list[FeedItem]:
    """What a story's feed carries: "What we know" and the live figures first (items
    that change in place, as they do at the top of the page), then the latest published
    updates, newest first."""
    standing = [facts_item(story, origin)] + [
        block_item(block, story.slug, origin) for block in figures.list_blocks(conn, story.id)]
    rows = entries.list_entries(conn, story.id, limit=FEED_UPDATES)
    return [item for item in standing if item is not None] + [item_of(row, story.slug, origin) for row in rows]


def story_as_item(story: Row[Any], origin: str) -> FeedItem:
    """A story as one item of the site's feed: its headline and summary, linking to it."""
    url = f"{origin}/stories/{story.slug}"
    status = {"live": "Live coverage", "ended": "Coverage ended"}.get(story.status, "")
    where = f"{story.dateline}. {status}" if story.dateline else status
    html = "".join(f"<p>{escape(part)}</p>" for part in (story.summary, where) if part)
    return FeedItem(
        id=url, url=url, title=story.headline, html=html, text=story.summary or story.headline,
        author="", published=story.created_at, updated=story.updated_at, tags=(story.status,), image=None,
    )


def stamp(moment: datetime) -> str:
    return iso(moment)
