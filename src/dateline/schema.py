"""The database tables. Alembic migrations under `migrations/` create and change them.

The `events` table is the single truth for everything that happens to a story: each change
writes its row here in the same transaction as the change itself.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect

# Big integers on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(120), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # reporter | editor | admin
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(120), nullable=False),
    # sha256 of the token: a stolen database does not hand out working tokens.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # The token's first characters, to recognise it by in listings (NULL: made before 0006).
    Column("prefix", String(16)),
    Column("last_used_at", UTCDateTime),  # written at most hourly
)

stories = Table(
    "stories",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(80), nullable=False, unique=True),
    Column("headline", String(200), nullable=False),
    Column("dateline", String(80), nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    # draft | scheduled | live | ended. SQLite keeps any length whatever the declared width,
    # and widening it there would rebuild the table (and drop its search triggers).
    Column("status", String(16).with_variant(String(8), "sqlite"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Id of the newest event of this story: the validator for cached pages and feeds.
    Column("last_event_id", Id, nullable=False, default=0),
    # Reporters' posts wait for an editor's approval before readers see them.
    Column("requires_approval", Boolean, nullable=False, default=False, server_default=false()),
    # Its life: when coverage is to begin (scheduled), when it began (first live) and ended,
    # and what the desk said when it ended.
    Column("starts_at", UTCDateTime),
    Column("coverage_started_at", UTCDateTime),
    Column("coverage_ended_at", UTCDateTime),
    Column("closing_summary", Text, nullable=False, default="", server_default=""),
    # "What we know": the established facts, a JSON list of lines, and when they last changed.
    Column("facts", Text, nullable=False, default="[]", server_default="[]"),
    Column("facts_updated_at", UTCDateTime),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # text | quote | image | embed
    Column("body", Text, nullable=False),
    Column("html", Text, nullable=False),
    # The kind's own fields (speaker, caption, url...), as JSON text.
    Column("fields", Text, nullable=False, default="{}"),
    Column("author_id", Id, ForeignKey("users.id"), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("pinned", Boolean, nullable=False, default=False),
    Column("key_event", Boolean, nullable=False, default=False),
    Column("deleted_at", UTCDateTime),  # a tombstone: the row stays, readers no longer see it
    # published, or pending an editor's approval (readers see only published entries)
    Column("status", String(10), nullable=False, default="published", server_default="published"),
    # An edit waiting for an editor's approval (its revision in entry_revisions); readers keep
    # seeing the approved copy until then.
    Column("proposed_revision", Integer),
    # Updates are read in publication order (an approved post takes its place when approved,
    # not when it was written), with the id to break ties.
    Index("ix_entries_story_published", "story_id", "deleted_at", "published_at", "id"),
)
# Pinned and key-event updates are few: small partial indexes find them without scanning a
# story of 10,000 updates.
for _flag in ("pinned", "key_event"):
    Index(
        # The same columns as ix_entries_story_published, so the planner sees it is narrower.
        f"ix_entries_{_flag}", entries.c.story_id, entries.c.deleted_at, entries.c.published_at, entries.c.id,
        sqlite_where=entries.c[_flag].is_(True), postgresql_where=entries.c[_flag].is_(True),
    )

entry_revisions = Table(
    "entry_revisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("edited_by", Id, ForeignKey("users.id"), nullable=False),
    Column("edited_at", UTCDateTime, nullable=False),
    UniqueConstraint("entry_id", "revision", name="uq_entry_revisions_entry_revision"),
)

# Live figures: results tables, counters and competing estimates at the top of a story,
# updated in place. `data` is what the desk sent, checked and with shares computed (JSON);
# `html` the block as every surface shows it, rendered once per change, as entries are.
figure_blocks = Table(
    "figure_blocks",
    metadata,
    Column("id", Id, primary_key=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(12), nullable=False),  # results | counter | comparison
    Column("title", String(200), nullable=False),
    Column("data", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("key_event", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    Index("ix_figure_blocks_story_id", "story_id", "deleted_at", "id"),
)

# Every version of a block's figures: its history, and the earlier value a correction shows.
figure_revisions = Table(
    "figure_revisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("block_id", Id, ForeignKey("figure_blocks.id", ondelete="CASCADE"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("correction", Text, nullable=False, default=""),  # non-empty: this version corrects the one before
    Column("edited_by", Id, ForeignKey("users.id"), nullable=False),
    Column("edited_at", UTCDateTime, nullable=False),
    UniqueConstraint("block_id", "revision", name="uq_figure_revisions_block_revision"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("entry_id", Id),
    # The payload exactly as the API returns the entry or story, encoded once at write time.
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_events_story_id_id", "story_id", "id"),
    # AUTOINCREMENT: SQLite must never hand out an id again, even after the newest row is gone.
    sqlite_autoincrement=True,
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # sha256 of the cookie's token
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", String(64), nullable=False, default=""),
    Column("user_agent", String(200), nullable=False, default=""),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", String(64), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
    Index("ix_login_failures_ip_at", "ip", "at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


push_keys = Table(
    "push_keys",
    metadata,
    Column("id", Id, primary_key=True),
    # The VAPID key pair: the private key as PKCS#8 PEM, the public key as browsers want it.
    Column("private_pem", Text, nullable=False),
    Column("public_key", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("endpoint", String(2048), nullable=False),
    Column("p256dh", String(100), nullable=False),
    Column("auth", String(40), nullable=False),
    # The story followed, or NULL for breaking news site-wide.
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE")),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_push_subscriptions_story_id_id", "story_id", "id"),
    # By endpoint alone (a browser unsubscribing), and by endpoint and story: whether a
    # site-wide follower follows the story too, one probe for each (push/recipients.py).
    Index("ix_push_subscriptions_endpoint_story_id", "endpoint", "story_id"),
)

# The push outbox: one row a notification, written with its entry in one transaction. The
# sender walks the subscriptions in id order up to `last_subscription_id` (those there when it
# was written), so a restart resumes at `cursor` and a new subscriber gets only later ones.
push_notifications = Table(
    "push_notifications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="SET NULL")),
    Column("block_id", Id),  # or the live figures block it tells of (migration 0012)
    Column("payload", Text, nullable=False),  # the JSON every subscriber's message carries
    Column("topic", String(32), nullable=False),  # RFC 8030: a newer one replaces an undelivered one
    Column("urgency", String(8), nullable=False),
    Column("ttl", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("last_subscription_id", Id, nullable=False),
    Column("cursor", Id, nullable=False, default=0),
    Column("sent", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("removed", Integer, nullable=False, default=0),  # the push service said the subscription is gone
    Column("last_error", Text),
    Column("finished_at", UTCDateTime),
    Index("ix_push_notifications_story_id", "story_id", "id"),
    Index("ix_push_notifications_finished_at", "finished_at"),
)

# Deliveries in flight or waiting for a retry; a delivery done or failed leaves no row. A
# `sending` row belongs to one server process until `not_before` (its lease, renewed while it
# waits for answers); one still there after that is from a crashed process and is sent again.
push_deliveries = Table(
    "push_deliveries",
    metadata,
    Column("notification_id", Id, ForeignKey("push_notifications.id", ondelete="CASCADE"), primary_key=True),
    Column("subscription_id", Id, ForeignKey("push_subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(8), nullable=False),  # sending | retry
    Column("owner", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", UTCDateTime),
    Column("last_error", Text),
    # The deliveries due: a sender's look for work and its claim read only those, however
    # many wait for a later retry (a whole fan-out, when a push service throttles it).
    Index("ix_push_deliveries_due", "notification_id", "not_before"),
)

# Uploaded photos, each variant one row: every node serves what any node stored, and the
# database's backup holds them too (docs/operations.md). Names never change once written.
media = Table(
    "media",
    metadata,
    Column("name", String(64), primary_key=True),  # <key>-<width>x<height>.<jpg|png>
    Column("content_type", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Fixed-window counters shared by every process and node (push subscription changes per
# address, say): a key, the window it counts in, and the hits so far.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("hits", Integer, nullable=False),
    Index("ix_rate_counters_window_start", "window_start"),
)
