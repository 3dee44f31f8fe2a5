"""`/api/v1/search`: stories and updates found by their words (docs/search.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from pydantic import BeforeValidator

from ..search import query, terms
from ..stories import posting
from ..times import iso
from ..vocabulary import MAX_SLUG, SLUG_REGEX, Audience
from ..web.deps import ANONYMOUS_OK, Db, Viewer, audience_of
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS
from .search_models import SearchResults

router = api_router("search")
VARY = "Authorization, Cookie, Accept-Encoding"
# Readers' answers are the same for everyone: a short public cache. The newsroom's hold
# drafts: never kept by a shared cache.
CACHE_READERS = "public, max-age=10, stale-while-revalidate=30"
CACHE_NEWSROOM = "private, no-store"


def _moment(value: Any) -> Any:
    """Parsed here, so a date stays a date (pydantic would read it as that day's midnight)."""
    return terms.parse_moment(value) if isinstance(value, str) else value


Moment = Annotated[datetime | date, BeforeValidator(_moment)]


@router.get("/search", response_model=SearchResults, responses=COMMON_ERRORS, openapi_extra=ANONYMOUS_OK)
def search(
    db: Db, user: Viewer, response: Response,
    q: Annotated[str, Query(
        min_length=1, max_length=terms.MAX_QUERY_CHARS, examples=["police square"],
        description=f"Words to find, all of them (case and accents aside); at most {terms.MAX_WORDS} are used. "
                    "No operators: quotes, `*`, `-`, `AND`, `NEAR` are plain text.")],
    story: Annotated[str | None, Query(max_length=MAX_SLUG, pattern=SLUG_REGEX,
                                       description="Only this story and its updates.")] = None,
    since: Annotated[Moment | None, Query(
        description="Published at or after: a date (its midnight, UTC) or a date and time.")] = None,
    until: Annotated[Moment | None, Query(
        description="Published at or before: a date (the whole day, UTC) or a date and time.")] = None,
    sort: Annotated[Literal["relevance", "newest"], Query(description="Best match first, or newest first.")]
        = "relevance",
    limit: Annotated[int, Query(ge=1, le=terms.MAX_LIMIT)] = terms.DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=terms.MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Stories and updates with every word of `q`, best match first. Readers find published
    updates of public stories (scheduled, live, ended); newsroom members also drafts and pending posts."""
    audience = audience_of(user)
    words = terms.words_of(q)
    with db.read() as conn:
        story_id = posting.find_story(conn, story, audience).id if story else None
        found = query.run(conn, query.Search(
            words, story_id=story_id, since=terms.since_moment(since) if since else None,
            until=terms.until_moment(until) if until else None, newest_first=sort == "newest",
            limit=limit, offset=offset,
        ), audience)
    response.headers["Cache-Control"] = CACHE_NEWSROOM if audience is Audience.newsroom else CACHE_READERS
    response.headers["Vary"] = VARY
    more = found.has_more and offset + limit <= terms.MAX_OFFSET
    return {
        "q": q, "words": words, "total": found.total, "total_exact": found.total_exact,
        "next_offset": offset + limit if more else None,
        "hits": [
            {"kind": hit.kind, "story": hit.story, "headline": hit.headline, "story_status": hit.story_status,
             "entry_id": hit.entry_id, "entry_kind": hit.entry_kind, "entry_status": hit.entry_status,
             "url": hit.path, "published_at": iso(hit.published_at), "snippet": str(hit.snippet)}
            for hit in found.hits
        ],
    }
