"""Who a notification goes to, batch by batch: the story's followers and the site's, each
browser once; and what a sender reads, which does not grow with the followers, nor with
the deliveries waiting to be retried."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from conftest import Site
from sqlalchemy import Connection, insert, select, text, update
from sqlalchemy.engine import Row

from dateline.db import Database
from dateline.push import outbox
from dateline.schema import push_deliveries, push_notifications, push_subscriptions
from dateline.stories import story as stories

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=timezone.utc)


def followers(db: Database, count: int) -> tuple[Row[Any], set[int]]:
    """A live story and `count` subscriptions, in id order: odd ones follow the story, even
    ones the site; every fourth site follower's browser follows the story too (a later
    subscription of the same endpoint), so it must be notified once, not twice. Returns the
    story and the ids that should be notified."""
    with db.write() as conn:
        story = stories.create_story(conn, headline="Count night in Dravonne", status="live")
        rows = []
        for i in range(count):
            rows.append({"endpoint": f"https://push.example/{i}", "story_id": story.id if i % 2 else None})
            if i % 8 == 0:
                rows.append({"endpoint": f"https://push.example/{i}", "story_id": story.id})
        conn.execute(insert(push_subscriptions), [
            {**row, "p256dh": "k", "auth": "a", "created_at": NOW} for row in rows])
        subs = push_subscriptions.c
        by_id = conn.execute(select(subs.id, subs.endpoint, subs.story_id).order_by(subs.id)).all()
    following = {endpoint for _, endpoint, story_id in by_id if story_id == story.id}
    expected = {id_ for id_, endpoint, story_id in by_id if story_id == story.id or endpoint not in following}
    return story, expected


def queue(db: Database, story: Row[Any]) -> None:
    with db.write() as conn:
        outbox.enqueue_figures(conn, story, {"id": 1, "title": "Turnout", "updated_at": NOW.isoformat()},
                               "61%", 3600, NOW)


def test_each_recipient_is_claimed_once_in_id_order(site: Site) -> None:
    story, expected = followers(site.db, 40)
    queue(site.db, story)
    claimed: list[int] = []
    while True:
        with site.db.write() as conn:
            batch = outbox.claim(conn, "test", 3, 60, NOW)
        if batch is None:
            break
        assert isinstance(batch, outbox.Batch) and len(batch.subscriptions) <= 3
        claimed += [sub.id for sub in batch.subscriptions]
        with site.db.write() as conn:
            outbox.record(conn, "test", batch, {sub.id: outbox.SENT for sub in batch.subscriptions}, NOW)
    assert claimed == sorted(expected), "every story and site follower once, browsers following both once"
    with site.db.read() as conn:
        note = conn.execute(select(push_notifications)).one()
    assert (note.recipients, note.sent, note.finished_at is not None) == (len(expected), len(expected), True)


def work(db: Database, table: str, action: Callable[[Connection], object]) -> int:
    """How much the database does for `action`, in one transaction: SQLite's virtual
    machine steps (in hundreds), or on PostgreSQL the rows of `table` scanned and its index
    entries read (the connection's counts, not yet flushed to the shared statistics). PostgreSQL is measured with
    the statistics its autovacuum keeps: with none at all its plans are guesses, for every
    query."""
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            conn.execute(text(f"ANALYZE {table}"))
            conn.commit()
    with db.write() as conn:
        if db.is_sqlite:
            steps = 0

            def step() -> int:
                nonlocal steps
                steps += 1
                return 0  # go on

            raw = conn.connection.driver_connection
            raw.set_progress_handler(step, 100)  # type: ignore[union-attr]
            try:
                action(conn)
            finally:
                raw.set_progress_handler(None, 0)  # type: ignore[union-attr]
            return steps
        rows_read = text(  # rows scanned, and index entries read (index-only scans fetch no rows)
            "SELECT coalesce((SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = :table), 0)"
            " + coalesce((SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid)) FROM pg_index"
            " WHERE indrelid = CAST(:table AS regclass)), 0)").bindparams(table=table)
        before = conn.execute(rows_read).scalar_one()  # not 0: what the connection did before, unflushed
        action(conn)
        return int(conn.execute(rows_read).scalar_one() - before)


def claims(size: int) -> Callable[[Connection], object]:
    def action(conn: Connection) -> None:
        assert isinstance(outbox.claim(conn, "test", size, 60, NOW), outbox.Batch)
    return action


def empty(db: Database) -> None:
    with db.write() as conn:
        conn.execute(push_deliveries.delete())
        conn.execute(push_subscriptions.delete())
        conn.execute(push_notifications.delete())


def test_a_claims_work_does_not_grow_with_the_followers(site: Site) -> None:
    """A batch of 50 from 1,000 followers and from 10,000: about the same work. Reading
    every follower left, or the story's followers for each batch or each site follower,
    grows with them."""
    costs = []
    for count in (1000, 10_000):
        empty(site.db)
        story, _ = followers(site.db, count)
        queue(site.db, story)
        costs.append(work(site.db, "push_subscriptions", claims(50)))
    small, large = costs
    assert small > 0
    print(f"claim of 50: {small} at 1,000 followers, {large} at 10,000")
    assert large < 2 * small, f"a batch of 50 cost {small} at 1,000 followers and {large} at 10,000"


def test_looking_for_work_does_not_grow_with_the_retries_waiting(site: Site) -> None:
    """A push service throttled a whole fan-out: every delivery waits for its retry, none
    due yet. A sender's look for work and its claim, woken by any commit, read about the
    same at 1,000 such deliveries and at 10,000."""
    costs = []
    for count in (1000, 10_000):
        empty(site.db)
        story, _ = followers(site.db, count)
        queue(site.db, story)
        with site.db.write() as conn:  # every recipient claimed, sent, and answered 429
            ids = conn.execute(select(push_subscriptions.c.id)).scalars().all()
            note = conn.execute(select(push_notifications.c.id)).scalar_one()
            conn.execute(update(push_notifications).values(cursor=max(ids)))
            conn.execute(insert(push_deliveries), [
                {"notification_id": note, "subscription_id": id_, "state": "retry", "attempts": 1,
                 "not_before": NOW + timedelta(minutes=5)} for id_ in ids])

        def look(conn: Connection) -> None:
            assert outbox.has_work(conn, NOW) is False
            assert outbox.claim(conn, "test", 500, 60, NOW) is None

        costs.append(work(site.db, "push_deliveries", look))
    small, large = costs  # on PostgreSQL both may be 0: the index holds nothing due to read
    print(f"a look for work: {small} at 1,000 waiting, {large} at 10,000")
    assert large <= 2 * small + 50, f"a look for work cost {small} at 1,000 waiting and {large} at 10,000"
