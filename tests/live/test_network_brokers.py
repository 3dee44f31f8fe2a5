"""The brokers between nodes, for real: Redis, NATS and PostgreSQL's LISTEN/NOTIFY.

Two brokers in one event loop stand for two nodes. Each test has a channel of its own, so
tests running at once on the same Redis or NATS never hear each other. A `FaultProxy`
between a broker and its server is the network failing.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from conftest import missing_service
from faultproxy import FaultProxy

from dateline.live.brokers import (
    BACKOFF_MAX,
    BrokerUnavailable,
    NetworkBroker,
    broker_for,
)

REDIS = ("127.0.0.1", 6379)
NATS = ("127.0.0.1", 4222)
PG = ("127.0.0.1", 5432)
DEADLINE = 10.0  # a nudge takes milliseconds; this only bounds a failing test
QUIET = 0.5  # how long "no nudge" is watched for


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["redis", "nats", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _url(kind: str, port: int, pg_url: str) -> str:
    channel = f"test-{uuid.uuid4().hex[:10]}"
    if kind == "redis":
        return f"redis://127.0.0.1:{port}/0?channel={channel}"
    if kind == "nats":
        return f"nats://127.0.0.1:{port}?channel={channel}"
    return pg_url.replace(f":{PG[1]}/", f":{port}/", 1)


@pytest.fixture
def address(kind: str) -> tuple[str, int]:
    where = {"redis": REDIS, "nats": NATS, "postgresql": PG}[kind]
    if not _reachable(where):
        missing_service(f"{kind} is not reachable at {where[0]}:{where[1]}")
    return where


@pytest.fixture
def pg_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The worker's own PostgreSQL database: NOTIFY reaches only its listeners."""
    if kind != "postgresql":
        return ""
    url, _ = request.getfixturevalue("postgres_database")
    return str(url)


class Node:
    """A broker and the nudges it has handed its node."""

    def __init__(self, broker: NetworkBroker) -> None:
        self.broker = broker
        self.nudges = 0
        self.nudged = asyncio.Event()

    def on_nudge(self) -> None:
        self.nudges += 1
        self.nudged.set()

    async def start(self) -> Node:
        await self.broker.start(self.on_nudge)
        return self

    async def next_nudge(self, timeout: float = DEADLINE) -> None:
        await asyncio.wait_for(self.nudged.wait(), timeout)
        self.nudged.clear()


def _broker(url: str) -> NetworkBroker:
    database = url if url.startswith("postgresql") else "sqlite://"
    broker = broker_for("postgresql" if database != "sqlite://" else url, database)
    assert isinstance(broker, NetworkBroker)
    return broker


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def announce_from_a_thread(broker: NetworkBroker, times: int = 1) -> Coroutine[Any, Any, None]:
    """As a writing thread does after each of `times` commits."""
    def commits() -> None:
        for _ in range(times):
            broker.announce()
    return asyncio.to_thread(commits)


def test_a_nudge_crosses_to_the_other_node_and_not_back(kind: str, address: tuple[str, int], pg_url: str) -> None:
    url = _url(kind, address[1], pg_url)

    async def scenario() -> None:
        a, b = await Node(_broker(url)).start(), await Node(_broker(url)).start()
        assert a.broker.kind == b.broker.kind == kind and a.broker.connected
        try:
            for sender, hearer in ((a, b), (b, a)):
                await announce_from_a_thread(sender.broker)
                await hearer.next_nudge()
                with pytest.raises(TimeoutError):  # a node does not hear its own message
                    await sender.next_nudge(QUIET)
        finally:
            await a.broker.close()
            await b.broker.close()

    run(scenario)


def test_announcing_is_coalesced_and_never_blocks_the_writer(kind: str, address: tuple[str, int], pg_url: str) -> None:
    """10,000 commits in a burst: a few messages, not 10,000, and the writing thread spends
    about a microsecond on each (a flag and, now and then, a call into the loop)."""
    url = _url(kind, address[1], pg_url)

    async def scenario() -> None:
        a, b = await Node(_broker(url)).start(), await Node(_broker(url)).start()
        try:
            started = time.perf_counter()
            await announce_from_a_thread(a.broker, 10_000)
            spent = time.perf_counter() - started
            await b.next_nudge()
            await asyncio.sleep(QUIET)  # let whatever is still due go out
            assert 1 <= a.broker.sent < 100, a.broker.sent
            assert 1 <= b.nudges <= a.broker.sent
            assert spent < 5, spent  # only bounds a broken implementation: a blocking publish per commit
        finally:
            await a.broker.close()
            await b.broker.close()

    run(scenario)


def test_a_node_keeps_going_when_its_broker_link_is_cut_and_reads_the_log_once_back(
    kind: str, address: tuple[str, int], pg_url: str
) -> None:
    """The link of node B is cut: B says it is not connected and keeps trying with backoff;
    once the link is back it reconnects by itself and nudges its own node (to read the log
    after its last id at once), and nudges cross again."""
    proxy = FaultProxy(*address).start()
    direct = _url(kind, address[1], pg_url)
    through_proxy = direct.replace(f":{address[1]}", f":{proxy.port}", 1)

    async def scenario() -> None:
        a = await Node(_broker(direct)).start()
        b = await Node(_broker(through_proxy)).start()
        try:
            await announce_from_a_thread(a.broker)
            await b.next_nudge()

            proxy.cut()
            deadline = time.monotonic() + DEADLINE
            while b.broker.connected:
                assert time.monotonic() < deadline, "the broker did not notice the cut"
                await asyncio.sleep(0.05)
            await announce_from_a_thread(a.broker)  # lost for B: the poll would carry it
            await asyncio.sleep(1.0)  # a few reconnection attempts, all refused
            assert not b.broker.connected
            b.nudged.clear()

            proxy.restore()
            await b.next_nudge(BACKOFF_MAX * 1.5 + DEADLINE)  # the nudge of having reconnected
            assert b.broker.connected
            await announce_from_a_thread(a.broker)
            await b.next_nudge()
        finally:
            await a.broker.close()
            await b.broker.close()

    try:
        run(scenario)
    finally:
        proxy.stop()


def test_an_unreachable_broker_is_one_clear_error(kind: str, pg_url: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = _url(kind, port, pg_url or "postgresql://postgres:secret@127.0.0.1:5432/test")

    async def scenario() -> None:
        broker = _broker(url)
        with pytest.raises(BrokerUnavailable) as raised:
            await broker.start(lambda: None)
        message = str(raised.value)
        assert f"127.0.0.1:{port}" in message and "\n" not in message and "secret" not in message, message

    run(scenario)


@pytest.mark.parametrize(("setting", "expected"), [
    ("redis://127.0.0.1:{port}/0", "cannot reach the broker at redis://127.0.0.1:{port}/0"),
    ("nats://127.0.0.1:{port}", "cannot reach the broker at nats://127.0.0.1:{port}"),
    ("redis://", "DATELINE_BROKER: expected host:port"),
    ("redis://127.0.0.1:99999", "DATELINE_BROKER: expected host:port"),
    ("kafka://127.0.0.1:9092", "DATELINE_BROKER: expected local, none, postgresql"),
    ("postgresql", "DATELINE_BROKER: `postgresql` needs DATELINE_DATABASE_URL on PostgreSQL"),
])
def test_serve_refuses_to_start_without_its_broker_in_one_line(setting: str, expected: str, tmp_path: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = f"sqlite:///{tmp_path}/site.db"
    subprocess.run([sys.executable, "-m", "dateline", "init"], check=True, capture_output=True,
                   env={"DATELINE_DATABASE_URL": database, "PATH": ""})
    done = subprocess.run(
        [sys.executable, "-m", "dateline", "serve", "--port", str(port), "--broker", setting.format(port=port)],
        capture_output=True, text=True, timeout=60, env={"DATELINE_DATABASE_URL": database, "PATH": ""},
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected.format(port=port) in lines[0], lines[0]
    with socket.socket() as sock:  # and it never started serving
        assert sock.connect_ex(("127.0.0.1", port)) != 0
