"""One load-client process of the fan-out benchmark: many SSE readers on raw sockets.

    python loadclient.py --host 127.0.0.1 --port 8000 --path /stories/bench/live \
        --source 127.0.0.2 --readers 15000 --updates 21

Started by `run.py`, one per ~16,000 readers (a process may hold 20,000 open files here),
each from its own 127.0.0.x source address (so each has ~28,000 ephemeral ports of its own).
It is driven over stdin/stdout, one JSON object per line:

    -> {"hello": pid}                         when its event loop is up
    <- go                                     open every reader
    -> {"headers": n, "seconds": s}           once every reader has had its response headers
    <- progress                               (any time)
    -> {"open": n, "delivered": n}
    <- measure                                from now on a stream that ends is counted, and
                                              resumes with Last-Event-ID
    <- report PATH                            write the latencies (int32 µs) to PATH
    -> {...totals...}
    <- quit

It must stay much lighter than the servers it measures, so it does no HTTP parsing beyond
the status line and no SSE parsing beyond what the check needs: each update's body carries
a marker `zq<seq>x<time_ns>qz` (sequence number, wall-clock time of the post); a reader
finds it with bytes.find, takes the `id:` line of the same frame, and skips to the end of
the frame (Dateline's JSON has the marker twice: in `body` and in `html`).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import random
import resource
import socket
import sys
import time
from typing import Any

try:
    import uvloop
except ImportError:  # the benchmark still runs, only heavier on the client side
    uvloop = None  # type: ignore[assignment]

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
MARK = b"zq"
MARK_END = b"qz"
FRAME_END = b"\n\n"
ID_FIELD = b"id: "
MAX_HEADER_BYTES = 16384
CONNECT_CONCURRENCY = 256  # handshakes in flight per process: stays far below the listen backlog
CONNECT_ATTEMPTS = 30
RECONNECT_DELAY = 1.0  # a shed reader comes back sooner than a browser would (2-20 s): keeps runs short


class Reader(asyncio.Protocol):
    """One SSE reader. `seen[seq]` counts how often update `seq` arrived on this stream."""

    __slots__ = ("client", "index", "transport", "seen", "last_id", "frame_id", "carry", "in_frame", "headers_done",
                 "ready")

    def __init__(self, client: "LoadClient", index: int, previous: "Reader | None" = None) -> None:
        self.client = client
        self.index = index
        self.transport: asyncio.Transport | None = None
        # A reconnected reader keeps what it saw: a replayed update counts as a duplicate.
        self.seen = previous.seen if previous else bytearray(client.updates)
        self.last_id: bytes | None = previous.last_id if previous else None  # sent as Last-Event-ID
        self.frame_id: bytes | None = None  # the `id:` of the frame whose marker has not come yet
        self.carry = b""
        self.in_frame = False  # the marker of the current frame is counted: skip to its end
        self.headers_done = False
        # "ok" (headers of a 200), "closed" (before its headers) or "bad" (another status)
        self.ready: asyncio.Future[str] | None = client.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        request = self.client.request
        if self.last_id is not None:  # resume, as a browser's EventSource does
            request = request[:-2] + b"Last-Event-ID: " + self.last_id + b"\r\n\r\n"
        self.transport.write(request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle("closed")
        if self.headers_done:
            self.client.reader_closed(self)

    def _settle(self, outcome: str) -> None:
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(outcome)
        self.ready = None

    def data_received(self, data: bytes) -> None:
        if self.carry:
            data = self.carry + data
            self.carry = b""
        pos = 0
        if not self.headers_done:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEADER_BYTES:
                    self.client.errors += 1
                    self.transport.close()  # type: ignore[union-attr]
                else:
                    self.carry = data
                return
            if not (data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")):
                self.client.bad_status += 1
                status = data[9:12].decode("latin-1")
                self.client.statuses[status] = self.client.statuses.get(status, 0) + 1
                self._settle("bad")
                self.transport.close()  # type: ignore[union-attr]
                return
            self.headers_done = True
            self._settle("ok")
            pos = end + 4
        if self.in_frame:
            end = data.find(FRAME_END, pos)
            if end < 0:
                self.carry = data[-1:]  # a "\n" that the next read may complete
                return
            self.in_frame = False
            pos = end + 2
        client = self.client
        while True:
            mark = data.find(MARK, pos)
            # A read may end between a frame's `id:` line and its marker: keep the id till then.
            id_start = data.rfind(ID_FIELD, pos, mark if mark >= 0 else len(data))
            if id_start >= 0:
                id_end = data.find(b"\n", id_start)
                if id_end < 0 or (mark >= 0 and id_end > mark):  # the id line itself is cut
                    self.carry = data[id_start:]
                    return
                self.frame_id = data[id_start + 4:id_end]
            if mark < 0:
                line = data.rfind(b"\n", pos) + 1  # a cut "id: " or "zq" is in the last line
                tail = data[max(line, pos):]
                self.carry = tail if len(tail) <= 64 else tail[-1:]
                return
            mark_end = data.find(MARK_END, mark + 2)
            if mark_end < 0:
                if len(data) - mark > 64:
                    client.errors += 1
                    return
                self.carry = data[mark:]  # the marker is cut: the rest comes with the next read
                return
            field = data[mark + 2:mark_end]
            x = field.find(b"x")
            event_id, self.frame_id = self.frame_id, None
            try:
                client.delivered(self, int(field[:x]), int(field[x + 1:]), event_id)
            except ValueError:
                client.errors += 1
            end = data.find(FRAME_END, mark_end)
            if end < 0:
                self.in_frame = True
                self.carry = data[-1:]
                return
            pos = end + 2


class LoadClient:
    def __init__(self, args: argparse.Namespace) -> None:
        self.loop = asyncio.get_running_loop()
        self.host: str = args.host
        self.port: int = args.port
        self.sources: list[str] = args.source.split(",")
        self.count: int = args.readers
        # Where a reader whose stream ended goes next (a load balancer in front of nodes, one of
        # which died), and over how many seconds they come back (`--reconnect-spread`).
        self.targets: list[tuple[str, int]] = [
            (host, int(port)) for host, _, port in (t.rpartition(":") for t in args.reconnect_to.split(",") if t)]
        self.spread: float | None = args.reconnect_spread
        self.updates: int = args.updates  # update 0 is the warm-up: delivered, not timed
        self.request = (
            f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        self.readers: list[Reader | None] = [None] * self.count
        self.measuring = False
        self.closing = False
        self.resumed = 0
        self.open = 0
        self.total = 0
        self.duplicates = 0
        self.errors = 0
        self.bad_status = 0
        self.statuses: dict[str, int] = {}  # the bad ones, by status code
        self.lost = 0
        self.reconnects = 0
        self.failed = 0
        self.id_mismatch = 0
        self.out_of_range = 0
        self.ids: dict[int, bytes] = {}  # seq -> the event id the first reader saw it under
        self.latencies = array.array("i")  # microseconds, one per timed delivery
        self.last_delivery_ns = 0
        self._gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    # --- deliveries ----------------------------------------------------------------------

    def delivered(self, reader: Reader, seq: int, sent_ns: int, event_id: bytes | None) -> None:
        now = time.time_ns()
        if not 0 <= seq < self.updates:
            self.out_of_range += 1
            return
        seen = reader.seen
        if seen[seq]:
            self.duplicates += 1
            if seen[seq] < 255:
                seen[seq] += 1
            return
        seen[seq] = 1
        if event_id is not None:
            reader.last_id = event_id
        self.total += 1
        self.last_delivery_ns = now
        if event_id is not None:
            known = self.ids.setdefault(seq, event_id)
            if known != event_id:
                self.id_mismatch += 1  # the same update under two ids: one of them is a duplicate
        if seq:
            self.latencies.append((now - sent_ns) // 1000)

    # --- connections ---------------------------------------------------------------------

    def reader_closed(self, reader: Reader) -> None:
        """A stream that had its headers has ended: come back, as a browser does (a full
        Dateline worker sheds with `retry:` and closes; a worker may die). From the first
        post on, the reader resumes with Last-Event-ID, and the ended stream is counted."""
        self.open -= 1
        if self.closing:
            return
        if self.measuring:
            self.lost += 1
            self.resumed += 1
        else:
            self.reconnects += 1
        delay = RECONNECT_DELAY if self.spread is None else random.uniform(0, self.spread)  # noqa: S311
        self.loop.call_later(delay, self._reopen, reader)

    def _reopen(self, previous: Reader) -> None:
        self.loop.create_task(self.open_reader(previous.index, previous))

    async def open_reader(self, index: int, previous: Reader | None = None) -> None:
        for attempt in range(CONNECT_ATTEMPTS):
            if attempt:
                # Back off outside the gate: readers that can connect are not held up.
                await asyncio.sleep(min(5.0, 0.2 * attempt))
            async with self._gate:
                outcome = await self._attempt(index, previous)
            if outcome == "ok":
                self.open += 1
                return
            if outcome == "bad":
                return
        self.failed += 1

    async def _attempt(self, index: int, previous: Reader | None) -> str:
        """One connection, up to its response headers: "ok", "closed" or "bad"."""
        source = self.sources[index % len(self.sources)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Choose the port at connect(), per destination: ~28,000 per address pair.
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.setblocking(False)
            target = (self.host, self.port)
            if previous is not None and self.targets:
                target = self.targets[index % len(self.targets)]
            await asyncio.wait_for(self.loop.sock_connect(sock, target), 10)
            reader = Reader(self, index, previous)
            ready = reader.ready  # settled (and let go) as soon as the headers are in
            assert ready is not None
            self.readers[index] = reader
            await self.loop.create_connection(lambda: reader, sock=sock)
        except (OSError, TimeoutError):
            sock.close()
            return "closed"
        try:
            return await asyncio.wait_for(asyncio.shield(ready), 30)
        except TimeoutError:
            if reader.transport is not None:
                reader.transport.abort()
            return "closed"

    async def connect_all(self) -> float:
        start = time.monotonic()
        await asyncio.gather(*(self.open_reader(i) for i in range(self.count)))
        return time.monotonic() - start

    # --- report --------------------------------------------------------------------------

    def report(self, path: str) -> dict[str, Any]:
        with open(path, "wb") as f:
            self.latencies.tofile(f)
        missing = warmup_missing = 0
        timed = self.updates - 1
        for reader in self.readers:
            if reader is None:
                missing += timed
                warmup_missing += 1
                continue
            missing += reader.seen.count(0, 1)  # updates 1.. this reader never got
            warmup_missing += reader.seen[0] == 0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "readers": self.count, "open": self.open, "delivered": self.total, "missing": missing,
            "warmup_missing": warmup_missing, "duplicates": self.duplicates, "id_mismatch": self.id_mismatch,
            "out_of_range": self.out_of_range, "lost": self.lost, "failed": self.failed,
            "reconnects": self.reconnects, "resumed": self.resumed, "bad_status": self.bad_status, "statuses": self.statuses, "errors": self.errors,
            "last_delivery_ns": self.last_delivery_ns, "cpu_seconds": usage.ru_utime + usage.ru_stime, "cpu_system_seconds": usage.ru_stime,
            "max_rss_kb": usage.ru_maxrss, "uvloop": uvloop is not None,
        }

    def close_all(self) -> None:
        self.closing = True
        for reader in self.readers:
            if reader is not None and reader.transport is not None:
                reader.transport.abort()


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    client = LoadClient(args)
    stdin = asyncio.StreamReader()
    await client.loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    say({"hello": os.getpid()})
    connecting: asyncio.Task[float] | None = None
    while line := (await stdin.readline()).decode().strip():
        command, _, argument = line.partition(" ")
        if command == "go":
            connecting = client.loop.create_task(client.connect_all())
            connecting.add_done_callback(lambda t: say({"headers": client.open, "seconds": t.result()}))
        elif command == "progress":
            say({"open": client.open, "delivered": client.total, "failed": client.failed})
        elif command == "measure":
            client.measuring = True
        elif command == "report":
            say(client.report(argument))
        elif command == "quit":
            break
    client.close_all()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--source", default="127.0.0.1", help="source address(es), comma separated")
    parser.add_argument("--readers", type=int, required=True)
    parser.add_argument("--updates", type=int, required=True, help="updates expected, warm-up (0) included")
    parser.add_argument("--reconnect-to", default="", help="host:port,...: where a reader whose stream "
                        "ended reconnects (reader i to the i-th modulo their number); default: the same server")
    parser.add_argument("--reconnect-spread", type=float, default=None,
                        help="readers come back after a random delay of 0 to this many seconds (default: 1 s each)")
    arguments = parser.parse_args()
    if uvloop is not None:
        uvloop.run(main(arguments))
    else:
        asyncio.run(main(arguments))
