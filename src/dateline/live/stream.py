"""`GET /stories/{slug}/live`: the story's event stream, resumable exactly.

A reader sends the last id it saw (`Last-Event-ID`, or `?last_event_id=` on a first
connection). The stream joins the hub first and holds live events aside, replays the log
after that id as it is visible now, then releases the held events above the last id sent:
no gap, no duplicate, also while posts arrive during the replay.

A browser gives up for good on a non-200 answer, so troubles (overload, database down)
answer 200 with a `retry:` hint and close: the reader comes back a few seconds later.

Under uvicorn (httptools), once the replay is done a stream goes *direct*: the hub writes each
event's bytes, chunk-framed once for all, straight to every reader's transport, and the
stream's task sleeps until the reader leaves. No task wakes up, no queue grows, per reader per
event. Elsewhere (the test client, other servers) the same stream runs through ASGI `send`;
`check_direct_path` says so in the log at start-up when uvicorn cannot go direct.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ..vocabulary import Audience
from ..web.auth import session_from_cookie
from . import sse
from .replay import finish, replay

if TYPE_CHECKING:
    from . import Live

log = logging.getLogger("dateline.live")
REACH_SECONDS = 1.0  # how long a cursor ahead of this process waits for its follower
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
    (b"x-content-type-options", b"nosniff"),  # served ahead of the security-headers middleware
]


class StreamSubscriber:
    """One reader's connection: what is waiting to be written, and up to which id."""

    __slots__ = ("story_id", "audience", "last_id", "pending", "pending_bytes", "held", "catching_up",
                 "closed", "dropped", "max_pending", "_waiter", "task", "held_bytes", "replay_again",
                 "transport", "chunked", "_wake_receive", "session_id")

    def __init__(self, story_id: int, last_id: int, max_pending: int, audience: Audience = Audience.readers) -> None:
        self.story_id = story_id
        self.audience = audience  # the newsroom also gets newsroom-only events (pending posts, who is editing)
        self.last_id = last_id
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.held: list[tuple[int, bytes, bytes]] = []
        self.catching_up = True
        self.closed = False
        self.dropped = False
        self.max_pending = max_pending
        self._waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.held_bytes = 0
        self.replay_again = False
        self.transport: asyncio.WriteTransport | None = None  # set when the stream goes direct
        self.chunked = False  # direct writes carry HTTP/1.1 chunk framing
        self._wake_receive: Callable[[], None] | None = None  # direct: wakes the stream's task
        self.session_id: str | None = None  # newsroom: the sign-in session it was opened with

    def deliver(self, event_id: int, frame: bytes, public: bool = True, chunk: bytes = b"") -> None:
        """`frame` is the event; `chunk` the same, framed as one HTTP/1.1 chunk."""
        if self.closed or (not public and self.audience is Audience.readers):
            return  # an ended stream (its story back to draft) gets nothing more, not even held
        if self.catching_up:
            # Held aside during the replay. Too much of it is no reason to drop a reader that
            # keeps up: forget it and replay once more from the log, which has it all.
            self.held.append((event_id, frame, chunk))
            self.held_bytes += len(frame)
            if self.held_bytes > self.max_pending:
                self.held.clear()
                self.held_bytes = 0
                self.replay_again = True
        elif event_id > self.last_id:
            self.last_id = event_id
            if self.transport is not None:
                self.write(chunk if self.chunked else frame)
            else:
                self.queue_frame(frame)

    def write(self, data: bytes) -> None:
        """Direct: onto the reader's socket now, or drop a reader too far behind."""
        transport = self.transport
        assert transport is not None
        if transport.is_closing():  # gone: the heartbeat finds out at the latest
            self.close()
            return
        transport.write(data)
        self.pending_bytes = transport.get_write_buffer_size()  # what the kernel would not take yet
        if self.pending_bytes > self.max_pending:
            self.dropped = True
            transport.abort()  # no flushing to a reader that does not read
            self.close()

    def queue_frame(self, frame: bytes) -> None:
        """A frame for this reader alone (a heartbeat), or one delivered through ASGI."""
        if self.closed:
            return
        if self.transport is not None:
            if self.chunked:
                frame = sse.HEARTBEAT_CHUNK if frame == sse.HEARTBEAT else sse.chunk(frame)
            self.write(frame)
            return
        self.pending.append(frame)
        self._count(len(frame))
        self._wake()

    def _count(self, size: int) -> None:
        self.pending_bytes += size
        if self.pending_bytes > self.max_pending and not self.closed:
            # Too far behind: drop it. It reconnects and catches up from the log.
            self.dropped = True
            self.close()
            if self.task is not None:
                self.task.cancel()  # it may be stuck writing to a reader that does not read

    def release(self, transport: asyncio.WriteTransport | None = None, chunked: bool = False,
                wake_receive: Callable[[], None] | None = None) -> None:
        """End of the replay: send what arrived meanwhile, above the last id sent; with a
        transport, the stream goes direct from here on."""
        self.transport = transport
        self.chunked = chunked
        self._wake_receive = wake_receive
        self.catching_up = False
        held, self.held = self.held, []
        self.pending_bytes = sum(len(f) for f in self.pending)
        for event_id, frame, chunk in held:
            self.deliver(event_id, frame, True, chunk)

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._wake_receive is not None:
            self._wake_receive()

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter
        self._waiter = None

    def take(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        return data


def check_direct_path() -> bool:
    """At start-up: can this uvicorn take the direct path? The path reads attributes of
    uvicorn's httptools protocol that are not its public API (pyproject.toml bounds
    uvicorn to the versions tested); when they are missing, streams fall back to ASGI
    `send`, which works but costs about three times the CPU per delivery, and the log says so."""
    try:
        from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
    except ImportError:
        log.warning("live: httptools is not installed; live streams go through ASGI send (slower)")
        return False
    needed = {"transport", "chunked_encoding", "message_event", "disconnected"}
    missing = needed - set(RequestResponseCycle.__init__.__code__.co_names)
    if missing:
        log.warning("live: this uvicorn's request cycle lacks %s; live streams go through ASGI send "
                    "(slower)", ", ".join(sorted(missing)))
        return False
    return True


def direct_connection(send: Send) -> tuple[asyncio.WriteTransport, bool, Callable[[], None]] | None:
    """When `send` is uvicorn's own (httptools) and nothing wraps it: the reader's transport,
    whether the response is chunked, and what wakes this request's `receive`. None otherwise
    (the stream then runs through ASGI `send`)."""
    cycle = getattr(send, "__self__", None)
    if cycle is None or not type(cycle).__module__.endswith("httptools_impl"):
        return None
    transport = getattr(cycle, "transport", None)
    chunked = getattr(cycle, "chunked_encoding", None)
    message_event = getattr(cycle, "message_event", None)
    if transport is None or chunked is None or message_event is None or getattr(cycle, "disconnected", True):
        return None
    return transport, bool(chunked), message_event.set


def requested_cursor(scope: Scope) -> str | None:
    """Last-Event-ID wins over the query string (a reconnecting browser sends both)."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"last-event-id":
            return value.decode("latin-1").strip()
    query_string: bytes = scope.get("query_string", b"")
    if not query_string:
        return None  # the usual reader: worth not parsing, a wave of them at once
    query = parse_qs(query_string.decode("latin-1"))
    for key in ("last_event_id", "lastEventID"):
        if key in query:
            return query[key][0].strip()
    return None


class Refusal(NamedTuple):
    """A stream not opened. Status 200 with a long `retry:` (overload, database down): the
    browser comes back later, each at its own moment. A problem+json (401, 404): a browser's
    EventSource stops for good."""

    status: int
    problem: bytes = b""
    retry: tuple[int, int] = (0, 0)

    def body(self) -> bytes:
        return sse.retry(*self.retry) if self.status == 200 else self.problem


def _problem(status: int, title: str, detail: str) -> Refusal:
    return Refusal(status, json.dumps({"type": "about:blank", "title": title, "status": status,
                                       "detail": detail}).encode())


DATABASE_DOWN = Refusal(200, retry=(5000, 15000))
FULL = Refusal(200, retry=(5000, 20000))  # this process holds `max_streams` already
NO_STORY = _problem(404, "Not found", "No live story at this address.")
OVER = Refusal(204)  # the coverage has ended and the reader has it all: EventSource stops for good
SIGNED_OUT = _problem(401, "Not signed in", "Sign in to the newsroom first.")


async def admit(live: Live, slug: str, audience: Audience = Audience.readers,
                cursor: str | None = None) -> int | Refusal:
    """The story's id, or why its stream is not opened: one decision for both ways in (the
    ASGI endpoint below and the reader's own connection, `connection.py`). A reader of an
    ended story who has every event is told the stream is over; one who missed some is
    replayed them, and then the stream ends (`ended_after_replay`)."""
    try:
        story_id = await live.lookups.story_id(slug, audience)
    except Exception as exc:  # noqa: BLE001 - the database is down: come back later
        log.warning("live: cannot look up %s (%s)", slug, exc.__class__.__name__)
        return DATABASE_DOWN
    if story_id is None:
        return NO_STORY
    if audience is Audience.readers and story_id in live.lookups.ended:
        try:
            if await live.lookups.caught_up(story_id, cursor):
                return OVER
        except Exception:  # noqa: BLE001 - the database is down: replay when it is back
            return DATABASE_DOWN
    if live.hub.count >= live.max_streams:
        return FULL
    return story_id


def ended_after_replay(live: Live, subscriber: StreamSubscriber) -> bool:
    """An ended story's stream ends once its reader is caught up: nothing more will come."""
    return subscriber.audience is Audience.readers and subscriber.story_id in live.lookups.ended


class LiveEndpoint:
    """The ASGI app behind /stories/{slug}/live, and /newsroom/stories/{slug}/live for the
    newsroom (signed in; drafts, pending posts and who is editing included)."""

    def __init__(self, live: Live, audience: Audience = Audience.readers) -> None:
        self.live = live
        self.audience = audience

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        live = self.live
        slug = scope["path_params"]["slug"]
        session_id = None
        if self.audience is Audience.newsroom:
            session = await asyncio.to_thread(session_from_cookie, Request(scope))
            if session is None:
                return await refuse(send, SIGNED_OUT)
            session_id = session.id  # checked again every heartbeat (session_watch.py)
        story_id = await admit(live, slug, self.audience, requested_cursor(scope))
        if isinstance(story_id, Refusal):
            return await refuse(send, story_id)

        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": sse.retry() + sse.LIVE, "more_body": True})
        direct = direct_connection(send)
        subscriber = StreamSubscriber(story_id, 0, live.max_pending, self.audience)
        subscriber.session_id = session_id
        subscriber.task = asyncio.current_task()
        live.hub.add(subscriber)
        # A direct stream's own task waits in `receive` below; through ASGI, the writing loop
        # needs a watcher beside it to hear of the disconnect.
        watcher = None if direct else asyncio.create_task(watch_disconnect(receive, subscriber))
        try:
            cursor = await self.start_point(requested_cursor(scope), send, story_id)
            if cursor is not None:  # paced by the reader's socket; None: the stream ends
                cursor = await replay(live, subscriber, cursor, send, direct[0] if direct else None)
            subscriber.last_id = cursor if cursor is not None else live.follower.last_id
            if ended_after_replay(live, subscriber):
                subscriber.close()
            if subscriber.closed:
                pass  # ended during the replay: the story is gone for this reader, or the reader left
            elif direct:
                subscriber.release(*direct)
                # The hub writes; this task sleeps in `receive` until the reader leaves (a
                # disconnect) or the stream is ended here (close() wakes it).
                while not subscriber.closed:
                    if (await receive())["type"] == "http.disconnect":
                        subscriber.close()
            else:
                subscriber.release()
                while True:
                    if subscriber.pending:
                        await send({"type": "http.response.body", "body": subscriber.take(), "more_body": True})
                    elif subscriber.closed:
                        break
                    else:
                        await subscriber.wait()
        except asyncio.CancelledError:
            if not subscriber.dropped:
                raise
        except Exception as exc:  # noqa: BLE001 - the replay failed (database down): reconnect
            log.warning("live: stream of %s ended (%s)", slug, exc.__class__.__name__)
        finally:
            live.hub.remove(subscriber)
            if watcher is not None:
                watcher.cancel()
        if not subscriber.dropped:
            await finish(live, subscriber, send, direct[0] if direct else None)

    async def start_point(self, requested: str | None, send: Send, story_id: int) -> int | None:
        """The id to replay after, or None to start from now (sending `reset` if asked)."""
        if requested is None or requested == "":
            return None
        live = self.live
        reason = None
        cursor = sse.cursor_id(requested)
        if cursor is None:
            reason = "unreadable"
        else:
            # A reader from another node may be a moment ahead of this one's follower: wait for
            # it (one read of the log for all of them) before asking the database.
            if (cursor > live.follower.last_id and not await live.follower.reach(cursor, REACH_SECONDS)
                    and cursor > await live.lookups.newest_id()):
                reason = "unknown"  # from the future: another database, or a restored backup
            elif (cursor and cursor < await live.lookups.oldest_id() - 1
                  and cursor < await live.lookups.story_last_id(story_id, self.audience)):
                reason = "expired"  # the story changed since, and the log no longer goes back that far
            else:
                return cursor
        now = max(live.follower.last_id, await live.lookups.newest_id())
        await send({"type": "http.response.body", "body": sse.reset(now, reason), "more_body": True})
        return now


async def watch_disconnect(receive: Receive, subscriber: StreamSubscriber) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            subscriber.close()
            return


async def refuse(send: Send, refusal: Refusal) -> None:
    if refusal.status == 200:
        headers = HEADERS
    else:
        headers = [(b"content-type", b"application/problem+json")] if refusal.problem else []
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body(), "more_body": False})
