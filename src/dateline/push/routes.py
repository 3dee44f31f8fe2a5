"""The push routes: the VAPID public key, and subscribing or unsubscribing (no account)."""

from __future__ import annotations

from typing import Annotated, Any

import threading
import time
from collections import deque
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from .. import stories
from ..api import COMMON_ERRORS, PROBLEM, Db, Member, SlugPath, story_for
from ..problems import Problem
from . import outbox, subscriptions

router = APIRouter()
SERVICE_WORKER = Path(__file__).parent.parent / "static" / "sw.js"


class Keys(BaseModel):
    p256dh: Annotated[str, Field(min_length=1, max_length=100)]
    auth: Annotated[str, Field(min_length=1, max_length=40)]


class SubscriptionIn(BaseModel):
    """The browser's `PushSubscription` JSON, plus what to follow."""

    model_config = ConfigDict(extra="ignore")  # browsers add fields of their own
    endpoint: Annotated[str, Field(min_length=1, max_length=subscriptions.MAX_ENDPOINT)]
    keys: Keys
    story: Annotated[str, Field(min_length=1, max_length=80, description='A story\'s slug, or "site" for breaking news.')]


class SubscriptionOut(BaseModel):
    endpoint: str
    story: str


class Unsubscribe(BaseModel):
    endpoint: Annotated[str, Field(min_length=1, max_length=subscriptions.MAX_ENDPOINT)]
    story: Annotated[str, Field(min_length=1, max_length=80)]


class Notification(BaseModel):
    id: int
    entry_id: int | None
    title: str | None
    body: str | None
    recipients: int = Field(description="Followers when it was queued (later followers are not sent it).")
    sent: int
    failed: int
    removed: int = Field(description="Subscriptions the push service said are gone; deleted.")
    last_error: str | None
    created_at: str
    finished_at: str | None


class NotificationList(BaseModel):
    notifications: list[Notification]


class PublicKey(BaseModel):
    public_key: str = Field(description="Pass to PushManager.subscribe() as applicationServerKey.")


def _story_id(conn: Any, slug: str) -> int | None:
    if slug == "site":
        return None
    story = stories.get_story(conn, slug)
    if story is None or story.status != "live":
        raise Problem(404, f"No live story with the slug {slug!r} to follow.")
    return int(story.id)


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> FileResponse:
    """The service worker, served from the root so its scope is the whole site; revalidated
    on every check so a new version reaches readers at once."""
    return FileResponse(SERVICE_WORKER, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/push/vapid-public-key", response_model=PublicKey, tags=["push"],
            responses={503: {"description": "No key yet: run `dateline init`"}})
def vapid_public_key(db: Db) -> dict[str, str]:
    with db.read() as conn:
        found = subscriptions.current_key(conn)
    if found is None:
        raise Problem(503, "Notifications are not set up yet: run `dateline init`.")
    return {"public_key": found[1]}


class AddressLimit:
    """At most `limit` subscription changes a minute from one address, per server process: a
    reader needs a handful; a script filling the table with junk gets 429."""

    def __init__(self, limit: int = 30, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, request: Request) -> None:
        address = request.client.host if request.client else "?"
        now = time.monotonic()
        with self.lock:
            if len(self.seen) > 100_000:
                self.seen.clear()
            times = self.seen.setdefault(address, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                wait = int(times[0] + self.window - now) + 1
                raise Problem(429, "Too many subscription changes from this address; try again shortly.",
                              headers={"Retry-After": str(wait)})
            times.append(now)


LIMITED = {**COMMON_ERRORS, 429: {"description": "Too many subscription changes from this address", **PROBLEM}}


@router.post("/api/v1/push/subscriptions", status_code=201, response_model=SubscriptionOut,
             responses=LIMITED, tags=["push"])
def subscribe(payload: SubscriptionIn, request: Request, db: Db) -> dict[str, str]:
    """Follow a story (or the site) with browser notifications (30 changes a minute from
    one address)."""
    request.app.state.push_address_limit.check(request)
    try:
        settings = request.app.state.settings
        subscriptions.check_endpoint(payload.endpoint, settings.push_test_endpoints, settings.push_service_hosts)
        subscriptions.check_keys(payload.keys.p256dh, payload.keys.auth)
    except subscriptions.SubscriptionError as exc:
        raise Problem(422, f"This subscription cannot be used: {exc}.") from None
    with db.write() as conn:
        story_id = _story_id(conn, payload.story)
        subscriptions.subscribe(conn, payload.endpoint, payload.keys.p256dh, payload.keys.auth, story_id)
    return {"endpoint": payload.endpoint, "story": payload.story}


@router.delete("/api/v1/push/subscriptions", status_code=204, responses=LIMITED, tags=["push"])
def unsubscribe(payload: Unsubscribe, request: Request, db: Db) -> Response:
    """Stop notifications for a story (or the site). Unknown subscriptions are 404."""
    request.app.state.push_address_limit.check(request)
    with db.write() as conn:
        story = None if payload.story == "site" else stories.get_story(conn, payload.story, include_drafts=True)
        if payload.story != "site" and story is None:
            raise Problem(404, f"No story with the slug {payload.story!r}.")
        removed = subscriptions.unsubscribe(conn, payload.endpoint, None if story is None else story.id)
    if not removed:
        raise Problem(404, "There is no such subscription.")
    return Response(status_code=204)


@router.get("/api/v1/stories/{slug}/notifications", response_model=NotificationList,
            responses=COMMON_ERRORS, tags=["push"])
def notifications(slug: SlugPath, db: Db, user: Member) -> dict[str, Any]:
    """The story's latest notifications and how far each has got ("sent to 81,203 of
    100,000, 12 failed"), newest first (newsroom members)."""
    with db.read() as conn:
        story = story_for(conn, slug, user)
        return {"notifications": outbox.progress(conn, story.id)}
