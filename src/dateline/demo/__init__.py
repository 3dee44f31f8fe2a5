"""`dateline demo`: a sample live story and a simulated reporter who keeps posting.

The story is fictional, written for Dateline. The reporter posts through the public JSON API
with an API token and an Idempotency-Key, exactly as a newsroom client would; what it posts
is in storyline.py: the night's script, then a story that moves on for as long as it runs.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import func, select

from ..accounts import users as accounts
from ..accounts.users import Role
from ..db import Database
from ..schema import entries, users
from ..stories import posting
from ..stories import story as stories
from ..vocabulary import KIND_FIELDS, Audience
from .storyline import load_sample, updates

ADMIN = "admin"  # the demo's one account: an admin, so every part of the newsroom can be tried
log = logging.getLogger("dateline.demo")


@dataclass(frozen=True)
class Seeded:
    slug: str
    username: str
    role: str
    password: str
    token: str
    posted: int  # updates posted since the sample's first ones: where the reporter resumes


def _fields(item: dict[str, Any]) -> dict[str, str]:
    return {k: item[k] for k in KIND_FIELDS[item["kind"]] if k in item}


def seed(db: Database) -> Seeded:
    """Create the admin account and the sample story.

    Run again, it keeps the story and gives the admin a fresh password and token.
    """
    sample = load_sample()
    password = accounts.generate_password()
    with db.write() as conn:
        admin = accounts.get_user(conn, ADMIN)
        if admin is None:
            admin = accounts.create_user(conn, ADMIN, password, Role.admin, "Demo Admin")
        else:
            conn.execute(
                users.update()
                .where(users.c.id == admin.id)
                .values(password_hash=accounts.hash_password(password), role=Role.admin.value, disabled=False)
            )
        token = accounts.create_token(conn, admin, "demo reporter")
        slug = sample["story"]["slug"]
        found = stories.get_story(conn, slug, Audience.newsroom)
        if found is not None:
            count = conn.execute(select(func.count()).select_from(entries)
                                 .where(entries.c.story_id == found.id)).scalar_one()
            return Seeded(slug, ADMIN, Role.admin.value, password, token, max(0, count - len(sample["entries"])))
        story = posting.start_story(conn, admin, status="live", **sample["story"])
        start = datetime.now(timezone.utc)
        for item in sample["entries"]:
            posting.post_entry(
                conn, admin, story, kind=item["kind"], body=item.get("body", ""),
                fields=_fields(item), pinned=item.get("pinned", False),
                key_event=item.get("key_event", False),
                published_at=start - timedelta(minutes=item["minutes_ago"]),
            )
        story = posting.change_story(conn, admin, story, {"facts": sample["facts"]})
        for block in sample["blocks"]:
            posting.add_block(conn, admin, story, kind=block["kind"], title=block["title"],
                              values=_figures(block, start - timedelta(minutes=block["minutes_ago"])))
    return Seeded(slug, ADMIN, Role.admin.value, password, token, 0)


def _figures(block: dict[str, Any], reported_at: datetime | None = None) -> dict[str, Any]:
    """A block of the sample in the shape `figures.check` takes."""
    rows = [{"count": None, "share": None, "source": None, "reported_at": None, **row} for row in block["rows"]]
    return {"unit": block.get("unit"), "counted": block.get("counted"), "source": block.get("source"),
            "reported_at": reported_at, "rows": rows}


class SimulatedReporter(threading.Thread):
    """Posts the next update of the story every `interval` seconds, from the `start`-th of
    storyline.updates(), until stopped."""

    def __init__(self, base_url: str, token: str, slug: str, interval: float, start: int = 0) -> None:
        super().__init__(name="demo-reporter", daemon=True)
        self.base_url, self.token, self.slug, self.interval = base_url, token, slug, interval
        self.start_at = start
        self.stopped = threading.Event()

    def run(self) -> None:
        story = f"{self.base_url}/api/v1/stories/{self.slug}"
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10) as client:
            blocks = self._blocks(client, story, headers)
            for item in updates(self.start_at):
                if self.stopped.wait(self.interval):
                    return
                item = dict(item)
                figures = item.pop("figures", None)  # new figures for a block, posted with the update
                # One key per update: if the answer is lost, the retry cannot post it twice.
                key = str(uuid.uuid4())
                for attempt in range(5):
                    try:
                        response = client.post(f"{story}/entries", json=item,
                                               headers={**headers, "Idempotency-Key": key})
                        if response.status_code < 500:
                            break
                    except httpx.HTTPError as exc:
                        log.info("demo reporter: %s; retrying", exc)
                    if self.stopped.wait(1 + attempt):
                        return
                if figures and figures["title"] in blocks:
                    try:  # setting the same figures twice changes nothing: no key needed
                        client.patch(f"{story}/blocks/{blocks[figures['title']]}", json={"rows": figures["rows"]},
                                     headers=headers)
                    except httpx.HTTPError as exc:
                        log.info("demo reporter: figures not updated (%s)", exc)

    @staticmethod
    def _blocks(client: httpx.Client, story: str, headers: dict[str, str]) -> dict[str, int]:
        """The story's figures blocks by title (an editor may have deleted or renamed one)."""
        try:
            found = client.get(f"{story}/blocks", headers=headers).json()["blocks"]
        except (httpx.HTTPError, ValueError, KeyError):
            return {}
        return {block["title"]: block["id"] for block in found}

    def stop(self) -> None:
        self.stopped.set()


def wait_until_up(base_url: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/v1/stories", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False
