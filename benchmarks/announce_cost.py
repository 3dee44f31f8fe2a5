"""What announcing a post to the other nodes costs, per broker.

    python benchmarks/announce_cost.py                # 3,000 posts per broker
    python benchmarks/announce_cost.py --posts 500

One process, the real `Live` of a server process (follower, hub, broker) on a scratch
PostgreSQL database, and posts written as the API writes them (an entry and its event in one
transaction) one after another from a worker thread, as a burst from the newsroom. For each
broker it reports the commit time per post as the writer sees it (mean and p99: announcing
happens in the writing thread, after the commit), the time `announce()` itself takes in that
thread, and how many messages went out for the burst (announcing is coalesced). `none` is
the baseline: no broker at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import scratch_database  # noqa: E402

from dateline.accounts import users  # noqa: E402
from dateline.config import Settings  # noqa: E402
from dateline.db import Database  # noqa: E402
from dateline.live import Live  # noqa: E402
from dateline.stories import entries, story  # noqa: E402

DATABASE = "dateline_announce"
BROKERS = {
    "none": "none",
    "local": "local",
    "postgresql": "postgresql",
    "redis": os.environ.get("DATELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0") + "?channel=dateline.announce",
    "nats": os.environ.get("DATELINE_TEST_NATS_URL", "nats://127.0.0.1:4222") + "?channel=dateline.announce",
}


async def measure(url: str, broker: str, posts: int, round_: int) -> dict[str, Any]:
    db = Database(url)
    settings = Settings.from_env({}, database_url=url, broker=broker, log_level="warning")
    live = Live(db, settings)
    await live.start()
    announce_ns: list[int] = []
    original = live.broker.announce

    def timed_announce() -> None:  # the writing thread's share of announcing
        started = time.perf_counter_ns()
        original()
        announce_ns.append(time.perf_counter_ns() - started)

    live.broker.announce = timed_announce  # type: ignore[method-assign]
    try:
        with db.write() as conn:
            name = f"bench-{broker.split(':', 1)[0]}-{round_}"
            author = users.create_user(conn, name, "a long password here", users.Role.editor, "Bench")
            slug = f"announce-{broker.split(':', 1)[0]}-{round_}"
            story.create_story(conn, headline="Announce cost", slug=slug, status="live")
        with db.read() as conn:
            target = story.get_story(conn, slug)

        def burst() -> list[int]:
            took = []
            for n in range(posts):
                started = time.perf_counter_ns()
                with db.write() as conn:
                    entries.create_entry(conn, target, author, kind="text", body=f"Update {n}", fields={})
                took.append(time.perf_counter_ns() - started)  # includes the commit listeners
            return took

        cpu = time.process_time()
        took = await asyncio.to_thread(burst)
        await asyncio.sleep(0.5)  # the last message out
        cpu = time.process_time() - cpu # this process: writer, event loop, follower, broker client
        took.sort()
        return {
            "broker": broker.split(":", 1)[0] if "://" in broker else broker,
            "posts": posts,
            "commit_mean_ms": statistics.fmean(took) / 1e6,
            "commit_p99_ms": took[int(len(took) * 0.99) - 1] / 1e6,
            "announce_mean_us": statistics.fmean(announce_ns) / 1e3 if announce_ns else 0.0,
            "cpu_per_post_us": cpu / posts * 1e6,
            "messages": getattr(live.broker, "sent", None),
        }
    finally:
        await live.stop()
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--brokers", default=",".join(BROKERS), help="which, in this order (comma separated)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds over the brokers, in turn (the log grows as it runs; each figure is the "
                             "median of its rounds)")
    args = parser.parse_args(argv)
    url = scratch_database.create(DATABASE)
    try:
        Database(url).migrate()
        rounds: dict[str, list[dict[str, Any]]] = {}
        names = args.brokers.split(",")
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else reversed(names):  # every other round backwards
                rounds.setdefault(name, []).append(asyncio.run(measure(url, BROKERS[name], args.posts, round_)))
        results = [{key: statistics.median(r[key] for r in found) if key not in ("broker", "messages")
                    else found[0][key] for key in found[0]} for found in rounds.values()]
    finally:
        scratch_database.drop(DATABASE)
    print(f"\nAnnouncing: {args.posts} posts in a burst, one writer, PostgreSQL, median of {args.rounds} rounds "
          f"({platform.node()}, {os.cpu_count()} cores)\n")
    print("| broker | commit per post, mean | p99 | announce() in the writing thread | CPU per post, whole process "
          "| messages sent |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        messages = "—" if r["messages"] is None else f"{r['messages']:,}"
        print(f"| {r['broker']} | {r['commit_mean_ms']:.2f} ms | {r['commit_p99_ms']:.2f} ms | "
              f"{r['announce_mean_us']:.1f} µs | {r['cpu_per_post_us']:.0f} µs | {messages} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
