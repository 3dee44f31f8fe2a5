"""What a flood of wrong sign-ins costs one server process, and the readers it serves.

    python benchmarks/sign_in_flood.py [--requests 300] [--concurrency 60] [--addresses 300]
                                       [--src PATH]

Sets up a scratch SQLite site (one editor, one live story with 20 updates), starts
`dateline serve --workers 1` on it, and sends `--requests` wrong sign-ins for unknown user
names, `--concurrency` at a time, from `--addresses` client addresses (`X-Forwarded-For`,
which the server trusts from loopback: 300 is a botnet, so the per-address throttle does
not help and only the bound on password hashing does; 1 is one guesser). Meanwhile a reader
loads the story page over and over. It prints the process's resident memory before, at its
peak (VmHWM) and after, the answers' statuses, and the reader's page times before and
during the flood. `--src` runs the server from another checkout's `src` (a worktree of an
older commit, to measure the "before"). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) // 1024
    return values


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "dateline", *args], env=env, input=stdin,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _percentiles(times: list[float]) -> str:
    if not times:
        return "no pages"
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms ({len(ordered)} pages)")


class Reader(threading.Thread):
    """Loads the story page, one after the other, recording how long each took."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.times: list[float] = []
        self.running = True

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while self.running:
                start = time.perf_counter()
                client.get(self.url).raise_for_status()
                self.times.append(time.perf_counter() - start)
                time.sleep(0.05)


async def _flood(base: str, requests: int, concurrency: int, addresses: int) -> Counter[int]:
    gate = asyncio.Semaphore(concurrency)
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(n: int) -> None:
            address = f"10.{n % addresses // 65536 % 256}.{n % addresses // 256 % 256}.{n % addresses % 256}"
            async with gate:
                guess = {"username": f"nobody{n}", "password": "a wrong guess"}
                answer = await client.post("/api/v1/session", json=guess, headers={"X-Forwarded-For": address})
            statuses[answer.status_code] += 1

        await asyncio.gather(*(one(n) for n in range(requests)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=60)
    parser.add_argument("--addresses", type=int, default=300)
    parser.add_argument("--src", help="run the server from this checkout's src folder")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATELINE_")}
        env.update(DATELINE_DATABASE_URL=f"sqlite:///{Path(scratch) / 'site.db'}", DATELINE_LOG_LEVEL="warning",
                   DATELINE_MEDIA_DIR=str(Path(scratch) / "media"))
        if options.src:
            env["PYTHONPATH"] = str(Path(options.src).resolve())
        _run(env, "init")
        _run(env, "user", "add", "eve", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n")
        token = _run(env, "token", "create", "eve")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "dateline", "serve", "--workers", "1", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(base + "/api/v1/stories", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            auth = {"Authorization": f"Bearer {token}"}
            slug = httpx.post(base + "/api/v1/stories", json={"headline": "Flood night", "status": "live"},
                              headers=auth).json()["slug"]
            for n in range(20):
                httpx.post(f"{base}/api/v1/stories/{slug}/entries", json={"body": f"Update {n}"}, headers=auth)
            reader = Reader(f"{base}/stories/{slug}")
            reader.start()
            time.sleep(3)  # warm, and the reader's quiet figures
            quiet = list(reader.times)
            before = _memory(server.pid)
            reader.times.clear()
            start = time.perf_counter()
            statuses = asyncio.run(_flood(base, options.requests, options.concurrency, options.addresses))
            took = time.perf_counter() - start
            during = list(reader.times)
            reader.running = False
            reader.join()
            time.sleep(2)
            after = _memory(server.pid)
        finally:
            server.terminate()
            server.wait(15)
    print(f"# {options.requests} wrong sign-ins for unknown names, {options.concurrency} at a time, "
          f"from {options.addresses} address(es); server from {options.src or 'this checkout'}")
    print(f"answers: {dict(sorted(statuses.items()))} in {took:.1f} s")
    print(f"server RSS: before {before['VmRSS']} MiB, peak {after['VmHWM']} MiB, after {after['VmRSS']} MiB")
    print(f"reader page, quiet:        {_percentiles(quiet)}")
    print(f"reader page, during flood: {_percentiles(during)}")


if __name__ == "__main__":
    main()
