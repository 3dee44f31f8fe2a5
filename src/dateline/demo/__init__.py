"""`dateline demo`: a sample live story and a simulated reporter who keeps posting.

The story is fictional, written for Dateline. The reporter posts through the public JSON API
with an API token and an Idempotency-Key, exactly as a newsroom client would.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from ..accounts import users as accounts
from ..accounts.users import Role
from ..db import Database
from ..schema import users
from ..stories import posting
from ..stories import story as stories
from ..vocabulary import KIND_FIELDS, Audience

SAMPLE = Path(__file__).with_name("sample_story.json")
EDITOR = "editor"
log = logging.getLogger("dateline.demo")


def load_sample() -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return sample


def _fields(item: dict[str, Any]) -> dict[str, str]:
    return {k: item[k] for k in KIND_FIELDS[item["kind"]] if k in item}


def seed(db: Database) -> tuple[str, str, str]:
    """Create the editor account and the sample story; returns (slug, password, token).

    Run again, it keeps the story and gives the editor a fresh password and token.
    """
    sample = load_sample()
    password = accounts.generate_password()
    with db.write() as conn:
        editor = accounts.get_user(conn, EDITOR)
        if editor is None:
            editor = accounts.create_user(conn, EDITOR, password, Role.admin, "Demo Editor")
        else:
            conn.execute(
                users.update()
                .where(users.c.id == editor.id)
                .values(password_hash=accounts.hash_password(password), disabled=False)
            )
        token = accounts.create_token(conn, editor, "demo reporter")
        slug = sample["story"]["slug"]
        if stories.get_story(conn, slug, Audience.newsroom) is None:
            story = posting.start_story(conn, editor, status="live", **sample["story"])
            start = datetime.now(timezone.utc)
            for item in sample["entries"]:
                posting.post_entry(
                    conn, editor, story, kind=item["kind"], body=item.get("body", ""),
                    fields=_fields(item), pinned=item.get("pinned", False),
                    key_event=item.get("key_event", False),
                    published_at=start - timedelta(minutes=item["minutes_ago"]),
                )
    return slug, password, token


class SimulatedReporter(threading.Thread):
    """Posts the next update of the sample story every `interval` seconds, until stopped."""

    def __init__(self, base_url: str, token: str, slug: str, interval: float) -> None:
        super().__init__(name="demo-reporter", daemon=True)
        self.base_url, self.token, self.slug, self.interval = base_url, token, slug, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        pool = load_sample()["live_pool"]
        url = f"{self.base_url}/api/v1/stories/{self.slug}/entries"
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(timeout=10) as client:
            for item in itertools.cycle(pool):
                if self.stopped.wait(self.interval):
                    return
                # One key per update: if the answer is lost, the retry cannot post it twice.
                key = str(uuid.uuid4())
                for attempt in range(5):
                    try:
                        response = client.post(url, json=item, headers={**headers, "Idempotency-Key": key})
                        if response.status_code < 500:
                            break
                    except httpx.HTTPError as exc:
                        log.info("demo reporter: %s; retrying", exc)
                    if self.stopped.wait(1 + attempt):
                        return

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
