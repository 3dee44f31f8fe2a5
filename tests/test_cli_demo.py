"""`dateline demo`'s story moves forward: its simulated reporter never posts the same update
twice, however long it runs, and a restarted demo picks up where it stopped."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from dateline.accounts import users as accounts
from dateline.api.figures_models import BlockUpdate
from dateline.api.models import EntryCreate
from dateline.cli.common import ready_database
from dateline.config import Settings
from dateline.demo import ADMIN, seed
from dateline.demo.storyline import DETAINED_BLOCK, scripted, updates
from dateline.stories import figures, posting
from dateline.stories import story as stories
from dateline.vocabulary import Audience

POSTS = 600  # at one every 5 s, most of an hour of the demo


def test_the_reporter_never_repeats_itself() -> None:
    posts = list(itertools.islice(updates(), POSTS))
    bodies = [p["body"] for p in posts]
    assert len(set(bodies)) == len(bodies), "an update posted twice"
    key_events = [p["body"] for p in posts if p.get("key_event")]
    assert len(key_events) >= 10 and len(set(key_events)) == len(key_events)
    for post in posts:
        figures = post.get("figures")
        EntryCreate.model_validate({k: v for k, v in post.items() if k != "figures"})  # a post the API accepts
        if figures is not None:  # and new figures the block's API accepts
            assert figures["title"] == DETAINED_BLOCK
            BlockUpdate.model_validate({"rows": figures["rows"]})
    counts = [p["figures"]["rows"][1]["count"] for p in posts if "figures" in p]
    assert len(counts) > 50 and counts == sorted(counts), "the detentions block is kept up to date, and only grows"


def test_the_clock_moves_on_and_the_figures_change() -> None:
    generated = list(itertools.islice(updates(len(scripted())), 500))
    stamps = [re.match(r"\*\*\w+, day (\d+), (\d\d):(\d\d)\.\*\*", p["body"]) for p in generated if p["kind"] == "text"]
    times = [(int(m[1]), int(m[2]), int(m[3])) for m in stamps if m]
    assert len(times) > 350 and times == sorted(times) and len(set(times)) == len(times)
    assert times[-1][0] - times[0][0] >= 5, "five days of story in 500 posts"
    crowds = {int(m[1].replace(",", "")) for p in generated
              if (m := re.search(r"estimate \*\*([\d,]+)\*\* people", p["body"]))}
    assert len(crowds) > 50 and max(crowds) > 5 * min(crowds), "the crowd grows and thins with the hours"
    detained = [int(m[1].replace(",", "")) for p in generated
                if (m := re.search(r"since Sunday is now \*\*([\d,]+)\*\*", p["body"]))]
    assert detained == sorted(detained) and detained[-1] > detained[0] + 100, "detentions only add up"


def test_a_restarted_demo_resumes_the_story(tmp_path: Path) -> None:
    assert list(itertools.islice(updates(40), 30)) == list(itertools.islice(updates(), 40, 70))
    db = ready_database(Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'demo.db'}"))
    try:
        first = seed(db)
        assert (first.username, first.role, first.posted) == (ADMIN, "admin", 0)
        with db.read() as conn:
            seeded = stories.get_story(conn, first.slug, Audience.newsroom)
            assert seeded is not None and len(json.loads(seeded.facts)) == 4, "What we know"
            titles = [block.title for block in figures.list_blocks(conn, seeded.id)]
        assert titles == ["Presidential election: final result", DETAINED_BLOCK]
        with db.write() as conn:
            admin = accounts.get_user(conn, ADMIN)
            story = stories.get_story(conn, first.slug, Audience.newsroom)
            assert admin is not None and story is not None
            for post in itertools.islice(updates(), 3):
                posting.post_entry(conn, admin, story, kind=post["kind"], body=post["body"],
                                   fields={k: post[k] for k in ("speaker", "role") if k in post})
        again = seed(db)
        assert again.posted == 3 and again.password != first.password and again.token != first.token
    finally:
        db.dispose()
