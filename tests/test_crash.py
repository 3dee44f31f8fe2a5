"""A post must never be lost or posted twice, even when the server dies mid-burst.

Several clients post as fast as they can to a real `dateline serve` process; the process is
killed with SIGKILL while posts are in flight, then started again on the same database.
Every post that was answered 201 must be there with its id, body and one `entry.created`
event; every post that got no answer, sent again with the same Idempotency-Key, must end up
there exactly once (replayed if it had committed, created if it had not).

Each backend gets a database of its own, set up the way an operator does it: `dateline init`,
`dateline user add`, `dateline token create`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from conftest import PASSWORD, POSTGRES_URL, ServerProcess, missing_service
from dateline.db import Database, normalize_url
from dateline.vocabulary import ENTRY_CREATED
from dateline.schema import entries, events, stories

pytestmark = pytest.mark.slow

CLIENTS = 6
BURST_ANSWERED = 60  # posts answered 201 before the kill
REPORTERS = ("rita", "ron")
SERVE_OPTIONS = ("--workers", "2")  # the kill must take down every process of the server


def dateline(*args: str, stdin: str | None = None) -> str:
    """Run the `dateline` command; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "dateline", *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"dateline {' '.join(args)} failed: {done.stderr}"
    return done.stdout


@dataclass
class Newsroom:
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def newsroom(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Newsroom]:
    """A fresh database of its own, initialised with the CLI, with an editor and two reporters."""
    admin = None
    name = f"dateline_crash_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
    else:
        admin_url = normalize_url(POSTGRES_URL)
        try:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - any failure to connect means "not here"
            missing_service(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.__class__.__name__}")
        url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    try:
        dateline("init", "--database", url)

        def add(user: str, role: str) -> str:
            dateline("user", "add", user, "--role", role, "--password-stdin", "--database", url, stdin=PASSWORD + "\n")
            return dateline("token", "create", user, "--database", url).strip()

        people = {"eve": "editor", **{r: "reporter" for r in REPORTERS}}
        with ThreadPoolExecutor(len(people)) as pool:
            tokens = dict(zip(people, pool.map(add, people, people.values())))
        yield Newsroom(url, tokens)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


@dataclass
class Post:
    reporter: str
    key: str
    body: str
    entry_id: int | None = None  # from the 201 answer
    error: str = ""  # why there was no answer


@dataclass
class Burst:
    answered: list[Post] = field(default_factory=list)
    unanswered: list[Post] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # any answer but 201: a bug during a burst
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(client: httpx.Client, room: Newsroom, slug: str, p: Post) -> httpx.Response:
    return client.post(
        f"/api/v1/stories/{slug}/entries",
        json={"body": p.body},
        headers={**room.auth(p.reporter), "Idempotency-Key": p.key},
    )


def burst_client(n: int, server: ServerProcess, room: Newsroom, slug: str, run: str, burst: Burst) -> None:
    """Posts until the server goes away; the request in flight then is recorded as unanswered."""
    reporter = REPORTERS[n % len(REPORTERS)]
    with httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(5, connect=2)) as client:
        for i in range(100_000):
            p = Post(reporter, f"{run}-{n}-{i}-{uuid.uuid4().hex}", f"Update {i} from client {n} ({run})")
            try:
                response = post(client, room, slug, p)
            except httpx.TransportError as exc:
                p.error = type(exc).__name__
                with burst.lock:
                    burst.unanswered.append(p)
                return
            with burst.lock:
                if response.status_code == 201:
                    p.entry_id = response.json()["id"]
                    burst.answered.append(p)
                else:
                    burst.other.append(f"{response.status_code}: {response.text[:300]}")


def entries_and_events(url: str, story_slug: str) -> tuple[list[tuple[int, str]], dict[int, list[str]]]:
    """(id, body) of every entry of the story; entry id -> the bodies of its entry.created events."""
    db = Database(url)
    try:
        with db.read() as conn:
            story_id = conn.execute(select(stories.c.id).where(stories.c.slug == story_slug)).scalar_one()
            rows = [
                (row.id, row.body)
                for row in conn.execute(select(entries.c.id, entries.c.body).where(entries.c.story_id == story_id))
            ]
            created: dict[int, list[str]] = defaultdict(list)
            for row in conn.execute(
                select(events.c.entry_id, events.c.data).where(
                    events.c.story_id == story_id, events.c.type == ENTRY_CREATED
                )
            ):
                created[row.entry_id].append(json.loads(row.data)["body"])
    finally:
        db.dispose()
    return rows, dict(created)


def test_no_post_is_lost_or_doubled_when_the_server_is_killed(newsroom: Newsroom) -> None:
    run = uuid.uuid4().hex[:8]
    server = ServerProcess(newsroom.url, None, *SERVE_OPTIONS)
    restarted = ServerProcess(newsroom.url, server.port, *SERVE_OPTIONS)
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            created = client.post(
                "/api/v1/stories", json={"headline": f"Crash test {run}", "status": "live"}, headers=newsroom.auth("eve")
            )
            assert created.status_code == 201, created.text
            slug = created.json()["slug"]

        burst = Burst()
        with ThreadPoolExecutor(CLIENTS) as pool:
            clients = [pool.submit(burst_client, n, server, newsroom, slug, run, burst) for n in range(CLIENTS)]
            # Kill once the burst is well under way (every client posting, many answered),
            # however fast this machine is; the deadline only bounds a broken server.
            deadline = time.monotonic() + 60
            while len(burst.answered) < BURST_ANSWERED:
                assert time.monotonic() < deadline, f"only {len(burst.answered)} posts answered in 60 s"
                assert not any(c.done() for c in clients), [c.exception() for c in clients if c.done()]
                time.sleep(0.01)
            server.kill()  # SIGKILL, with posts in flight
            for c in clients:
                c.result(timeout=30)

        assert not burst.other, f"answers other than 201 during the burst: {burst.other[:5]}"
        assert len(burst.answered) >= BURST_ANSWERED, f"only {len(burst.answered)} posts were answered in the burst"
        # Every client ran until the kill cut it off (mid-request, nearly always).
        assert len(burst.unanswered) == CLIENTS

        restarted.start()
        rows, created_events = entries_and_events(newsroom.url, slug)
        by_id = dict(rows)
        bodies = [body for _, body in rows]
        assert len(bodies) == len(set(bodies)), "an entry was posted twice"
        for p in burst.answered:
            assert p.entry_id in by_id, f"entry {p.entry_id} ({p.body!r}) was answered 201 but is lost"
            assert by_id[p.entry_id] == p.body
        # Each entry, answered or not, committed together with exactly one entry.created event.
        assert created_events == {entry_id: [body] for entry_id, body in rows}
        # The only entries besides the answered ones are unanswered posts that had committed.
        unanswered_bodies = {p.body for p in burst.unanswered}
        assert set(bodies) - {p.body for p in burst.answered} <= unanswered_bodies

        # The answered ones read back through the API, as a client sees them.
        with httpx.Client(base_url=restarted.base_url, timeout=10) as client:
            for p in burst.answered:
                got = client.get(f"/api/v1/stories/{slug}/entries/{p.entry_id}", headers=newsroom.auth(p.reporter))
                assert got.status_code == 200, got.text
                assert got.json()["body"] == p.body

            # Retry every post that got no answer, with the same key: done exactly once.
            committed_before = {body: entry_id for entry_id, body in rows}
            print(
                f"{len(burst.answered)} answered 201; no answer for {len(burst.unanswered)} "
                f"({sorted(p.error for p in burst.unanswered)}), of which "
                f"{sum(p.body in committed_before for p in burst.unanswered)} had committed"
            )
            for p in burst.unanswered:
                again = post(client, newsroom, slug, p)
                assert again.status_code == 201, again.text
                replayed = again.headers.get("Idempotent-Replayed") == "true"
                if p.body in committed_before:
                    assert replayed, f"{p.body!r} had committed, yet the retry did not replay it"
                    assert again.json()["id"] == committed_before[p.body]
                else:
                    assert not replayed, f"{p.body!r} had not committed, yet the retry replayed an answer"
                assert again.json()["body"] == p.body
                p.entry_id = again.json()["id"]
                # A second retry replays the same answer.
                third = post(client, newsroom, slug, p)
                assert third.status_code == 201 and third.headers.get("Idempotent-Replayed") == "true"
                assert third.json()["id"] == p.entry_id

        rows, created_events = entries_and_events(newsroom.url, slug)
        bodies = [body for _, body in rows]
        assert len(bodies) == len(set(bodies)), "an entry was posted twice"
        assert set(bodies) == {p.body for p in burst.answered + burst.unanswered}
        assert dict(rows) == {p.entry_id: p.body for p in burst.answered + burst.unanswered}
        assert created_events == {entry_id: [body] for entry_id, body in rows}
    finally:
        for s in (server, restarted):
            s.kill()
            s.stop()  # closes its log
