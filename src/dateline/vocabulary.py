"""The words every part of Dateline shares, each defined once.

Entry kinds and their fields, story statuses, event types, who may see what, the slug's
shape and the validators' formats. The API's pydantic models, and so the OpenAPI document,
are derived from these, as are the domain's checks, the live stream and the pages.
"""

from __future__ import annotations

import enum
import re
from typing import Final, Literal, get_args

# --- stories --------------------------------------------------------------------------------

# draft (the newsroom's alone) → scheduled (announced, "coverage begins at…") → live → ended
# (readable for ever; it can be reopened, live again).
StoryStatus = Literal["draft", "scheduled", "live", "ended"]
STORY_STATUSES: Final[tuple[StoryStatus, ...]] = get_args(StoryStatus)
PUBLIC_STATUSES: Final[tuple[StoryStatus, ...]] = ("scheduled", "live", "ended")  # readers see these

SLUG_REGEX: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SLUG_PATTERN: Final = re.compile(SLUG_REGEX)
MAX_SLUG: Final = 80

# --- entries --------------------------------------------------------------------------------

EntryKind = Literal["text", "quote", "image", "embed"]
ENTRY_KINDS: Final[tuple[EntryKind, ...]] = get_args(EntryKind)
EntryStatus = Literal["published", "pending"]  # pending: waiting for an editor's approval

# Each kind's own fields, beside `body`. `correction` is a public note under the update.
KIND_FIELDS: Final[dict[EntryKind, tuple[str, ...]]] = {
    "text": ("correction",),
    "quote": ("speaker", "role", "correction"),
    "image": ("image_url", "caption", "credit", "alt", "correction"),
    "embed": ("url", "correction"),
}
ALL_KIND_FIELDS: Final = ("speaker", "role", "image_url", "caption", "credit", "alt", "url", "correction")
BODY_REQUIRED: Final[frozenset[EntryKind]] = frozenset({"text", "quote"})
REQUIRED_FIELDS: Final[dict[EntryKind, tuple[str, ...]]] = {
    "text": (), "quote": ("speaker",), "image": ("image_url", "alt"), "embed": ("url",),
}
ENTRY_FLAGS: Final = ("pinned", "key_event")

# --- the event log --------------------------------------------------------------------------

EventType = Literal[
    "entry.created", "entry.updated", "entry.deleted", "entry.restored", "story.created", "story.updated",
    "story.facts", "block.updated", "block.deleted", "newsroom.submitted", "newsroom.editing",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
ENTRY_CREATED: Final = "entry.created"
ENTRY_UPDATED: Final = "entry.updated"
ENTRY_DELETED: Final = "entry.deleted"
ENTRY_RESTORED: Final = "entry.restored"  # a deleted entry put back (the desk's undo): back in its place
STORY_CREATED: Final = "story.created"
STORY_UPDATED: Final = "story.updated"
STORY_FACTS: Final = "story.facts"  # the "What we know" list changed
BLOCK_UPDATED: Final = "block.updated"  # a live figures block, new or changed: the block whole
BLOCK_DELETED: Final = "block.deleted"
MAX_FACTS: Final = 12  # lines in a story's "What we know"
MAX_FACT: Final = 300  # characters in one of them
NEWSROOM_PREFIX: Final = "newsroom."  # events for the newsroom alone, never sent to readers
ENTRY_SUBMITTED: Final = "newsroom.submitted"  # a reporter's post waiting for approval, or its edit
EDITING: Final = "newsroom.editing"  # someone has an entry open in the editor


class Audience(enum.Enum):
    """Who is looking, which decides what exists for them: readers see live and ended
    stories and published entries; the newsroom also sees drafts, pending posts and
    newsroom-only events."""

    readers = "readers"
    newsroom = "newsroom"

    @classmethod
    def of(cls, signed_in: bool) -> Audience:
        return cls.newsroom if signed_in else cls.readers


# --- validators and formats -----------------------------------------------------------------


def entry_etag(
    entry_id: int, revision: int, *, pinned: bool = False, key_event: bool = False, pending: bool = False,
    proposed: int | None = None,
) -> str:
    """An entry's ETag, the API's and If-Match's: every change to the entry changes it (its
    content revision, its flags, its approval, an edit waiting for approval)."""
    marks = "p" * pinned + "k" * key_event + "h" * pending
    return f'"e{entry_id}-r{revision}{"-" + marks if marks else ""}{f"-q{proposed}" if proposed else ""}"'


IDEMPOTENCY_KEY_REGEX: Final = r"^[\x21-\x7e]{1,255}$"  # 1 to 255 visible ASCII characters
CURSOR_REGEX: Final = r"^[0-9]{1,18}$"  # page cursors and event ids: digits, within 64 bits
MAX_ID: Final = 2**62  # ids in paths and queries: past it, no such row

# --- delivery between processes -------------------------------------------------------------

# `DATELINE_BROKER` names a broker by a word, or by a URL whose scheme says which.
BrokerKind = Literal["local", "none", "postgresql", "redis", "nats"]
BROKER_KINDS: Final[tuple[BrokerKind, ...]] = get_args(BrokerKind)
BROKER_URL_SCHEMES: Final[dict[str, BrokerKind]] = {
    "redis": "redis", "rediss": "redis", "nats": "nats", "tls": "nats",
    "postgresql": "postgresql", "postgres": "postgresql",
}

# Where uploaded photos are kept: `auto` is the database on PostgreSQL (nodes share it), the
# folder on SQLite (one machine).
MediaStore = Literal["auto", "folder", "database"]
MEDIA_STORES: Final[tuple[MediaStore, ...]] = get_args(MediaStore)

# The browsers' push services: Chrome and most others, Firefox, Safari, Edge.
BROWSER_PUSH_SERVICES: Final = (
    "fcm.googleapis.com", "*.push.services.mozilla.com", "*.push.apple.com", "*.notify.windows.com",
)
