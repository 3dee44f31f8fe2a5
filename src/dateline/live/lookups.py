"""What a live stream asks of the database, with the caches that make a wave of
reconnecting readers cost a handful of queries instead of one each: answers are remembered,
and readers asking the same question while it is being answered wait for that one answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from ..db import Database
from ..stories import events
from ..stories import story as stories
from ..vocabulary import Audience
from . import sse

REPLAY_BATCH = 500
OLDEST_ID_SECONDS = 10.0
MAX_CACHED_SLUGS = 10_000
T = TypeVar("T")


class Lookups:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._story_ids: dict[str, int] = {}
        self.ended: set[int] = set()  # public stories whose coverage has ended (their streams end too)
        self._oldest: tuple[int, float] | None = None
        self._asking: dict[object, asyncio.Future[Any]] = {}

    async def _once(self, key: object, ask: Callable[[], Awaitable[T]]) -> T:
        """`ask()`, unless the same question is being answered already: then that answer.
        The question runs as a task of its own, so a reader leaving does not cancel it for
        the others."""
        task = self._asking.get(key)
        if task is None:
            task = self._asking[key] = asyncio.ensure_future(ask())
            task.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(task)

    def _settled(self, key: object, task: asyncio.Future[object]) -> None:
        del self._asking[key]
        if not task.cancelled():
            task.exception()  # retrieved, even when every reader asking has left

    async def story_id(self, slug: str, audience: Audience = Audience.readers) -> int | None:
        """The id of the story this audience may follow. Public stories are cached; drafts,
        which only the newsroom's few streams ask for, are not."""
        if audience is Audience.readers and slug in self._story_ids:
            return self._story_ids[slug]
        if audience is Audience.newsroom:
            return await asyncio.to_thread(self._lookup, slug, audience)
        story_id = await self._once(("story", slug), lambda: asyncio.to_thread(self._lookup, slug, audience))
        if story_id is None:
            return story_id  # a 404 is not remembered: a story published a moment ago must not stay one
        if len(self._story_ids) > MAX_CACHED_SLUGS:
            self._story_ids.clear()
        self._story_ids[slug] = story_id
        return story_id

    def cached_story_id(self, slug: str) -> int | None:
        """The public story's id if it has been looked up already, without waiting."""
        return self._story_ids.get(slug)

    def forget(self, slug: str) -> None:
        """A story was created, published or unpublished: look it up again next time."""
        self._story_ids.pop(slug, None)

    def _lookup(self, slug: str, audience: Audience) -> int | None:
        with self.db.read() as conn:
            story = stories.get_story(conn, slug, audience)
        if story is None:
            return None
        self.set_ended(int(story.id), story.status == "ended")
        return int(story.id)

    def set_ended(self, story_id: int, ended: bool) -> None:
        if ended:
            self.ended.add(story_id)
        else:
            self.ended.discard(story_id)

    async def caught_up(self, story_id: int, cursor: str | None) -> bool:
        """Whether a reader resuming from `cursor` has had every event of the story (one
        query for all the readers asking at once). No cursor: it asks for what comes next."""
        if not cursor:
            return True
        after = sse.cursor_id(cursor)
        if after is None:
            return False
        last = await self._once(("last", story_id),
                                lambda: self.story_last_id(story_id, Audience.readers))
        return after >= last

    def story_events(self, story_id: int, after: int, audience: Audience, max_bytes: int) -> list[events.Event] | None:
        """One batch of a replay, at most about `max_bytes`, as visible now; None when the
        story is no longer there for this audience (run in a thread)."""
        with self.db.read() as conn:
            return events.read_replay(conn, story_id, after, REPLAY_BATCH, max_bytes, audience)

    async def story_last_id(self, story_id: int, audience: Audience) -> int:
        def query(conn: Connection) -> int:
            return events.story_last_id(conn, story_id, audience)

        return await asyncio.to_thread(self._scalar, query)

    async def newest_id(self) -> int:
        return await asyncio.to_thread(self._scalar, events.last_id)

    async def oldest_id(self) -> int:
        """The log's first id, asked of the database at most every 10 s: every resuming reader
        needs it, and in a wave of reconnections that would be a query each."""
        now = time.monotonic()
        if self._oldest is None or now - self._oldest[1] > OLDEST_ID_SECONDS:
            first = await self._once("oldest", lambda: asyncio.to_thread(self._scalar, events.first_id))
            self._oldest = (first, now)
        return self._oldest[0]

    def known_oldest_id(self) -> int | None:
        """The log's first id as `oldest_id` last had it, while that is fresh; None when it
        must be asked again."""
        if self._oldest is None or time.monotonic() - self._oldest[1] > OLDEST_ID_SECONDS:
            return None
        return self._oldest[0]

    def forget_oldest(self) -> None:
        """The log was pruned: ask the database for its first id next time."""
        self._oldest = None

    def _scalar(self, query: Callable[[Connection], int]) -> int:
        with self.db.read() as conn:
            return int(query(conn))
