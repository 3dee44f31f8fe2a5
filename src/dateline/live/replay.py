"""A resuming reader's replay of the log, paced by its socket.

A reader resuming from a recent id is replayed from this process's window of recent events
(window.py), with no query, once the follower has read the log as it stood when the reader
came (one read shared by every reader arriving meanwhile): the window then holds what a replay
from the log would send, entries deleted a moment ago left out. From an older id, or when that
read does not come in time, the replay reads the log. Either way it may have megabytes
to catch up on, and the replay never holds more than one small batch of it: it takes a batch
(at most half the reader's buffer, `DATELINE_STREAM_BUFFER_BYTES`), writes it, waits until
the reader's connection has taken it, and only then takes the next. So a reader costs about
the same bounded memory while it catches up as once it is live, however long the story and
however slowly it reads.

A reader whose connection takes nothing for `DATELINE_STREAM_STALL_SECONDS` is dropped (it
reconnects later and resumes where it got to); one that reads slowly, but reads, is served to
the end of its replay. Each batch is read together with the story's status, so nothing goes
out of a story its reader may no longer see (back to draft): the stream then ends, as a live
one does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.types import Message, Send

from . import sse
from .lookups import REPLAY_BATCH

if TYPE_CHECKING:
    from . import Live
    from .stream import StreamSubscriber

# Writes nothing: under uvicorn, `send` first waits until the connection's buffer has drained.
DRAIN: Message = {"type": "http.response.body", "body": b"", "more_body": True}
FRESH_SECONDS = 1.0  # how long a replay waits for the follower's read before asking the log itself


def batch_bytes(live: Live) -> int:
    """The most a replay writes at once: half the reader's buffer."""
    return max(1, live.max_pending // 2)


async def replay(live: Live, subscriber: StreamSubscriber, after: int, send: Send,
                 transport: asyncio.WriteTransport | None) -> int | None:
    """Send the story's events after `after`, as visible now, then again what overflowed the
    events held meanwhile; returns the last id sent, or None when the stream must end (the
    story is gone for this reader, the reader left or stalled), with the subscriber closed."""
    last: int | None = after
    recent = (live.window.covers(subscriber.story_id, after, subscriber.audience)
              and await live.follower.fresh(FRESH_SECONDS))
    while last is not None:
        subscriber.replay_again = False
        last = await replay_once(live, subscriber, last, send, transport, recent)
        if not subscriber.replay_again:
            break
    if last is None:
        subscriber.close()
    return last


async def replay_once(live: Live, subscriber: StreamSubscriber, after: int, send: Send,
                      transport: asyncio.WriteTransport | None, use_window: bool) -> int | None:
    budget = batch_bytes(live)
    while True:
        if subscriber.closed or live.window.hides(subscriber.story_id, subscriber.audience):
            return None
        if use_window:
            recent = live.window.after(subscriber.story_id, after, subscriber.audience, budget)
        else:
            recent = None
            live.window.missed += 1
        if recent is not None:
            held, more = recent
            if not held:
                return after
            body = b"".join(h.frame for h in held)
            after = held[-1].id
        else:
            batch = await asyncio.to_thread(
                live.lookups.story_events, subscriber.story_id, after, subscriber.audience, budget)
            if batch is None or subscriber.closed:  # no longer visible, or ended meanwhile
                return None
            if not batch:
                return after
            more = len(batch) >= REPLAY_BATCH or sum(len(e.data) for e in batch) >= budget
            body = b"".join(sse.event(e.id, e.type, e.data) for e in batch)
            after = batch[-1].id
            del batch  # held no longer than it takes to write
        await send({"type": "http.response.body", "body": body, "more_body": True})
        del body
        if not await drained(live, subscriber, send, transport):
            return None
        if not more:  # the read found all there was
            return after


async def drained(live: Live, subscriber: StreamSubscriber, send: Send,
                  transport: asyncio.WriteTransport | None) -> bool:
    """Wait until the reader's connection has taken what was written. False if the reader
    left, or took nothing for the stall limit (then it is dropped)."""
    while True:
        left = transport.get_write_buffer_size() if transport is not None else 0
        try:
            await asyncio.wait_for(send(DRAIN), live.stall_seconds)
        except TimeoutError:
            if transport is not None and transport.get_write_buffer_size() < left:
                continue  # slow, but it reads
            drop(subscriber, transport)
            return False
        return transport is None or not transport.is_closing()


def drop(subscriber: StreamSubscriber, transport: asyncio.WriteTransport | None) -> None:
    """Too far behind for too long: let go of it and what it has not taken."""
    subscriber.dropped = True
    if transport is not None:
        transport.abort()
    subscriber.close()


async def finish(live: Live, subscriber: StreamSubscriber, send: Send,
                 transport: asyncio.WriteTransport | None) -> None:
    """End the response cleanly, unless the reader takes nothing for the stall limit."""
    try:
        await asyncio.wait_for(send({"type": "http.response.body", "body": b"", "more_body": False}),
                               live.stall_seconds)
    except TimeoutError:
        drop(subscriber, transport)
