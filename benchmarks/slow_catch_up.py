"""What do slow readers catching up on a long story cost one server process?

    python benchmarks/slow_catch_up.py [--readers 60] [--entries 500] [--rate 2048] [--seconds 30]

Builds a story of long updates (20,000-character text, photos with long captions) in a scratch
SQLite database, starts `dateline serve` with one process, then opens `--readers` anonymous
live streams resuming from `Last-Event-ID: 0`, each with a small receive buffer, reading
`--rate` bytes a second (0: never reading). It samples the server's resident memory for
`--seconds` and prints it: at rest, at its peak, and the peak's cost per reader, with how
many readers were still connected and how much they had received. The figures go in
docs/performance.md.

Run it with `PYTHONPATH=/path/to/other/checkout/src` to measure another version of the code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dateline.accounts import users as accounts
from dateline.accounts.users import Role
from dateline.db import Database
from dateline.stories import entries
from dateline.stories import story as stories

PARAGRAPH = "Water reached the second floor of the town hall before dawn, and the pumps gave out. "


def build(url: str, count: int) -> str:
    db = Database(url)
    db.migrate()
    body = "\n\n".join(f"**{n}.** " + PARAGRAPH * 3 for n in range(80))[:20_000]
    with db.write() as conn:
        author = accounts.create_user(conn, "eve", "correct horse battery", Role.editor)
        story = stories.create_story(conn, headline="The flood", slug="the-flood", status="live")
        for n in range(count):
            if n % 4 == 3:
                fields = {"image_url": f"https://photos.example.org/flood/{n}.jpg",
                          "caption": (PARAGRAPH * 12)[:1000], "alt": (PARAGRAPH * 12)[:1000],
                          "credit": "Staff photographer"}
                entries.create_entry(conn, story, author, kind="image", body=body[:5000], fields=fields)
            else:
                entries.create_entry(conn, story, author, kind="text", body=f"Update {n}\n\n{body}", fields={})
    db.dispose()
    return "the-flood"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds this connection: read what has arrived, until the
    socket would block (open) or says the server closed or dropped it."""
    try:
        while True:
            if not sock.recv(65536):
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False


async def reader(port: int, slug: str, rate: int, received: list[int], index: int,
                 sockets: list[socket.socket]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sockets.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (f"GET /stories/{slug}/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
               "Last-Event-ID: 0\r\n\r\n").encode()
    await loop.sock_sendall(sock, request)
    try:
        while True:
            if rate == 0:
                await asyncio.sleep(3600)
            await asyncio.sleep(1)
            left = rate
            while left > 0:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, min(left, 65536)), 0.5)
                except TimeoutError:
                    break
                if not data:
                    return
                received[index] += len(data)
                left -= len(data)
    except OSError:
        return


async def attack(pid: int, port: int, slug: str, readers: int, rate: int,
                 seconds: float) -> tuple[int, int, list[int], list[bool]]:
    received = [0] * readers
    sockets: list[socket.socket] = []
    tasks = [asyncio.create_task(reader(port, slug, rate, received, i, sockets)) for i in range(readers)]
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.1)
    end = rss_kib(pid)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    open_ = [still_open(sock) for sock in sockets]
    for sock in sockets:
        sock.close()
    return peak, end, received, open_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=60)
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--rate", type=int, default=2048, help="bytes a second each reader reads (0: none)")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        started = time.monotonic()
        slug = build(url, args.entries)
        print(f"built the story in {time.monotonic() - started:.1f} s", file=sys.stderr)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "DATELINE_DATABASE_URL": url, "DATELINE_LOG_LEVEL": "warning",
               "DATELINE_WORKERS": "1", "DATELINE_MEDIA_DIR": scratch}
        command = [sys.executable, "-m", "dateline", "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=env,  # noqa: S603 - this interpreter, our own command stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/api/v1/stories", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            log_bytes = len(httpx.get(f"{base}/api/v1/stories/{slug}/events?after=0&limit=1000", timeout=60).content)
            print(f"server up, {log_bytes} bytes of events", file=sys.stderr)
            time.sleep(1)
            rest = rss_kib(server.pid)
            peak, end, received, open_ = asyncio.run(
                attack(server.pid, port, slug, args.readers, args.rate, args.seconds))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(10)
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{args.entries} updates ({log_bytes / 1e6:.1f} MB of events), {args.readers} readers from 0 "
          f"reading {args.rate} B/s each, {args.seconds:.0f} s")
    print(f"server RSS at rest      {rest / 1024:8.1f} MiB")
    print(f"server RSS peak         {peak / 1024:8.1f} MiB")
    print(f"server RSS at the end   {end / 1024:8.1f} MiB")
    print(f"peak cost per reader    {(peak - rest) / args.readers / 1024:8.2f} MiB")
    print(f"readers still connected {sum(open_):8d} of {args.readers}")
    print(f"received per reader     {sum(received) / args.readers / 1024:8.1f} KiB on average")


if __name__ == "__main__":
    main()
