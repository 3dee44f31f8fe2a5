"""The latest events of every story, kept by each server process for readers who resume.

When a node dies, all its readers reconnect to the others at once, each with `Last-Event-ID`
a few seconds old. Replayed from the database that is one query (or more) per reader: tens of
thousands in a second. Instead each process keeps the events its follower handed out lately,
the very bytes the readers were sent, and a reader whose cursor falls inside that window is
replayed from memory, with no query at all.

The window is exact, or it is not used. For each story it knows a `floor`: every event of the
story that readers may see above it is held, as the log's replay would give it now (the
events of an entry deleted since are taken out, its `entry.deleted` stays; nothing goes out of
a story back in draft). A cursor below the floor replays from the database, as before. It is
for readers only: the newsroom's few streams replay from the log, and its "who is editing"
events, many and short-lived, take no room here. The window holds at most `DATELINE_LIVE_WINDOW_EVENTS` events and
`DATELINE_LIVE_WINDOW_BYTES` bytes over all stories, the oldest let go first; at start-up it
is filled with the newest of the log, so a node started in the middle of a storm has it too.
"""

from __future__ import annotations

from collections import deque

from ..stories.events import Event
from ..vocabulary import ENTRY_DELETED, ENTRY_RESTORED, PUBLIC_STATUSES, Audience

OVERHEAD_BYTES = 120  # what one held event costs beside its frame (object, deque slots)


class Held:
    __slots__ = ("id", "story_id", "entry_id", "frame", "gone")

    def __init__(self, event: Event, frame: bytes) -> None:
        self.id = event.id
        self.story_id = event.story_id
        self.entry_id = event.entry_id
        self.frame = frame
        self.gone = False  # its entry was deleted since: the replay leaves it out


class StoryWindow:
    __slots__ = ("floor", "held", "hidden")

    def __init__(self, floor: int) -> None:
        self.floor = floor  # every event of the story above this id is in `held`
        self.held: deque[Held] = deque()
        self.hidden = False  # back in draft: readers may no longer follow it


class RecentEvents:
    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.stories: dict[int, StoryWindow] = {}
        self.order: deque[Held] = deque()  # oldest first, over all stories: the eviction order
        self.size = 0
        self.start = 0  # the window has every event above this id (until it lets them go)
        self.served = 0  # readers' replay batches answered from memory (/healthz)...
        self.missed = 0  # ...and sent to the log, their cursor being older than the window

    @property
    def enabled(self) -> bool:
        return self.max_events > 0 and self.max_bytes > 0

    def begin(self, after: int) -> None:
        """The follower hands over every event above `after` from now on."""
        self.stories.clear()
        self.order.clear()
        self.size = 0
        self.start = after

    def add(self, event: Event, frame: bytes, story_status: str | None = None) -> None:
        """The follower's newest event (in id order), with its SSE frame; a story event
        comes with the story's status."""
        if not self.enabled:
            return
        window = self.stories.get(event.story_id)
        if window is None:
            window = self.stories[event.story_id] = StoryWindow(self.start)
        if story_status is not None:
            window.hidden = story_status not in PUBLIC_STATUSES
        if not event.public:
            return  # the newsroom's alone: its streams replay from the log
        if event.type == ENTRY_DELETED and event.entry_id is not None:
            for held in window.held:
                if held.entry_id == event.entry_id and not held.gone:
                    self._let_go(held)
        if event.type == ENTRY_RESTORED:
            # The log's replay brings the restored entry's earlier events back, which the
            # window let go of: a cursor from before the restore is answered by the log.
            window.floor = max(window.floor, event.id - 1)
        held = Held(event, frame)
        window.held.append(held)
        self.order.append(held)
        self.size += len(frame) + OVERHEAD_BYTES
        while self.order and (len(self.order) > self.max_events or self.size > self.max_bytes):
            oldest = self.order.popleft()
            story = self.stories[oldest.story_id]
            story.held.popleft()  # the same one: both are in id order
            story.floor = max(story.floor, oldest.id)
            if not oldest.gone:
                self._let_go(oldest)

    def _let_go(self, held: Held) -> None:
        held.gone = True
        self.size -= len(held.frame) + OVERHEAD_BYTES
        held.frame = b""

    def hides(self, story_id: int, audience: Audience) -> bool:
        """The story went back to draft after this reader came in: its stream ends."""
        window = self.stories.get(story_id)
        return audience is Audience.readers and window is not None and window.hidden

    def covers(self, story_id: int, after: int, audience: Audience = Audience.readers) -> bool:
        """Whether the window holds every event of the story above `after` for this audience."""
        window = self.stories.get(story_id)
        return (self.enabled and audience is Audience.readers
                and after >= (window.floor if window is not None else self.start))

    def after(self, story_id: int, after: int, audience: Audience, max_bytes: int,
              peek: bool = False) -> tuple[list[Held], bool] | None:
        """The story's events above `after`, at most about `max_bytes` (one at least), and
        whether more follow; None when the window does not reach back that far, or the reader
        is the newsroom (the replay then reads the log). Counted as served or missed, unless
        the caller only looks (`peek`) and counts what it does with the answer."""
        if not self.covers(story_id, after, audience):
            if not peek:
                self.missed += 1
            return None
        if not peek:
            self.served += 1
        window = self.stories.get(story_id)
        if window is None:
            return [], False  # nothing of the story since the window began
        tail: list[Held] = []
        for held in reversed(window.held):  # readers resume near the end
            if held.id <= after:
                break
            tail.append(held)
        found: list[Held] = []
        size = 0
        for held in reversed(tail):
            if held.gone:
                continue
            if size >= max_bytes:
                return found, True
            found.append(held)
            size += len(held.frame)
        return found, False
