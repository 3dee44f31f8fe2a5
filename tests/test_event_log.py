"""The event log: ids become visible in order, deleted entries stay out of a replay, ids are never reused.

The promise (see `dateline.events`): a reader that has seen id N never later finds a new
event below N. On PostgreSQL ids are handed out at insert time but become visible at commit,
so this only holds because `events.append` takes an advisory lock before the insert; on
SQLite, BEGIN IMMEDIATE lets one writer in at a time. The concurrency test below runs real
writer and reader threads against the real database of each backend.
"""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Row, delete, select

from conftest import Site
from dateline.accounts import users as accounts
from dateline import times, vocabulary
from dateline.live import pruner
from dateline.stories import entries, events, story as stories
from dateline.schema import events as events_table
from dateline.schema import stories as stories_table

WRITERS = 6
POSTS_PER_WRITER = 40
READERS = 2
WHOLE_LOG = None  # the reader's key for following every story at once


def _story(site: Site, headline: str, slug: str) -> Row[Any]:
    with site.db.write() as conn:
        return stories.create_story(conn, headline=headline, slug=slug, status="live")


def _post(site: Site, story: Row[Any], body: str, author: str = "rita") -> dict[str, Any]:
    with site.db.write() as conn:
        user = accounts.get_user(conn, author)
        assert user is not None
        return entries.create_entry(conn, story, user, kind="text", body=body, fields={})


def _event_ids_in_table(site: Site, story_id: int | None) -> list[int]:
    """Ids of a story's events, or of every event (None), as stored."""
    query = select(events_table.c.id).order_by(events_table.c.id)
    if story_id is not None:
        query = query.where(events_table.c.story_id == story_id)
    with site.db.read() as conn:
        return list(conn.execute(query).scalars())


def test_ids_become_visible_in_order_under_concurrent_writers(site: Site) -> None:
    """Writers post as fast as they can while readers follow the stories and the whole log.

    Each reader must see every event exactly once, in id order: nothing may become visible
    below a cursor the reader already moved past. Checked to fail on PostgreSQL (every run,
    several events missed per reader) when `events.lock` is made a no-op: a writer that got
    id 7 commits after one that got id 8, and a reader already at 8 never sees 7.
    """
    story_list = [_story(site, "Flooding in the valley", "flooding"), _story(site, "Port strike", "port-strike")]
    done = threading.Event()
    start = threading.Barrier(WRITERS + READERS)

    def writer(n: int) -> list[int]:
        rng = random.Random(n)
        start.wait()
        created = []
        for i in range(POSTS_PER_WRITER):
            story = rng.choice(story_list)
            created.append(_post(site, story, f"writer {n} post {i}", author=("rita", "ron")[n % 2])["id"])
        return created

    def reader(n: int) -> dict[int | None, list[int]]:
        """Follows each story (`read_after`) and the whole log (`read_log_after`, as live
        delivery does), each with its own cursor; returns the ids seen, in order, per story
        and for the whole log (key None)."""
        cursors: dict[int | None, int] = {WHOLE_LOG: 0, **{s.id: 0 for s in story_list}}
        seen: dict[int | None, list[int]] = {key: [] for key in cursors}

        def poll() -> int:
            got = 0
            for key in cursors:
                with site.db.read() as conn:
                    if key is WHOLE_LOG:
                        batch = events.read_log_after(conn, cursors[key])
                    else:
                        batch = events.read_after(conn, key, cursors[key])
                for event in batch:
                    seen[key].append(event.id)
                    cursors[key] = event.id
                got += len(batch)
            return got

        start.wait()
        polls = 0
        while not done.is_set():
            poll()
            polls += 1
        # The final drain: everything is committed now, so one more pass must find the rest.
        while poll():
            pass
        assert polls > 10, f"reader {n} polled only {polls} times while the writers ran"
        return seen

    with ThreadPoolExecutor(WRITERS + READERS) as pool:
        readers = [pool.submit(reader, n) for n in range(READERS)]
        writers = [pool.submit(writer, n) for n in range(WRITERS)]
        try:
            created_entries = [entry_id for w in writers for entry_id in w.result(timeout=120)]
        finally:
            done.set()
        seen_by_reader = [r.result(timeout=60) for r in readers]

    assert len(set(created_entries)) == WRITERS * POSTS_PER_WRITER
    problems = []
    for story in [*story_list, None]:
        in_table = _event_ids_in_table(site, story.id if story else None)
        assert len(in_table) > POSTS_PER_WRITER  # story.created and the story's share of the posts
        where = f"story {story.slug!r}" if story else "the whole log"
        for n, seen in enumerate(seen_by_reader):
            ids = seen[story.id if story else WHOLE_LOG]
            if any(a >= b for a, b in zip(ids, ids[1:])):
                problems.append(f"reader {n}, {where}: ids not strictly increasing")
            if len(ids) != len(set(ids)):
                problems.append(f"reader {n}, {where}: an event seen twice")
            if missed := sorted(set(in_table) - set(ids)):
                overtaken = {m: min((i for i in ids if i > m), default=None) for m in missed}
                problems.append(
                    f"reader {n}, {where}: never saw events {missed}, which became visible after the "
                    f"reader had moved past them (missed id -> first higher id seen: {overtaken})"
                )
            if extra := sorted(set(ids) - set(in_table)):
                problems.append(f"reader {n}, {where}: saw events {extra} that are not in the table")
    assert not problems, "\n".join(problems)


def test_replay_leaves_out_a_deleted_entrys_events_but_keeps_its_deletion(site: Site) -> None:
    story = _story(site, "Bridge closed", "bridge-closed")
    kept = _post(site, story, "The bridge is closed to traffic.")
    doomed = _post(site, story, "Police say a truck hit the railing.")
    later = _post(site, story, "Ferries are running extra trips.")
    with site.db.write() as conn:
        eve = accounts.get_user(conn, "eve")
        assert eve is not None
        row = entries.get_entry(conn, story.id, doomed["id"])
        assert row is not None
        entries.update_entry(conn, story, row, eve, {"body": "Police say a bus hit the railing."})
    with site.db.write() as conn:
        row = entries.get_entry(conn, story.id, doomed["id"])
        assert row is not None
        entries.delete_entry(conn, story, row)

    with site.db.read() as conn:
        everything = events.read_after(conn, story.id, 0)
        # The history is kept in the table: created, updated and deleted for the doomed entry.
        doomed_rows = list(
            conn.execute(
                select(events_table.c.id, events_table.c.type)
                .where(events_table.c.entry_id == doomed["id"])
                .order_by(events_table.c.id)
            )
        )
    assert [r.type for r in doomed_rows] == [vocabulary.ENTRY_CREATED, vocabulary.ENTRY_UPDATED, vocabulary.ENTRY_DELETED]
    created_id, updated_id, deleted_id = (r.id for r in doomed_rows)

    types_and_entries = [(e.type, _entry_id(e)) for e in everything]
    assert types_and_entries == [
        (vocabulary.STORY_CREATED, None),
        (vocabulary.ENTRY_CREATED, kept["id"]),
        (vocabulary.ENTRY_CREATED, later["id"]),
        (vocabulary.ENTRY_DELETED, doomed["id"]),
    ]
    replayed_ids = [e.id for e in everything]
    assert created_id not in replayed_ids and updated_id not in replayed_ids
    assert deleted_id == replayed_ids[-1]
    assert "bus" not in "".join(e.data for e in everything) and "truck" not in "".join(e.data for e in everything)

    # A reader whose cursor sits between the doomed entry's events gets only the deletion.
    with site.db.read() as conn:
        later_created = replayed_ids[2]
        assert [e.id for e in events.read_after(conn, story.id, created_id)] == [later_created, deleted_id]
        assert [e.id for e in events.read_after(conn, story.id, updated_id)] == [deleted_id]
        assert events.read_after(conn, story.id, deleted_id) == []


def _entry_id(event: events.Event) -> int | None:
    return int(json.loads(event.data)["id"]) if event.type.startswith("entry.") else None


def test_event_ids_are_never_reused_after_the_newest_rows_are_deleted(site: Site) -> None:
    """SQLite's AUTOINCREMENT (a PostgreSQL sequence likewise) never hands out an id twice.

    Without AUTOINCREMENT SQLite picks max(rowid) + 1, so deleting the newest events would hand
    their ids out again, and a reader past them would never see the new events.
    """
    old = _story(site, "Old story", "old-story")
    _post(site, old, "An old update.")
    gone = _story(site, "Story to remove", "story-to-remove")
    for i in range(5):
        _post(site, gone, f"Update {i} of a story about to go.")
    with site.db.read() as conn:
        newest_before = events.last_id(conn)
    assert newest_before == max(_event_ids_in_table(site, gone.id))

    with site.db.write() as conn:
        conn.execute(delete(stories_table).where(stories_table.c.id == gone.id))
    assert _event_ids_in_table(site, gone.id) == [], "deleting the story must cascade to its events"
    with site.db.read() as conn:
        assert events.last_id(conn) < newest_before  # the newest rows are really gone

    new = _story(site, "A new story", "a-new-story")
    _post(site, new, "First update of the new story.")
    new_ids = _event_ids_in_table(site, new.id)
    assert len(new_ids) == 2
    assert min(new_ids) > newest_before, f"ids {new_ids} reused below the old newest id {newest_before}"


def test_changing_a_story_while_posting_to_it_never_deadlocks(site: Site) -> None:
    """Both writers take the event-log lock before the story row: no 'deadlock detected'."""
    with site.db.write() as conn:
        story = stories.create_story(conn, headline="Busy night", slug="busy-night", status="live")
        rita = accounts.get_user(conn, "rita")
        assert rita is not None
    errors: list[str] = []

    def post() -> None:
        for n in range(40):
            try:
                with site.db.write() as conn:
                    entries.create_entry(conn, story, rita, kind="text", body=f"post {n}", fields={})
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(str(exc).splitlines()[0])

    def edit() -> None:
        for n in range(40):
            try:
                with site.db.write() as conn:
                    current = stories.get_story(conn, "busy-night")
                    assert current is not None
                    stories.update_story(conn, current, {"summary": f"summary {n}"})
            except Exception as exc:  # noqa: BLE001
                errors.append(str(exc).splitlines()[0])

    threads = [threading.Thread(target=post), threading.Thread(target=edit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with site.db.read() as conn:
        assert len(events.read_after(conn, story.id, 0, 1000)) == 1 + 40 + 40


# --- pruning: stale presence always, old events with a retention period --------------------


def _types(site: Site, story_id: int) -> list[str]:
    with site.db.read() as conn:
        return list(conn.execute(select(events_table.c.type).where(events_table.c.story_id == story_id)
                                 .order_by(events_table.c.id)).scalars())


def test_presence_is_pruned_once_stale_and_nothing_else(site: Site) -> None:
    """"Who is editing" is written every 15 s per open editor: before, it stayed for ever."""
    story = _story(site, "Flooding in the valley", "flooding")
    entry = _post(site, story, "The river is rising.")
    written = times.now()
    with site.db.write() as conn:
        for _ in range(3):
            events.append(conn, story.id, vocabulary.EDITING, {"id": entry["id"], "seconds": 30}, written, entry["id"])
    _post(site, story, "Evacuations ordered.")
    assert _types(site, story.id).count(vocabulary.EDITING) == 3
    # Still fresh: kept (a newsroom stream resuming now shows who is editing).
    assert pruner.prune_log(site.db, written + timedelta(seconds=30), 0) == (0, 0)
    deleted, above = pruner.prune_log(site.db, written + timedelta(minutes=2), 0)
    assert deleted == 3
    assert _types(site, story.id) == ["story.created", "entry.created", "entry.created"]
    # The next pass looks only above what this one went through; a new stale one goes then.
    with site.db.write() as conn:
        events.append(conn, story.id, vocabulary.EDITING, {"id": entry["id"], "seconds": 30}, written, entry["id"])
    again, later = pruner.prune_log(site.db, written + timedelta(minutes=3), 0, above)
    assert again == 1 and later > above
    assert pruner.prune_log(site.db, written + timedelta(minutes=4), 0, later)[0] == 0


def test_retention_deletes_old_events_in_small_transactions_and_keeps_the_newest(site: Site, monkeypatch: Any) -> None:
    story = _story(site, "Flooding in the valley", "flooding")
    other = _story(site, "Port strike", "port-strike")
    for n in range(7):
        _post(site, story, f"Update {n}")
    _post(site, other, "Dockers walk out.")
    every = _event_ids_in_table(site, None)
    assert pruner.prune_log(site.db, times.now() + timedelta(days=30), 0)[0] == 0  # 0: keep everything
    assert pruner.prune_log(site.db, times.now(), 1)[0] == 0  # nothing is a day old yet
    commits: list[int] = []  # one per write transaction
    write = site.db.write

    def counted() -> Any:
        commits.append(1)
        return write()
    monkeypatch.setattr(site.db, "write", counted)
    monkeypatch.setattr(events, "PRUNE_ROWS", 3)
    deleted, _ = pruner.prune_log(site.db, times.now() + timedelta(days=2), 1)
    assert deleted == len(every) - 1 and len(commits) >= len(every) // 3
    monkeypatch.undo()
    assert _event_ids_in_table(site, None) == [every[-1]]  # the newest stays: the log's ids still tell
    with site.db.read() as conn:
        assert events.first_id(conn) == events.last_id(conn) == every[-1]
    _post(site, story, "After the prune")
    assert _event_ids_in_table(site, story.id)[0] > every[-1]  # ids are never handed out again


def test_dateline_prune_on_the_command_line(site: Site, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from dateline.cli import main

    story = _story(site, "Flooding in the valley", "flooding")
    _post(site, story, "The river is rising.")
    _post(site, story, "Evacuations ordered.")
    runner = CliRunner()
    result = runner.invoke(main, ["prune", "--database", site.url], env={"DATELINE_EVENT_RETENTION_DAYS": "0"})
    assert result.exit_code == 0 and result.output == "Deleted 0 events.\n", result.output
    monkeypatch.setattr(times, "now", lambda: datetime.now(timezone.utc) + timedelta(days=3))
    result = runner.invoke(main, ["prune", "--database", site.url, "--days", "2"])
    assert result.exit_code == 0 and result.output == "Deleted 2 events.\n", result.output
    assert len(_event_ids_in_table(site, story.id)) == 1
