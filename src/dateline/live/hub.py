"""Who is reading which story, and the one place an event is handed to them all.

`publish` takes the bytes of an event, encoded once, and hands the same object to every
subscriber of the story. A subscriber buffers at most `max_pending` bytes; one that falls
further behind is dropped, and catches up from the log when it reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol

from ..vocabulary import Audience
from . import sse


class Subscriber(Protocol):
    story_id: int
    audience: Audience
    session_id: str | None  # newsroom streams: the sign-in session that let them in

    def deliver(self, event_id: int, frame: bytes, public: bool = True, chunk: bytes = b"") -> None: ...

    def queue_frame(self, frame: bytes) -> None: ...

    def close(self) -> None: ...


class Hub:
    def __init__(self, heartbeat_seconds: float = 15.0) -> None:
        self.stories: dict[int, set[Subscriber]] = {}
        self.count = 0
        self.heartbeat_seconds = heartbeat_seconds
        self._heartbeat: asyncio.Task[None] | None = None

    def add(self, subscriber: Subscriber) -> None:
        self.stories.setdefault(subscriber.story_id, set()).add(subscriber)
        self.count += 1

    def remove(self, subscriber: Subscriber) -> None:
        readers = self.stories.get(subscriber.story_id)
        if readers is not None and subscriber in readers:
            readers.discard(subscriber)
            self.count -= 1
            if not readers:
                del self.stories[subscriber.story_id]

    def publish(self, story_id: int, event_id: int, frame: bytes, public: bool = True) -> None:
        """Hand one event's bytes to every subscriber of the story (newsroom-only events to
        newsroom subscribers alone: each subscriber checks). Framed as an HTTP chunk once
        here, for the streams that write straight to their socket."""
        readers = self.stories.get(story_id)
        if readers:
            chunk = sse.chunk(frame)
            for subscriber in tuple(readers):
                subscriber.deliver(event_id, frame, public, chunk)

    def close_readers(self, story_id: int) -> None:
        """End the public streams of a story (the newsroom's stay open)."""
        for subscriber in tuple(self.stories.get(story_id, ())):
            if subscriber.audience is Audience.readers:
                subscriber.close()

    def subscribers(self) -> Iterator[Subscriber]:
        for readers in list(self.stories.values()):
            yield from tuple(readers)

    def start(self) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="live-heartbeat")

    async def stop(self) -> None:
        if self._heartbeat:
            self._heartbeat.cancel()
        for subscriber in self.subscribers():
            subscriber.close()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            for subscriber in self.subscribers():
                subscriber.queue_frame(sse.HEARTBEAT)
