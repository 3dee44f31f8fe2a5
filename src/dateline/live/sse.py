"""Server-sent events framing (WHATWG HTML, "server-sent events")."""

from __future__ import annotations

import random

HEARTBEAT = b":\n\n"  # a comment: keeps proxies from closing an idle stream, moves no cursor


def event(event_id: int, type: str, data: str) -> bytes:
    """One event. `data` is JSON; a value with line breaks is split over several data lines."""
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
    else:
        body = f"data: {data}\n"
    return f"id: {event_id}\nevent: {type}\n{body}\n".encode()


def cursor_id(text: str) -> int | None:
    """A reader's `Last-Event-ID` as an id of the log; None when it cannot be one (not ASCII
    digits, or longer than the 18 digits any id of the log has)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def chunk(frame: bytes) -> bytes:
    """`frame` as one HTTP/1.1 chunk, for streams written straight to their socket."""
    return b"%x\r\n%b\r\n" % (len(frame), frame)


HEARTBEAT_CHUNK = chunk(HEARTBEAT)


RETRY_MS = (2000, 6000)  # a stream's reconnection delay, at random between these
LIVE = b": live\n\n"  # the comment that opens a stream, after its delay


def retry(low_ms: int = RETRY_MS[0], high_ms: int = RETRY_MS[1]) -> bytes:
    """A reconnection delay, spread so that a mass disconnect does not come back as one wave."""
    return retry_exactly(random.randint(low_ms, high_ms))  # noqa: S311 - jitter, not a secret


def retry_exactly(ms: int) -> bytes:
    return b"retry: %d\n\n" % ms


def reset(current_id: int, reason: str) -> bytes:
    """Tells the page its cursor is useless (too old, from the future, garbage): reload."""
    return event(current_id, "reset", f'{{"reason":"{reason}"}}')
