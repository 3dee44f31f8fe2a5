"""Why Dateline's push client is its own: POSTs per second to a push service on loopback,
Dateline's `PushClient` against httpx's `AsyncClient`, the same requests, side by side.

    python benchmarks/push_client.py

The push service (tests/push/push_service.py) runs in a process of its own and answers 201
without checking (this measures the clients). Each client sends 10,000 POSTs of a 400-byte
body with the headers a push request carries, 500 at a time, at most 16 in flight.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "push"))

from push_service import Browser, PushService  # noqa: E402

from dateline.push.client import PushClient  # noqa: E402

REQUESTS = 10_000
IN_FLIGHT = 16
HEADERS = [("TTL", "21600"), ("Urgency", "high"), ("Topic", "story-1"), ("Content-Encoding", "aes128gcm"),
           ("Content-Type", "application/octet-stream"), ("Authorization", "vapid t=" + "x" * 300 + ", k=" + "y" * 87)]
BODY = b"x" * 400


def serve(port: int, ready: "multiprocessing.synchronize.Event") -> None:
    service = PushService(verify_every=10**12)  # never checks: the clients are measured
    service.origin = f"http://127.0.0.1:{port}"
    service.accept_any = Browser.new()
    service.ready = ready
    service.serve_forever(port)


async def dateline(origin: str) -> None:
    client = PushClient(IN_FLIGHT, allow_loopback=True)
    try:
        for start in range(0, REQUESTS, 500):
            answers = await asyncio.gather(*(client.post(f"{origin}/push/{n:08d}", HEADERS, BODY)
                                             for n in range(start, start + 500)))
            assert all(a.status == 201 for a in answers)
    finally:
        await client.aclose()


async def with_httpx(origin: str) -> None:
    limit = asyncio.Semaphore(IN_FLIGHT)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=IN_FLIGHT)) as client:
        async def one(n: int) -> int:
            async with limit:
                return (await client.post(f"{origin}/push/{n:08d}", headers=HEADERS, content=BODY)).status_code

        for start in range(0, REQUESTS, 500):
            assert set(await asyncio.gather(*(one(n) for n in range(start, start + 500)))) == {201}


def timed(name: str, run) -> None:  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:28} {REQUESTS / wall:>8,.0f} POSTs/s {cpu / REQUESTS * 1e6:>8.0f} µs CPU per POST")


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = multiprocessing.Event()
    service = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    service.start()
    ready.wait(10)
    origin = f"http://127.0.0.1:{port}"
    print(f"{REQUESTS:,} POSTs to a push service on loopback, at most {IN_FLIGHT} in flight (asyncio event loop)")
    timed("Dateline PushClient", lambda: asyncio.run(dateline(origin)))
    timed("httpx AsyncClient", lambda: asyncio.run(with_httpx(origin)))
    service.terminate()


if __name__ == "__main__":
    main()
