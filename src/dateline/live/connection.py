"""A reader's stream on a connection of its own: no ASGI, no task once it is live.

A breaking story holds a hundred thousand readers' connections open for hours, and almost all
of that time each one waits. What a waiting reader costs is what its connection keeps. Through
ASGI that is uvicorn's protocol and its HTTP parser, the request's scope and headers, a task
asleep in `receive()` and its chain of coroutine frames: about 11 KB a reader. Here, once the
request head of `GET /stories/{slug}/live` has been read (`web/server.py` sees it first), the
socket is handed to a `ReaderConnection`: one small object that is at once the asyncio
protocol of the socket and the hub's subscriber. The request's headers are read for the two
things a stream needs (the cursor; nothing else), then dropped.

A task runs only while there is something to wait for: the story's lookup, the replay of
what the reader missed (the same `start_point` and `replay` as the ASGI stream, writing
through `send` below, paced by the socket). A new reader of a story already looked up has
neither, and `open_at_once` opens its stream with no task; nor has a reader a few seconds
behind whose missed events this process holds in its window (`resume_at_once`), the usual
reader of a reconnect wave. Then the hub writes each event's chunk-framed bytes to the socket,
and nothing else of the reader stays in memory but this object. When the reader leaves,
`connection_lost` takes it out of the hub.

The newsroom's stream, HEAD, a stream asked on a connection kept alive from an earlier request,
and servers other than `dateline serve` go through ASGI (`live/stream.py`): same bytes, same
guarantees, more memory and CPU a reader.
"""

from __future__ import annotations

import asyncio
import logging
import random
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.types import Message

from ..vocabulary import Audience
from . import sse
from .replay import batch_bytes, replay
from .stream import HEADERS, Refusal, StreamSubscriber, admit, ended_after_replay, requested_cursor

if TYPE_CHECKING:
    from . import Live

log = logging.getLogger("dateline.live")
HEAD = b"HTTP/1.1 200 OK\r\n" + b"".join(b"%s: %s\r\n" % pair for pair in HEADERS) + b"transfer-encoding: chunked\r\n"
END = b"0\r\n\r\n"


# The stream's head and first comment, with one of these reconnection delays (`sse.retry`'s
# spread, in steps of 10 ms), made once: a wave of readers is told them at no cost each.
OPENINGS = [HEAD + b"\r\n" + sse.chunk(sse.retry_exactly(ms) + sse.LIVE)
            for ms in range(sse.RETRY_MS[0], sse.RETRY_MS[1] + 1, 10)]


def opening() -> bytes:
    """The stream's head and first comment, with this reader's own reconnection delay."""
    return random.choice(OPENINGS)  # noqa: S311 - jitter, not a secret


def raw(refusal: Refusal) -> bytes:
    """A refusal as the whole HTTP/1.1 answer, written at once before the socket closes."""
    body = refusal.body()
    if refusal.status == 200:
        return HEAD + b"\r\n" + sse.chunk(body) + END
    if not body:  # the stream is over (204): no body, and so no length either
        return b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\n"
            b"x-content-type-options: nosniff\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%b"
            % (refusal.status, HTTPStatus(refusal.status).phrase.encode(), len(body), body))


class ReaderConnection(StreamSubscriber, asyncio.Protocol):
    """The socket's protocol and the hub's subscriber, for one reader of one story."""

    __slots__ = ("live", "socket", "paused", "drains", "connections", "ended")

    def __init__(self, live: Live, transport: asyncio.Transport, connections: set[Any]) -> None:
        super().__init__(0, 0, live.max_pending)
        self.live = live
        self.socket = transport
        self.paused = False  # the socket's buffer is over its high-water mark
        self.drains: list[asyncio.Future[None]] = []  # replay writes waiting for it to drain
        self.connections = connections  # uvicorn's: a shutdown closes us too (`shutdown`)
        self.ended = False

    # --- the socket ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        pass  # an event stream's client sends nothing more; whatever it sends is not kept

    def eof_received(self) -> bool:
        return False  # half-closed by the reader: it is gone, close our side too

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._drained()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.live.hub.remove(self)
        self.paused = False
        self._drained()
        StreamSubscriber.close(self)  # a replay in progress sees it and stops
        self.ended = True

    def shutdown(self) -> None:
        """uvicorn is stopping: end the stream; the reader comes back (to another node)."""
        self.close()

    def _drained(self) -> None:
        drains, self.drains = self.drains, []
        for waiter in drains:
            if not waiter.done():
                waiter.set_result(None)

    # --- what the replay writes through (ASGI `send`'s meaning, over the socket) -------------

    async def send(self, message: Message) -> None:
        """As uvicorn's `send`: first wait until the socket has taken what was written (so an
        empty body just waits), then write a body chunk, or end the response."""
        if self.paused:
            waiter = asyncio.get_running_loop().create_future()
            self.drains.append(waiter)
            await waiter
        if self.socket.is_closing():
            return
        body: bytes = message.get("body", b"")
        if body:
            self.socket.write(sse.chunk(body))
        if not message.get("more_body", False):
            self.end()

    # --- the stream's life ---------------------------------------------------------------

    def close(self) -> None:
        """Ended from here (story back to draft, shutdown) or dropped: once live, nothing
        else will end the response, so it ends now; during the replay its task does."""
        StreamSubscriber.close(self)
        if self.transport is not None:  # live: no task left to do it
            self.end()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self.live.hub.remove(self)
        if not self.socket.is_closing():
            if not self.dropped:
                self.socket.write(END)
            self.socket.close()

    async def run(self, slug: str, cursor: str | None) -> None:
        """From the story's lookup to the end of the replay; then the hub takes over."""
        live = self.live
        story_id = await admit(live, slug, cursor=cursor)
        if isinstance(story_id, Refusal):
            return self.answer(raw(story_id))
        if self.socket.is_closing():
            return
        self._open(story_id)
        try:
            last = await live.endpoint.start_point(cursor, self.send, story_id)
            if last is not None:
                last = await replay(live, self, last, self.send, self.socket)
            self.last_id = last if last is not None else live.follower.last_id
            if self.closed or ended_after_replay(live, self):
                self.end()  # ended during the replay, or the reader left
            else:
                self.release(self.socket, chunked=True)  # direct from here on: the task ends
        except asyncio.CancelledError:
            self.end()
            if not self.dropped:
                raise
        except Exception as exc:  # noqa: BLE001 - the replay failed (database down): reconnect
            log.warning("live: stream of %s ended (%s)", slug, exc.__class__.__name__)
            self.end()

    def _known_story(self, slug: str) -> int | None:
        """The story's id when nothing needs deciding: looked up already, live, room in the
        hub, and the reader still there. None: a lookup, a refusal, the end of the story, or
        gone, which `run` decides."""
        live = self.live
        story_id = live.lookups.cached_story_id(slug)
        if (story_id is None or story_id in live.lookups.ended or live.hub.count >= live.max_streams
                or self.socket.is_closing()):
            return None
        return story_id

    def open_at_once(self, slug: str) -> bool:
        """`run` for the usual reader, without its task: no cursor, and the story known and
        live, so there is nothing to wait for. A wave of fresh readers costs no task each."""
        story_id = self._known_story(slug)
        if story_id is None:
            return False
        self._open(story_id)
        self.last_id = self.live.follower.last_id
        self.release(self.socket, chunked=True)
        return True

    def resume_at_once(self, slug: str, cursor: str) -> bool:
        """`run` for a reader a few seconds behind, without its task: the story known and live,
        and all it missed in this process's window and small enough for one write (at most
        half its buffer). The follower must be settled (it has read all this process has heard
        of, as `follower.fresh` waits for), and the cursor one it has read and the log still
        holds (`start_point` decides any other). The head and the replay go out in one write,
        and the hub writes what follows. A reconnect wave, every reader resuming from a
        recent id, then costs no task and no wait per reader."""
        live = self.live
        story_id = self._known_story(slug)
        after = sse.cursor_id(cursor)
        if story_id is None or after is None or not live.follower.settled:
            return False
        oldest = live.lookups.known_oldest_id()
        if (after > live.follower.last_id or oldest is None or (after and after < oldest - 1)
                or live.window.hides(story_id, Audience.readers)):
            return False
        found = live.window.after(story_id, after, Audience.readers, batch_bytes(live), peek=True)
        if found is None or found[1]:
            return False  # older than the window, or more than one write: the replay paces it
        held = found[0]
        live.window.served += 1
        missed = b"".join(h.frame for h in held)
        self.story_id = story_id
        self.socket.write(opening() + sse.chunk(missed) if missed else opening())
        live.hub.add(self)
        self.last_id = held[-1].id if held else after
        self.release(self.socket, chunked=True)
        return True

    def _open(self, story_id: int) -> None:
        """The response's head and first comment; from here the hub holds what it publishes."""
        self.story_id = story_id
        self.socket.write(opening())
        self.live.hub.add(self)

    def answer(self, response: bytes) -> None:
        """A whole answer (a refusal, or come back later), then close."""
        self.ended = True
        if not self.socket.is_closing():
            self.socket.write(response)
            self.socket.close()


def take_over(live: Live, transport: asyncio.Transport, server_state: Any, slug: str,
              headers: list[tuple[bytes, bytes]], query_string: bytes, paused: bool = False) -> ReaderConnection:
    """The connection is a reader's stream from here on (called by `web/server.py` once the
    head of its request is in): its socket gets a protocol of its own, and its task starts."""
    connection = ReaderConnection(live, transport, server_state.connections)
    connection.paused = paused  # still writing out an earlier answer on this connection
    transport.set_protocol(connection)
    server_state.connections.add(connection)
    cursor = requested_cursor({"headers": headers, "query_string": query_string})
    opened = connection.open_at_once(slug) if cursor is None else connection.resume_at_once(slug, cursor)
    if opened:
        return connection
    task = asyncio.get_running_loop().create_task(connection.run(slug, cursor))
    server_state.tasks.add(task)
    task.add_done_callback(server_state.tasks.discard)
    return connection
