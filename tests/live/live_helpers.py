"""What the live-stream tests share: a real server in this process, an API client, /proc look-ups.

`InProcessServer` runs the real app (`create_app`) under a real uvicorn server in a thread, on
the test's database, so a test can read a stream over a socket *and* look at the hub of that
very process (`server.call(lambda: live.hub.count)`). Subprocess servers (`ServerProcess` from
the root conftest) are used where the test is about processes: workers, a crash, the env.

Imported by the test modules (not a conftest: a second `conftest` module in this folder would
shadow the root one for `from conftest import ...`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from conftest import Site, free_port
from dateline.stories import events
from dateline.app import create_app
from dateline.config import Settings
from dateline.web.first_read import FirstRead

T = TypeVar("T")


class _Server(uvicorn.Server):
    loop: asyncio.AbstractEventLoop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)


class InProcessServer:
    """The app under uvicorn in a thread of this process, on the site's database."""

    def __init__(self, site: Site, http: Any = FirstRead, **settings: Any) -> None:
        self.settings = Settings.from_env({}, database_url=site.url, log_level="warning", **settings)
        self.app = create_app(self.settings, site.db)
        self.live = self.app.state.live
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, log_level="warning",
            access_log=False, lifespan="on", timeout_graceful_shutdown=1,
            http=http,  # as `dateline serve` runs it (readers' streams on their own protocol), or "httptools"
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dateline-test-server", daemon=True)
        self.site = site
        self._apis: list[Api] = []

    def api(self) -> "Api":
        """An API client for this server, closed when the server stops."""
        api = Api(self.base_url, self.site)
        self._apis.append(api)
        return api

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def live_url(self, slug: str, query: str = "") -> str:
        return f"{self.base_url}/stories/{slug}/live" + (f"?{query}" if query else "")

    def start(self, timeout: float = 30) -> "InProcessServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)
        return self

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run `fn` on the server's event loop (where the hub lives) and return its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                future.set_exception(exc)

        self.server.loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def settle(self, timeout: float = 15) -> None:
        """Wait until this process has published the whole log so far: a reader connecting
        without a cursor then starts after everything written before (not in the middle)."""
        with self.site.db.read() as conn:
            newest = events.last_id(conn)
        wait_for(lambda: self.live.follower.last_id >= newest, timeout, "the follower to catch up")

    def hub_count(self) -> int:
        return self.call(lambda: self.live.hub.count)

    def subscribers(self) -> list[Any]:
        return self.call(lambda: [s for readers in self.live.hub.stories.values() for s in readers])

    def stop(self) -> None:
        for api in self._apis:
            api.close()
        self.server.should_exit = True
        self.thread.join(20)
        assert not self.thread.is_alive(), "the in-process server did not stop"


@pytest.fixture
def serve(site: Site) -> Iterator[Callable[..., InProcessServer]]:
    """serve(**settings) starts the real app in this process on the test's database."""
    started: list[InProcessServer] = []

    def start(**settings: Any) -> InProcessServer:
        server = InProcessServer(site, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    """Poll until true; a generous deadline, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Api:
    """The JSON API of a running server, as the newsroom and readers use it."""

    def __init__(self, base_url: str, site: Site) -> None:
        self.base_url = base_url
        self.site = site
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def _call(self, method: str, path: str, who: str | None, expect: int, **kwargs: Any) -> httpx.Response:
        headers = self.site.auth(who) if who else {}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def story(self, status: str = "live", headline: str = "Floods in the valley") -> str:
        slug = f"story-{uuid.uuid4().hex[:10]}"
        self._call("POST", "/api/v1/stories", "eve", 201, json={
            "headline": headline, "slug": slug, "dateline": "DRAVONNE", "status": status,
        })
        return slug

    def post(self, slug: str, body: str = "An update", who: str = "rita", **fields: Any) -> dict[str, Any]:
        payload = {"body": body, **fields}
        return self._call("POST", f"/api/v1/stories/{slug}/entries", who, 201, json=payload).json()  # type: ignore[no-any-return]

    def edit(self, slug: str, entry_id: int, who: str = "eve", **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/api/v1/stories/{slug}/entries/{entry_id}", who, 200, json=changes).json()  # type: ignore[no-any-return]

    def delete(self, slug: str, entry_id: int, who: str = "eve") -> None:
        self._call("DELETE", f"/api/v1/stories/{slug}/entries/{entry_id}", who, 204)

    def patch_story(self, slug: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/api/v1/stories/{slug}", "eve", 200, json=changes).json()  # type: ignore[no-any-return]

    def entry(self, slug: str, entry_id: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/stories/{slug}/entries/{entry_id}", None, 200).json()  # type: ignore[no-any-return]

    def read_story(self, slug: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/stories/{slug}", None, 200).json()  # type: ignore[no-any-return]

    def events(self, slug: str, after: int = 0) -> list[dict[str, Any]]:
        """Every event of the story after `after`, from the catch-up API, all pages."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", f"/api/v1/stories/{slug}/events", None, 200,
                              params={"after": after, "limit": 1000}).json()
            found += page["events"]
            after = page["last_event_id"]
            if not page["has_more"]:
                return found

    def newest_id(self, slug: str) -> int:
        found = self.events(slug)
        return int(found[-1]["id"]) if found else 0

    def close(self) -> None:
        self.http.close()


def as_triples(events: list[Any]) -> list[tuple[int, str, Any]]:
    """(id, type, data) of SSE events or of events-API items, to compare the two."""
    out = []
    for event in events:
        if isinstance(event, dict):
            out.append((int(event["id"]), event["type"], event["data"]))
        else:
            out.append((event.id, event.type, event.json()))
    return out


# --- fault runs: random timing, and the figures of each run ---------------------------------


def fault_seed() -> int:
    """The seed of a fault test's random timing: `DATELINE_FAULT_SEED` replays a run."""
    return int(os.environ.get("DATELINE_FAULT_SEED") or random.randrange(2**32))


def fault_figures(test: str, seed: int, expected: list[tuple[int, str, Any]],
                  received: list[list[tuple[int, str, Any]]], **extra: Any) -> dict[str, Any]:
    """Events lost, duplicated and out of order over every reader of one fault run. Printed,
    and appended as a JSON line to `DATELINE_FAULT_REPORT` when set
    (benchmarks/fault_runs.py repeats the fault tests and adds them up)."""
    wanted = {event[0] for event in expected}
    lost = duplicated = out_of_order = 0
    for events in received:
        ids = [event[0] for event in events]
        counts = Counter(ids)
        lost += len(wanted - counts.keys())
        duplicated += sum(n - 1 for n in counts.values())
        out_of_order += sum(1 for a, b in zip(ids, ids[1:]) if b < a)
    figures = {"test": test, "seed": seed, "readers": len(received), "events": len(expected),
               "lost": lost, "duplicated": duplicated, "out_of_order": out_of_order, **extra}
    print(f"\nFAULT-RUN {json.dumps(figures)}")
    report = os.environ.get("DATELINE_FAULT_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")
    return figures


# --- which process of a multi-worker server holds a connection (Linux /proc) ---------------


def group_pids(pgid: int) -> list[int]:
    """Processes of a process group (a `ServerProcess` is started in its own session)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            pids.append(int(name))
    return pids


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def connection_owner(pgid: int, server_port: int, client_port: int) -> int | None:
    """The pid of the server process holding the server end of the connection from client_port."""
    inode = None
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            if local_port == server_port and remote_port == client_port and fields[9] != "0":
                inode = fields[9]
    if inode is None:
        return None
    for pid in group_pids(pgid):
        if inode in _socket_inodes(pid):
            return pid
    return None


class ReaderProcess:
    """A reader in a process of its own (`sse_client.record`): it keeps up with the stream
    whatever the load of the test process, and writes what it receives to a file."""

    def __init__(self, url: str, folder: Path) -> None:
        self.path = folder / f"reader-{uuid.uuid4().hex[:8]}.sse"
        self.path.touch()
        script = Path(__file__).with_name("sse_client.py")
        self.process = subprocess.Popen([sys.executable, str(script), url, str(self.path)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def received(self) -> tuple[list[Any], bool]:
        """(events received so far, whether the server ended the stream)."""
        from sse_client import Event, parse

        raw = self.path.read_bytes()
        closed = raw.endswith(b"\n#closed\n")
        items, _ = parse(raw[: raw.rfind(b"\n\n") + 2] if b"\n\n" in raw else b"")
        return [i for i in items if isinstance(i, Event)], closed

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(15)
        if self.process.stderr is not None:
            self.process.stderr.close()
