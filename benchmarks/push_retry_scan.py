"""What a push sender reads to find work while a whole fan-out waits for its retry.

    python benchmarks/push_retry_scan.py [--deliveries 100000] [--postgres] [--quick]

A push service that throttles a fan-out (429 with Retry-After) leaves every delivery in the
outbox, due later. Each commit wakes the senders to look for work, so neither the look
(`outbox.has_work`) nor the claim after it may read them all. This times both, and a lease
renewal, with none due (best of 20 each); then drops the due index (ix_push_deliveries_due)
and times them again, so the run shows what the index saves.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import scratch_database
from sqlalchemy import Connection, insert, select, text, update

from dateline.db import Database
from dateline.push import outbox
from dateline.schema import push_deliveries, push_notifications, push_subscriptions
from dateline.stories import story as stories

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=timezone.utc)
REPEATS = 20
CHUNK = 10_000
DATABASE = "dateline_bench_retry_scan"


def fill(db: Database, deliveries: int) -> None:
    """A story followed by `deliveries` browsers, notified, every delivery answered 429 and
    due again in five minutes."""
    with db.write() as conn:
        story = stories.create_story(conn, headline="Count night in Dravonne", status="live")
        for start in range(0, deliveries, CHUNK):
            conn.execute(insert(push_subscriptions), [
                {"endpoint": f"https://push.example/{i}", "story_id": story.id, "p256dh": "k", "auth": "a",
                 "created_at": NOW} for i in range(start, min(start + CHUNK, deliveries))])
        outbox.enqueue_figures(conn, story, {"id": 1, "title": "Turnout", "updated_at": NOW.isoformat()},
                               "61%", 3600, NOW)
        note = conn.execute(select(push_notifications.c.id, push_notifications.c.last_subscription_id)).one()
        conn.execute(update(push_notifications).values(cursor=note.last_subscription_id))
        ids = conn.execute(select(push_subscriptions.c.id).order_by(push_subscriptions.c.id)).scalars().all()
        for start in range(0, len(ids), CHUNK):
            conn.execute(insert(push_deliveries), [
                {"notification_id": note.id, "subscription_id": id_, "state": "retry", "attempts": 1,
                 "not_before": NOW + timedelta(minutes=5)} for id_ in ids[start:start + CHUNK]])


def best_ms(db: Database, action: Callable[[Connection], object]) -> float:
    """The fastest of REPEATS runs of `action`, each in a transaction rolled back after."""
    best = float("inf")
    with db.engine.connect() as conn:
        for _ in range(REPEATS):
            started = time.perf_counter()
            action(conn)
            best = min(best, time.perf_counter() - started)
            conn.rollback()
    return best * 1000


def look(conn: Connection) -> None:
    assert outbox.has_work(conn, NOW) is False, "nothing should be due"


def claim(conn: Connection) -> None:
    assert outbox.claim(conn, "bench:1:0", 500, 30, NOW) is None, "nothing should be claimable"


def renew(conn: Connection) -> None:
    outbox.renew(conn, "bench:1:0", 30, NOW)


def measure(db: Database) -> list[float]:
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE push_deliveries"))
            conn.commit()
    return [best_ms(db, action) for action in (look, claim, renew)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, help="deliveries waiting (default 100,000; 10,000 with --quick)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (a scratch database) instead of SQLite")
    parser.add_argument("--quick", action="store_true", help="a run of a few seconds")
    args = parser.parse_args()
    deliveries = args.deliveries if args.deliveries is not None else 10_000 if args.quick else 100_000
    if deliveries < 1:
        parser.error("--deliveries must be at least 1")

    with tempfile.TemporaryDirectory() as scratch:
        url = scratch_database.create(DATABASE) if args.postgres else f"sqlite:///{Path(scratch) / 'outbox.db'}"
        db = Database(url)
        try:
            db.migrate()
            fill(db, deliveries)
            indexed = measure(db)
            with db.engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_push_deliveries_due"))
            bare = measure(db)
        finally:
            db.engine.dispose()
            if args.postgres:
                scratch_database.drop(DATABASE)

    name = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{deliveries:,} deliveries waiting for a retry, none due ({name}), best of {REPEATS}")
    print(f"{'':24}{'with the due index':>20}{'without it':>14}")
    for label, with_it, without in zip(("a look for work", "a claim", "a lease renewal"), indexed, bare,
                                       strict=True):
        print(f"{label:24}{with_it:>17.2f} ms{without:>11.2f} ms")


if __name__ == "__main__":
    main()
