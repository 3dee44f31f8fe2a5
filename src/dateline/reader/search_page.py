"""`/search`: the readers' search page, server-rendered and complete without JavaScript.

Readers' results only, whoever is signed in (the newsroom searches drafts through the API),
so every answer may be cached publicly for a few seconds. A query the API would refuse is
shown here as a message on the page, with the same 4xx status.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from ..db import Database
from ..search import query, terms
from ..stories import story as stories
from ..vocabulary import Audience
from ..web.templates import templates

router = APIRouter(include_in_schema=False)
CACHE_CONTROL = "public, max-age=10, stale-while-revalidate=30"
PAGE_SIZE = terms.DEFAULT_LIMIT
LAST_PAGE = terms.MAX_OFFSET // PAGE_SIZE + 1


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _moment(params: dict[str, str], name: str) -> date | datetime | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return terms.parse_moment(text)
    except ValueError:
        raise _Refused(422, f"“{text[:40]}” is not a date: use the form 2026-03-01.") from None


def _page_number(text: str) -> int:
    """The page asked for, 1 for anything that is not a page number, at most the last page."""
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return 1
    return min(max(int(text), 1), LAST_PAGE)


@router.api_route("/search", methods=["GET", "HEAD"], response_class=HTMLResponse)
def search_page(request: Request) -> Response:
    params = {key: value.replace("\x00", "") for key, value in request.query_params.items()}
    q = params.get("q", "")
    context: dict[str, Any] = {
        "q": q, "since": params.get("since", ""), "until": params.get("until", ""),
        "sort": "newest" if params.get("sort") == "newest" else "relevance", "story": None,
        "searched": False, "error": None, "found": query.Found(), "words": [], "page": 1,
        "site_name": request.app.state.settings.site_name, "time_zone": request.app.state.settings.time_zone,
        "max_chars": terms.MAX_QUERY_CHARS,
    }
    status = 200
    try:
        status = _search(request, params, context)
    except _Refused as refused:
        status, context["error"] = refused.status, str(refused)
    page = templates.get_template("search.html").render(context)
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    return HTMLResponse(page, status_code=status, headers=headers)


def _search(request: Request, params: dict[str, str], context: dict[str, Any]) -> int:
    db: Database = request.app.state.db
    slug = params.get("story", "")
    if slug:
        with db.read() as conn:
            context["story"] = stories.get_story(conn, slug)
        if context["story"] is None:
            raise _Refused(404, "There is no story at this address to search in.")
    q = context["q"]
    if not q.strip():
        return 200  # the form alone
    if len(q) > terms.MAX_QUERY_CHARS:
        raise _Refused(422, f"Search for at most {terms.MAX_QUERY_CHARS} characters.")
    since, until = _moment(params, "since"), _moment(params, "until")
    words = terms.words_of(q)
    number = _page_number(params.get("page", "1"))
    with db.read() as conn:
        found = query.run(conn, query.Search(
            words, story_id=context["story"].id if context["story"] else None,
            since=terms.since_moment(since) if since else None, until=terms.until_moment(until) if until else None,
            newest_first=context["sort"] == "newest", limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE,
        ), Audience.readers)
    kept = {k: v for k in ("q", "story", "since", "until", "sort") if (v := params.get(k, "")) and v != "relevance"}
    context.update(searched=True, found=found, words=words, page=number,
                   more=found.has_more and number < LAST_PAGE, first=(number - 1) * PAGE_SIZE + 1,
                   page_url=lambda n: "/search?" + urlencode({**kept, **({"page": n} if n > 1 else {})}))
    return 200
