"""What Python does to accept a reader, alone: no kernel, no load client.

    python benchmarks/fanout/accept_python.py                 # new readers
    python benchmarks/fanout/accept_python.py --resume        # readers resuming from the window

In one process, on uvloop: a real app on a scratch SQLite database with one live story, its
live delivery started, and N connections that each go the way `dateline serve` takes one.
`FirstRead` is made, its connection is made, and it reads a browser's whole head; the reader is
then handed to a `ReaderConnection` and joins the hub. The transport is a stand-in that takes
what is written, so what is timed is Python's share alone: the process's CPU time over the
N connections, including the tasks of readers that need one. `accept.py` measures the whole
cost over real sockets; this is the part of it a change to Python code can move, measured
without the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvloop
from uvicorn.config import Config


class StandInTransport:
    """Takes every write; never full, never closing until closed."""

    __slots__ = ("protocol", "closing", "written")

    def __init__(self) -> None:
        self.protocol: Any = None
        self.closing = False
        self.written = 0

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self.closing = True

    abort = close

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def head(slug: str, cursor: int | None) -> bytes:
    """A browser's request, with the headers an EventSource sends."""
    return (f"GET /stories/{slug}/live HTTP/1.1\r\nHost: news.example.org\r\nAccept: text/event-stream\r\n"
            "Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0\r\n"
            "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-GB,en;q=0.9\r\n"
            "Referer: https://news.example.org/stories/night-two\r\nSec-Fetch-Mode: cors\r\n"
            + (f"Last-Event-ID: {cursor}\r\n" if cursor is not None else "") + "\r\n").encode()


async def measure(readers: int, resume: bool) -> dict[str, Any]:
    from dateline.accounts import users
    from dateline.app import create_app
    from dateline.stories import entries
    from dateline.stories import story as stories
    from dateline.web.first_read import FirstRead

    app = create_app()
    config = Config(app, http=FirstRead)
    config.load()
    live = app.state.live
    state = SimpleNamespace(connections=set(), tasks=set(), total_requests=0, default_headers=[])
    async with app.router.lifespan_context(app):
        with live.db.write() as conn:
            story = stories.create_story(conn, headline="Night two", slug="night-two", status="live")
            reporter = users.create_user(conn, "rita", users.generate_password(), users.Role("reporter"))
        start = live.follower.last_id
        for n in range(3):  # what a resuming reader missed, an update a commit
            with live.db.write() as conn:
                entries.create_entry(conn, story, reporter, kind="text", body=f"Update {n} from the square",
                                     fields={})
        while live.follower.last_id <= start or not live.follower.settled:
            await asyncio.sleep(0.05)
        await live.lookups.story_id("night-two")  # as the first reader of a wave would have
        await live.lookups.oldest_id()
        request = head("night-two", start if resume else None)
        loop = asyncio.get_running_loop()
        transports = [StandInTransport() for _ in range(readers)]
        gc.collect()
        began = time.process_time()
        for transport in transports:
            connection = FirstRead(config, state, {}, loop)
            connection.connection_made(transport)  # type: ignore[arg-type]
            connection.data_received(request)
        tasks = len(state.tasks)
        await asyncio.gather(*list(state.tasks))
        seconds = time.process_time() - began
        return {"readers": readers, "resume": resume, "in_hub": live.hub.count, "tasks": tasks,
                "bytes_each": transports[0].written, "us_per_reader": round(seconds / readers * 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=15_000)
    parser.add_argument("--resume", action="store_true", help="each reader resumes, three updates behind")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dateline-accept-python-") as tmp:
        os.environ.update({"DATELINE_DATABASE_URL": f"sqlite:///{Path(tmp) / 'dateline.db'}",
                           "DATELINE_BROKER": "none", "DATELINE_LOG_LEVEL": "warning",
                           "DATELINE_MAX_STREAMS": str(args.readers)})
        from dateline.cli import main as cli

        try:
            cli(["init"], standalone_mode=False)
        except SystemExit:
            pass
        result = uvloop.run(measure(args.readers, args.resume))
    kind = "resuming" if args.resume else "new"
    print(f"{result['us_per_reader']} µs of Python a {kind} reader ({result['readers']:,} readers: "
          f"{result['in_hub']:,} in the hub, {result['tasks']:,} tasks, {result['bytes_each']} bytes written each)")
    return 0 if result["in_hub"] == args.readers else 1


if __name__ == "__main__":
    sys.exit(main())
