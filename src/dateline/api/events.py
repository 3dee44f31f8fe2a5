"""`/api/v1/stories/{slug}/events`: catch-up for clients that cannot stream."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from ..reader.page_cache import CATCH_UP_LIMIT, MAX_CATCH_UP_LIMIT, CachedPage, PageCache, catch_up_key
from ..stories import events, posting
from ..times import http_date
from ..vocabulary import MAX_ID, Audience
from ..web.compression import Encoded
from ..web.deps import ANONYMOUS_OK, Db, SlugPath, Viewer, audience_of
from ..web.http_cache import not_modified
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS
from .models import EventPage

router = api_router("events")
VARY = "Authorization, Cookie, Accept-Encoding"


@router.get("/stories/{slug}/events", response_model=EventPage, responses=COMMON_ERRORS, openapi_extra=ANONYMOUS_OK)
def list_events(
    slug: SlugPath, request: Request, db: Db, user: Viewer,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Last event id seen; 0 for all.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CATCH_UP_LIMIT)] = CATCH_UP_LIMIT,
) -> Response:
    """The story's events after `after`, in order, as visible now."""
    audience = audience_of(user)
    newsroom = audience is Audience.newsroom
    with db.read() as conn:
        story = posting.find_story(conn, slug, audience)
        # What this audience can see: readers' events move `last_event_id`; the newsroom's
        # validator also covers newsroom-only events (a held post, who is editing).
        if newsroom:
            etag = f'W/"evn{events.story_last_id(conn, story.id, audience)}-{after}-{limit}"'
        else:
            etag = f'W/"ev{story.last_event_id}-{after}-{limit}"'
        cache_control = "private, no-cache" if newsroom else "public, max-age=1, stale-while-revalidate=5"
        # Readers' answers are the same bytes for everyone at this version and cursor: made
        # and compressed once (the cache is their own, so no flood of cursors evicts pages),
        # and answered at the door while current. Looked up before the 304, which confirms
        # the held answer for the door too.
        answers: PageCache = request.app.state.answers
        key = catch_up_key(slug, after, limit)
        held = None if newsroom else answers.get(key, etag)
        if (cached := not_modified(request, etag, cache_control, {"Vary": VARY})) is not None:
            return cached
        if held is not None:
            return _send(request, held)
        page = events.read_after(conn, story.id, after, limit + 1, audience=audience)
    has_more = len(page) > limit
    page = page[:limit]
    last = page[-1].id if page else after
    # The stored JSON is spliced in as is: no decode and re-encode per request.
    body = (
        '{"events":[' + ",".join(e.to_json() for e in page)
        + f'],"last_event_id":{last},"has_more":{"true" if has_more else "false"}}}'
    )
    # Members get newsroom events too: a cache must not hand one answer to the other.
    headers = {"Content-Type": "application/json", "Cache-Control": cache_control,
               "Vary": VARY, "Last-Modified": http_date(story.updated_at)}
    answer = CachedPage(etag, Encoded.of(body.encode()), headers, story.id, story.last_event_id)
    return _send(request, answer if newsroom else answers.put(key, answer))


def _send(request: Request, answer: CachedPage) -> Response:
    return answer.response(request.headers.get("accept-encoding"))
