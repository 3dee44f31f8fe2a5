"""Sign-ins under load, against real server processes: concurrent guesses cannot race the
throttle (in one process or across two, on SQLite and PostgreSQL), and a flood of sign-ins
costs a bounded amount of memory."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import PASSWORD, ServerProcess, Site


def _memory_mib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no {key} for process {pid}")


async def _guesses(base: str, guesses: list[tuple[str, str, str]], concurrency: int) -> list[httpx.Response]:
    """(username, password, client address) each, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(username: str, password: str, address: str) -> httpx.Response:
            async with gate:
                return await client.post("/api/v1/session", json={"username": username, "password": password},
                                         headers={"X-Forwarded-For": address})

        return list(await asyncio.gather(*(one(*guess) for guess in guesses)))


def _statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(answer.status_code for answer in answers)


@pytest.fixture
def two_processes(site: Site) -> Iterator[ServerProcess]:
    # Enough slots that every guess reaches the throttle at about the same time.
    server = ServerProcess(site.url, None, "--workers", "2", env={"DATELINE_PASSWORD_HASH_SLOTS": "8"}).start()
    yield server
    server.stop()


def test_concurrent_guesses_from_one_address_get_the_limit_and_no_more(two_processes: ServerProcess) -> None:
    answers = asyncio.run(_guesses(two_processes.base_url, [("ron", f"guess {n}", "10.1.1.1") for n in range(100)], 50))
    statuses = _statuses(answers)
    assert statuses[401] == 5, f"the pair limit is 5 wrong passwords: {statuses}"
    assert set(statuses) <= {401, 429, 503}, statuses
    # The right password now waits too: the guesser cannot tell.
    right = httpx.post(two_processes.base_url + "/api/v1/session", json={"username": "ron", "password": PASSWORD},
                       headers={"X-Forwarded-For": "10.1.1.1"})
    assert right.status_code == 429


def test_concurrent_guesses_from_many_addresses_get_the_account_limit(two_processes: ServerProcess) -> None:
    guesses = [("rita", f"guess {n}", f"10.2.0.{n % 20}") for n in range(200)]
    statuses = _statuses(asyncio.run(_guesses(two_processes.base_url, guesses, 50)))
    assert statuses[401] == 30, f"the account limit is 30 wrong passwords: {statuses}"
    assert set(statuses) <= {401, 429, 503}, statuses


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_a_flood_of_sign_ins_costs_bounded_memory(site: Site) -> None:
    """300 wrong sign-ins for unknown names, 60 at a time, each from its own address (so the
    per-address throttle does not help): the process's peak memory grows by a few argon2
    buffers, not one a request thread (19 MiB x 40 before)."""
    server = ServerProcess(site.url, None, "--workers", "1").start()
    try:
        assert server.process is not None
        baseline = _memory_mib(server.process.pid, "VmRSS")
        guesses = [(f"nobody{n}", "a wrong guess", f"10.3.{n // 256}.{n % 256}") for n in range(300)]
        answers = asyncio.run(_guesses(server.base_url, guesses, 60))
        peak = _memory_mib(server.process.pid, "VmHWM")
        statuses = _statuses(answers)
        assert set(statuses) <= {401, 503}, statuses
        assert statuses[401] >= 20, f"sign-ins are still checked while refusing the excess: {statuses}"
        busy = [a for a in answers if a.status_code == 503]
        assert all(a.headers.get("Retry-After") == "1" for a in busy)
        assert all(a.headers["content-type"].startswith("application/problem+json") for a in busy)
        assert peak - baseline < 150, f"peak {peak} MiB from {baseline} MiB: {statuses}"
        # A real user gets in once the flood is over.
        signed_in = httpx.post(server.base_url + "/api/v1/session", json={"username": "eve", "password": PASSWORD})
        assert signed_in.status_code == 200
    finally:
        server.stop()
