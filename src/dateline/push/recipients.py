"""Who a story's notification goes to: the story's followers, and the site's followers
(breaking news) whose browser does not also follow the story, so each browser is sent one
message. A fan-out walks them in subscription id order, a batch at a time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select
from sqlalchemy.engine import Row

from ..schema import push_subscriptions


def of_story(story_id: int) -> Any:
    """The condition on `push_subscriptions` that a subscription is a recipient."""
    subs = push_subscriptions
    return or_(subs.c.story_id == story_id, and_(subs.c.story_id.is_(None), ~_also_follows(story_id)))


def _also_follows(story_id: int) -> Any:
    """This subscription's browser follows the story too: one probe of the (endpoint,
    story_id) index for each site-wide follower, not a walk over the story's followers."""
    subs, other = push_subscriptions, push_subscriptions.alias("other")
    return exists().where(other.c.endpoint == subs.c.endpoint, other.c.story_id == story_id)


def followers(conn: Connection, story_id: int) -> tuple[int, int]:
    """How many would be notified now, and the newest of them."""
    count, last = conn.execute(
        select(func.count(), func.coalesce(func.max(push_subscriptions.c.id), 0)).where(of_story(story_id))
    ).one()
    return int(count), int(last)


def follower_count(conn: Connection, story_id: int) -> int:
    return followers(conn, story_id)[0]


def following(conn: Connection, story_id: int, after: int, last: int, size: int) -> list[Row[Any]]:
    """The first `size` recipients with `after` < id <= `last`, in id order, with their keys:
    the story's followers and the site's, each read along its own index in id order, then
    merged. (One query with `of_story` would gather every recipient left and sort them, for
    each batch: a fan-out's claims would cost the square of its size.)"""
    subs = push_subscriptions.c
    columns = (subs.id, subs.endpoint, subs.p256dh, subs.auth)
    left = (subs.id > after, subs.id <= last)
    story = select(*columns).where(subs.story_id == story_id, *left).order_by(subs.id).limit(size)
    site = (select(*columns).where(subs.story_id.is_(None), ~_also_follows(story_id), *left)
            .order_by(subs.id).limit(size))
    return sorted([*conn.execute(story), *conn.execute(site)], key=lambda row: int(row.id))[:size]
