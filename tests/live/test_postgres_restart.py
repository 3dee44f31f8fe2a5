"""PostgreSQL itself restarted under two nodes, for real: a private cluster of this machine's
PostgreSQL binaries (initdb in the test's folder, its own port), so the shared server the
other tests use is never touched.

The restart is `pg_ctl restart -m immediate`: every connection is cut at once and the server
recovers from its write-ahead log, as after a crash. While it is down, posts are refused with
a clean 503 (problem+json) and nothing of them is written; once it is back, posts succeed on
both nodes without a restart of Dateline; every acknowledged post is there once; and readers
whose streams were cut resume with `Last-Event-ID` and end with every event exactly once, in
order.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, Site, _add_personas, free_port, missing_service
from live_helpers import Api, as_triples, fault_figures, fault_seed, wait_for
from sse_client import SSEStream, StreamClosed

from dateline.db import Database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found and not shutil.which("pg_ctl"):
            missing_service("PostgreSQL's server binaries (pg_ctl, initdb) are not installed")
        self.pg_ctl = found[-1] if found else str(shutil.which("pg_ctl"))
        self.initdb = str(Path(self.pg_ctl).with_name("initdb"))
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        # PostgreSQL will not run as root: as root, run it as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def init(self) -> PrivatePostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"

    def start(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-o", self._options(), "-l", str(self.folder / "log"),
                  "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    # Under /tmp's own folder: the postgres user must reach it (pytest's tmp_path is private).
    folder = Path(f"/tmp/dateline-pg-{os.getpid()}-{random.randrange(10**6)}")  # noqa: S108
    server = PrivatePostgres(folder).init()
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(folder, ignore_errors=True)


def test_postgresql_restarted_under_two_nodes_loses_nothing_acknowledged(private_postgres: PrivatePostgres) -> None:
    db = Database(private_postgres.url)
    db.migrate()
    tokens = _add_personas(db)
    db.dispose()
    site = Site(private_postgres.url, None, tokens)  # type: ignore[arg-type]  # only its tokens are used
    env = {"DATELINE_BROKER": "postgresql", "DATELINE_LIVE_POLL_SECONDS": "0.5"}
    nodes = [ServerProcess(private_postgres.url, None, "--workers", "1", env=env).start() for _ in range(2)]
    apis = [Api(node.base_url, site) for node in nodes]
    http = httpx.Client(timeout=10)
    slug = apis[0].story()
    readers = [SSEStream(f"{node.base_url}/stories/{slug}/live", headers={"Last-Event-ID": "0"}) for node in nodes]
    acknowledged: list[str] = []
    refused = 0
    seed = fault_seed()
    rng = random.Random(seed)
    try:
        for n in range(rng.randint(1, 8)):  # the restart comes at a random moment of the story
            acknowledged.append(apis[n % 2].post(slug, f"Before the restart {n}")["body"])

        private_postgres.stop("immediate")  # every connection cut, as in a crash
        for n in range(4):
            answer = http.post(f"{nodes[n % 2].base_url}/api/v1/stories/{slug}/entries", headers=site.auth("rita"),
                               json={"kind": "text", "body": f"Refused while down {n}"})
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in answer.text
            refused += 1
        time.sleep(rng.uniform(0.2, 1.5))  # down for a random while
        private_postgres.start()

        def posts_again(node: ServerProcess) -> bool:
            answer = http.post(f"{node.base_url}/api/v1/stories/{slug}/entries", headers=site.auth("rita"),
                               json={"kind": "text", "body": f"Back on {node.port}"})
            if answer.status_code == 201:
                acknowledged.append(answer.json()["body"])
                return True
            assert answer.status_code == 503, answer.text  # never anything but a clean refusal
            return False

        for node in nodes:  # each node reconnects by itself: its pool checks connections before use
            wait_for(lambda node=node: posts_again(node), timeout=30, what="posts accepted again")
        for n in range(6):
            acknowledged.append(apis[n % 2].post(slug, f"After the restart {n}")["body"])

        expected = apis[0].events(slug)
        bodies = [e["data"]["body"] for e in expected if e["type"] == "entry.created"]
        assert sorted(bodies) == sorted(acknowledged), "an acknowledged post is missing or there twice"
        assert not any(b.startswith("Refused") for b in bodies) and refused == 4
        received = [as_triples(read_through_restart(reader, node, slug, expected[-1]["id"]))
                    for node, reader in zip(nodes, readers, strict=True)]
        fault_figures("postgresql restart", seed, as_triples(expected), received,
                      acknowledged_missing=len(set(acknowledged) - set(bodies)))
        for got in received:
            assert got == as_triples(expected), "a reader lost, repeated or reordered an event"
    finally:
        for reader in readers:
            reader.close()
        for api in apis:
            api.close()
        http.close()
        for node in nodes:
            node.stop()


def read_through_restart(stream: SSEStream, node: ServerProcess, slug: str, last: int) -> list:  # type: ignore[type-arg]
    """The reader's events up to `last`: its stream may have ended while the database was down
    (a replay that could not read it); it then comes back with `Last-Event-ID`, as a browser does."""
    got = []
    deadline = time.monotonic() + 60
    while (not got or got[-1].id < last) and time.monotonic() < deadline:
        try:
            event = stream.next_event(timeout=5)
        except (StreamClosed, TimeoutError, OSError):
            cursor = stream.parser.last_event_id or "0"
            stream.close()
            stream = SSEStream(f"{node.base_url}/stories/{slug}/live", headers={"Last-Event-ID": cursor})
            continue
        got.append(event)
    stream.close()
    return got
