"""Does a story with 10,000 updates cost more to serve than one with 25?

    python benchmarks/story_size.py

Builds both stories in a scratch SQLite database and times the reader page, the entries API
and a catch-up page in-process (no network), 200 requests each, and prints milliseconds per
request. The figures go in docs/performance.md.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

from fastapi.testclient import TestClient  # noqa: E402

from dateline.accounts import users as accounts  # noqa: E402
from dateline.stories import entries, story as stories  # noqa: E402
from dateline.accounts.users import Role  # noqa: E402
from dateline.app import create_app  # noqa: E402
from dateline.config import Settings  # noqa: E402
from dateline.db import Database  # noqa: E402

SIZES = {"small": 25, "big": 10_000}  # 25: both stories fill a page (20) and a catch-up page differs only by count
REQUESTS = 200


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        db = Database(url)
        db.migrate()
        with db.write() as conn:
            author = accounts.create_user(conn, "eve", "correct horse battery", Role.editor)
            for slug, count in SIZES.items():
                story = stories.create_story(conn, headline=slug, slug=slug, status="live")
                for n in range(count):
                    entries.create_entry(conn, story, author, kind="text", body=f"Update {n}: **news**",
                                         fields={}, key_event=n % 50 == 0)
        app = create_app(Settings.from_env({}, database_url=url, log_level="warning"), db)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, {REQUESTS} requests each")
        print(f"{'path':48} {'25 updates':>12} {'10,000 updates':>16}")
        with TestClient(app) as client:
            for template in ["/stories/{}", "/api/v1/stories/{}/entries", "/api/v1/stories/{}/events?after=0&limit=500"]:
                row = []
                for slug in SIZES:
                    path = template.format(slug)
                    client.get(path)
                    start = time.perf_counter()
                    for _ in range(REQUESTS):
                        assert client.get(path).status_code == 200
                    row.append((time.perf_counter() - start) / REQUESTS * 1000)
                print(f"{template:48} {row[0]:9.2f} ms {row[1]:13.2f} ms")


if __name__ == "__main__":
    main()
