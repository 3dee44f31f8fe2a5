"""Readers' pages rendered once per version and kept, compressed, in memory.

When a story breaks, its page is asked for tens of thousands of times a second, and is the
same bytes until the next update. Each page here is rendered once per version (its ETag, made
of the story's newest event id), compressed once in each encoding, and then served as bytes.

A story's first page (the address everyone shares), its feeds and its framed views are
answered at the door, ahead of the framework, with no query: the follower reads every event
of the log, so it knows when a story has a newer version than the page held, and a post
written by this very process is never missed while the follower has yet to read it
(`Follower.current`). In case the follower itself falls behind, a page is served at the
door for at most `RECHECK_SECONDS` after the database last confirmed it; then one request
goes the ordinary way, which reads the story, and either confirms the page or renders the
new one. Readers' catch-up answers (asked with no credentials, `after` and `limit` alone)
are held and answered at the door the same way, in a cache of their own. Other pages (older
updates, oldest first, a single update, the front page, the site's feeds and sitemaps) go
the ordinary way every time: one indexed read, then these bytes if the version has not
changed.

Bounded: at most `MAX_PAGES` pages and `MAX_BYTES` bytes (all encodings counted), the least
recently used going first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

from ..times import http_date
from ..vocabulary import MAX_ID
from ..web.compression import Encoded, accepted
from ..web.http_cache import matches, not_modified, unmodified_since
from ..web.middleware import missing_security_headers
from ..web.public_url import origin_of

CACHE_PUBLIC = "public, max-age=5, stale-while-revalidate=30"
# An ended story changes rarely (a correction, a reopening): a CDN may hold it for a day,
# and a browser an hour, each checking back quietly when stale.
CACHE_ENDED = "public, max-age=3600, s-maxage=86400, stale-while-revalidate=86400"
MAX_PAGES = 2_000
MAX_BYTES = 64 * 1024 * 1024
RECHECK_SECONDS = 2.0
STORY_PREFIX = "/stories/"
API_PREFIX = "/api/v1/stories/"
EVENTS_SUFFIX = "/events"
CATCH_UP_LIMIT, MAX_CATCH_UP_LIMIT = 500, 1000  # as api/events.py declares them


@dataclass(slots=True)
class CachedPage:
    etag: str
    encoded: Encoded
    headers: dict[str, str]  # what every answer of this page says, but its encoding
    story_id: int | None = None
    version: int = 0  # the story's last event id when rendered
    checked_at: float = field(default_factory=time.monotonic)
    # Whole header lists for the door, built once: (identity, gzip, br, 304).
    raw: tuple[list[tuple[bytes, bytes]], ...] = ()
    undated: tuple[list[tuple[bytes, bytes]], ...] = ()  # the same, until `Last-Modified` may be sent
    modified: datetime | None = None  # its Last-Modified, for a door's If-Modified-Since
    dated_from: float = 0.0  # when an answer may carry it (`dated`)

    def __post_init__(self) -> None:
        if (last_modified := self.headers.get("Last-Modified")) is not None:
            self.modified = parsedate_to_datetime(last_modified)  # already rounded up to the second
            self.dated_from = self.modified.timestamp()
        common = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        common.append((b"etag", self.etag.encode()))
        if not any(name == b"vary" for name, _ in common):
            common.append((b"vary", b"Accept-Encoding"))
        common += missing_security_headers({name for name, _ in common})
        lists: list[list[tuple[bytes, bytes]]] = []
        for coding, body in ((None, self.encoded.identity), ("gzip", self.encoded.gzip), ("br", self.encoded.br)):
            if body is None:
                lists.append([])
                continue
            extra = [(b"content-encoding", coding.encode())] if coding else []
            lists.append([*common, *extra, (b"content-length", str(len(body)).encode())])
        not_modified = [(n, v) for n, v in common if n in (b"etag", b"cache-control", b"vary", b"last-modified")]
        self.raw = (*lists, not_modified)
        self.undated = self.raw if self.modified is None else tuple(
            [field for field in fields if field[0] != b"last-modified"] for fields in self.raw)

    def dated(self) -> bool:
        """Whether an answer sent now may carry its `Last-Modified`: only once the second of
        the change is over (`web/http_cache.py`)."""
        return time.time() >= self.dated_from

    def response(self, accept_encoding: str | None) -> Response:
        """This page as the ordinary way answers it, with the headers the door sends (the
        security headers are the middleware's there)."""
        coding, body = self.encoded.pick(accept_encoding)
        headers = {"Vary": "Accept-Encoding", **self.headers, "ETag": self.etag}
        if not self.dated():
            del headers["Last-Modified"]
        if coding:
            headers["Content-Encoding"] = coding
        return Response(body, media_type=headers.pop("Content-Type"), headers=headers)


class PageCache:
    def __init__(self, current: Callable[[int, int], bool], max_pages: int = MAX_PAGES,
                 max_bytes: int = MAX_BYTES, door: Callable[[Scope], Hashable | None] | None = None) -> None:
        self.current = current  # (story id, version): still the newest? (`Follower.current`)
        self.door = door  # a request's key, where the door may answer it (`story_door`, `catch_up_door`)
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.pages: OrderedDict[Hashable, CachedPage] = OrderedDict()
        self.bytes = 0
        self._lock = threading.Lock()  # pages are rendered in the thread pool
        self.hits = self.door_hits = self.renders = 0  # /healthz

    def get(self, key: Hashable, etag: str) -> CachedPage | None:
        """The page held for `key` if it is this version (the caller has just read it)."""
        with self._lock:
            page = self.pages.get(key)
            if page is None or page.etag != etag:
                return None
            page.checked_at = time.monotonic()
            self.pages.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: Hashable, page: CachedPage) -> CachedPage:
        with self._lock:
            self.renders += 1
            if (old := self.pages.pop(key, None)) is not None:
                self.bytes -= old.encoded.size
            if page.encoded.size > self.max_bytes:
                return page
            self.pages[key] = page
            self.bytes += page.encoded.size
            while len(self.pages) > self.max_pages or self.bytes > self.max_bytes:
                _, dropped = self.pages.popitem(last=False)
                self.bytes -= dropped.encoded.size
            return page

    async def answer(self, scope: Scope, send: Send) -> bool:
        """Serve a page (or answer) from memory if the door knows its address, it is held and
        it is current; False to let the request go the ordinary way."""
        key = self.door(scope) if self.door is not None else None
        page = None if key is None else self.pages.get(key)
        if page is None or page.story_id is None or not self.current(page.story_id, page.version):
            return False
        if time.monotonic() - page.checked_at > RECHECK_SECONDS:
            return False
        if_none_match = if_modified_since = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
        self.door_hits += 1
        lists = page.raw if page.dated() else page.undated
        # As `not_modified` decides: the ETag when one is sent, else the date (feed readers).
        if (matches(if_none_match, page.etag) if if_none_match is not None else
                page.modified is not None and unmodified_since(if_modified_since, page.modified)):
            await send({"type": "http.response.start", "status": 304, "headers": lists[3]})
            await send({"type": "http.response.body", "body": b""})
            return True
        body, headers = page.encoded.identity, lists[0]
        for coding in accepted(accept_encoding or ""):
            chosen = page.encoded.br if coding == "br" else page.encoded.gzip
            if chosen is not None:
                body, headers = chosen, lists[2 if coding == "br" else 1]
                break
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
        return True

    def stats(self) -> dict[str, int]:
        return {"pages": len(self.pages), "bytes": self.bytes, "renders": self.renders,
                "hits": self.hits, "door_hits": self.door_hits}


def cache_control(status: str) -> str:
    """How long a story's page, feeds and embeds may be held, by its coverage's status."""
    return CACHE_ENDED if status == "ended" else CACHE_PUBLIC


def held_answer(request: Request, key: Hashable, etag: str, modified: datetime, content_type: str,
                build: Callable[[], bytes], cache_control: str, story_id: int | None = None,
                version: int = 0, headers: Mapping[str, str] | None = None, at_door: bool = False) -> Response:
    """A version of a page, feed or sitemap: 304 when the client has it, else its bytes as
    held, or built, compressed and held now (`request.app.state.pages`). `headers` go with
    every answer, a 304 included (an embed's own policy: a 304 without it would let the
    middleware's stand in the reader's cache).

    `at_door`: the door answers this address (`story_door`), so a version is built and held
    even for a 304. Feed readers poll with validators alone, from whichever process they
    reach; without it, a process that never sent the full answer would never hold it, and
    every poll there would read the database."""
    own = dict(headers or {})
    cached = not_modified(request, etag, cache_control, {"Vary": "Accept-Encoding", **own}, modified)
    if cached is not None and not at_door:
        return cached
    cache: PageCache = request.app.state.pages
    page = cache.get(key, etag)  # also confirms, for the door, the version held
    if cached is not None and page is not None:
        return cached
    if page is None:
        fixed = {"Content-Type": content_type, "Last-Modified": http_date(modified), "Cache-Control": cache_control,
                 **own}
        page = cache.put(key, CachedPage(etag, Encoded.of(build()), fixed, story_id, version))
    return cached if cached is not None else page.response(request.headers.get("accept-encoding"))


def story_key(slug: str, order: str = "newest", cursor: int = 0, origin: str = "") -> tuple[str, str, str, int, str]:
    """A story page's key: `origin` is the base of its absolute links, when it comes from the request."""
    return ("story", slug, order, cursor, origin)


def catch_up_key(slug: str, after: int, limit: int) -> tuple[str, str, int, int]:
    return ("events", slug, after, limit)


def feed_key(kind: str, slug: str, origin: str) -> tuple[str, str, str, str]:
    """A story's feed (`atom` or `json`), with its links based on `origin`."""
    return ("feed", kind, slug, origin)


def framed_key(view: str, slug: str, scheme: str, origin: str) -> tuple[str, str, str, str]:
    """A story's framed view (`embed` or `teaser`) in a colour scheme."""
    return (view, slug, scheme, origin)


FEEDS = {"feed.atom": "atom", "feed.json": "json"}
FRAMED_VIEWS = ("embed", "teaser")
SCHEMES = {b"": "auto", b"scheme=auto": "auto", b"scheme=light": "light", b"scheme=dark": "dark"}


def story_door(public_url: str) -> Callable[[Scope], Hashable | None]:
    """What a breaking story's readers all ask for, at the addresses everyone shares: its first
    page (`/stories/{slug}`), its feeds (`/feed.atom`, `/feed.json`), both with no query, and
    its framed views (`/embed`, `/teaser`, with no query or `scheme=` alone). Anything else goes
    the ordinary way, which also words every refusal."""

    def key(scope: Scope) -> Hashable | None:
        path: str = scope["path"]
        if not path.startswith(STORY_PREFIX):
            return None
        slug, _, rest = path[len(STORY_PREFIX):].partition("/")
        query: bytes = scope["query_string"]
        if not rest:
            return None if query else story_key(slug, origin="" if public_url else origin_of(scope, ""))
        if (kind := FEEDS.get(rest)) is not None:
            return None if query else feed_key(kind, slug, origin_of(scope, public_url))
        if rest in FRAMED_VIEWS and (scheme := SCHEMES.get(query)) is not None:
            return framed_key(rest, slug, scheme, origin_of(scope, public_url))
        return None

    return key


def catch_up_door(scope: Scope) -> Hashable | None:
    """`/api/v1/stories/{slug}/events?after=N[&limit=M]` asked anonymously (no credentials,
    no cookie: a reader's answer, the same for all). Anything else goes the ordinary way,
    which also words every refusal."""
    path: str = scope["path"]
    if not (path.startswith(API_PREFIX) and path.endswith(EVENTS_SUFFIX)):
        return None
    slug = path[len(API_PREFIX):-len(EVENTS_SUFFIX)]
    if not slug or "/" in slug:
        return None
    for name, _ in scope["headers"]:
        if name in (b"authorization", b"cookie"):
            return None
    params = {"after": 0, "limit": CATCH_UP_LIMIT}
    query: bytes = scope["query_string"]
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.partition(b"=")
        field = name.decode("latin-1")
        if field not in params or not value.isdigit() or len(value) > 12:
            return None
        params[field] = int(value)
    if not 1 <= params["limit"] <= MAX_CATCH_UP_LIMIT or params["after"] > MAX_ID:
        return None  # the ordinary way says why
    return catch_up_key(slug, params["after"], params["limit"])
