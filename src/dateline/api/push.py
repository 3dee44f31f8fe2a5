"""`/api/v1/push`: the VAPID public key, following a story with browser notifications (no
account needed), and a story's notifications' progress (newsroom)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from ..push import outbox, subscriptions
from ..stories import posting
from ..stories import story as stories
from ..vocabulary import MAX_SLUG, Audience
from ..web.deps import Config, Db, Member, SlugPath
from ..web.json_body import api_router
from ..web.problems import COMMON_ERRORS, THROTTLED, Problem

router = api_router("push")


class Keys(BaseModel):
    p256dh: Annotated[str, Field(min_length=1, max_length=100)]
    auth: Annotated[str, Field(min_length=1, max_length=40)]


class SubscriptionIn(BaseModel):
    """The browser's `PushSubscription` JSON, plus what to follow."""

    model_config = ConfigDict(extra="ignore")  # browsers add fields of their own
    endpoint: Annotated[str, Field(min_length=1, max_length=subscriptions.MAX_ENDPOINT)]
    keys: Keys
    story: Annotated[str, Field(
        min_length=1, max_length=MAX_SLUG, description='A story\'s slug, or "site" for breaking news.')]


class SubscriptionOut(BaseModel):
    endpoint: str
    story: str


class Unsubscribe(BaseModel):
    endpoint: Annotated[str, Field(min_length=1, max_length=subscriptions.MAX_ENDPOINT)]
    story: Annotated[str, Field(min_length=1, max_length=MAX_SLUG)]


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


def _story_id(conn: Connection, slug: str) -> int | None:
    if slug == "site":
        return None
    story = stories.get_story(conn, slug)
    if story is None or story.status != "live":
        raise Problem(404, f"No live story with the slug {slug!r} to follow.")
    return int(story.id)


@router.get("/push/vapid-public-key", response_model=PublicKey,
            responses={503: {"description": "No key yet: run `dateline init`"}})
def vapid_public_key(db: Db) -> dict[str, str]:
    with db.read() as conn:
        found = subscriptions.current_key(conn)
    if found is None:
        raise Problem(503, "Notifications are not set up yet: run `dateline init`.")
    return {"public_key": found[1]}


LIMITED = {**COMMON_ERRORS, **THROTTLED}


@router.post("/push/subscriptions", status_code=201, response_model=SubscriptionOut, responses=LIMITED)
def subscribe(payload: SubscriptionIn, request: Request, db: Db, settings: Config) -> dict[str, str]:
    """Follow a story (or the site) with browser notifications (30 changes a minute from
    one address)."""
    request.app.state.push_address_limit.check(request)
    try:
        subscriptions.check_endpoint(payload.endpoint, settings.push_test_endpoints, settings.push_service_hosts)
        subscriptions.check_keys(payload.keys.p256dh, payload.keys.auth)
    except subscriptions.SubscriptionError as exc:
        raise Problem(422, f"This subscription cannot be used: {exc}.") from None
    with db.write() as conn:
        story_id = _story_id(conn, payload.story)
        subscriptions.subscribe(conn, payload.endpoint, payload.keys.p256dh, payload.keys.auth, story_id)
    return {"endpoint": payload.endpoint, "story": payload.story}


@router.delete("/push/subscriptions", status_code=204, responses=LIMITED)
def unsubscribe(payload: Unsubscribe, request: Request, db: Db) -> Response:
    """Stop notifications for a story (or the site). Unknown subscriptions are 404."""
    request.app.state.push_address_limit.check(request)
    with db.write() as conn:
        story = None if payload.story == "site" else stories.get_story(conn, payload.story, Audience.newsroom)
        if payload.story != "site" and story is None:
            raise Problem(404, f"No story with the slug {payload.story!r}.")
        removed = subscriptions.unsubscribe(conn, payload.endpoint, None if story is None else story.id)
    if not removed:
        raise Problem(404, "There is no such subscription.")
    return Response(status_code=204)


@router.get("/stories/{slug}/notifications", response_model=NotificationList, responses=COMMON_ERRORS)
def notifications(slug: SlugPath, db: Db, user: Member) -> dict[str, Any]:
    """The story's latest notifications and how far each has got ("sent to 81,203 of
    100,000, 12 failed"), newest first (newsroom members)."""
    with db.read() as conn:
        story = posting.find_story(conn, slug, Audience.newsroom)
        return {"notifications": outbox.progress(conn, story.id)}
