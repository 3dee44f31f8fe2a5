"""The benchmarks' load clients (loadclient.c and loadclient.py) count what a stream holds.

Both are fed the same hand-made stream by a small socket server here: frames cut inside the
marker and between the `id:` line and the marker, a keep-alive comment, HTTP chunk framing,
one update sent twice, then the end of the stream. Each client must count every update once,
the duplicate as a duplicate, come back with the last event id it saw, and get the rest.
The benchmarks' figures rest on these counts.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "fanout"))

import run as fanout  # noqa: E402

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        b"cache-control: no-store\r\n\r\n")


def frame(seq: int, event_id: int) -> bytes:
    mark = f"zq{seq}x{time.time_ns()}qz"
    return (f'id: {event_id}\nevent: entry.created\ndata: {{"body": "{mark}", "html": "<p>{mark}</p>"}}\n\n').encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


class StreamServer:
    """Answers the first request with updates 0-2 (2 twice), cut at awkward places, then
    closes; answers the second (which must resume) with update 3, and keeps it open."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            self.requests.append(head)
            if len(self.requests) == 1:
                one, two = chunk(frame(1, 11)), chunk(frame(2, 12))
                cut_marker = one.index(b"zq") + 3
                cut_id = two.index(b"event:")
                pieces = [HEAD + chunk(frame(0, 10)), one[:cut_marker], one[cut_marker:], two[:cut_id],
                          two[cut_id:] + chunk(b": keep-alive\n\n"), chunk(frame(2, 12))]
                for piece in pieces:
                    conn.sendall(piece)
                    time.sleep(0.05)  # each piece a read of its own
                conn.close()
            else:
                conn.sendall(HEAD + chunk(frame(3, 13)))
                self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("kind", fanout.CLIENTS)
def test_load_client_counts_each_update_once_and_resumes(kind: str, tmp_path: Path) -> None:
    if kind == "c" and not (shutil.which("cc") or shutil.which("gcc")):
        missing_service("no C compiler (cc) to build benchmarks/fanout/loadclient.c")
    if kind == "python":
        pytest.importorskip("uvloop")
    program = fanout.load_client_program(kind)
    assert (kind == "c") == (program[0] != sys.executable), program
    server = StreamServer()
    process = subprocess.Popen(
        [*program, "--host", "127.0.0.1", "--port", str(server.port), "--path", "/stories/s/live",
         "--readers", "1", "--updates", "4"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert process.stdin is not None and process.stdout is not None

    def ask(command: str) -> dict[str, object]:
        assert process.stdin is not None and process.stdout is not None
        if command:
            process.stdin.write(command + "\n")
            process.stdin.flush()
        return json.loads(process.stdout.readline())

    try:
        assert "hello" in ask("")
        process.stdin.write("measure\n")  # from now on an ended stream counts, and resumes
        assert ask("go") == {"headers": 1, "seconds": pytest.approx(0, abs=5)}
        deadline = time.monotonic() + 20
        while (progress := ask("progress"))["delivered"] < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        report = ask(f"report {tmp_path / 'latency.bin'}")
        process.stdin.write("quit\n")
        process.stdin.flush()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdin.close()
        process.stdout.close()
        server.close()

    assert progress == {"open": 1, "delivered": 4, "failed": 0}
    assert report["delivered"] == 4 and report["missing"] == 0 and report["warmup_missing"] == 0
    assert report["duplicates"] == 1  # update 2, sent twice on the first stream
    assert report["id_mismatch"] == 0 and report["errors"] == 0 and report["out_of_range"] == 0
    assert report["lost"] == 1 and report["resumed"] == 1 and report["failed"] == 0
    # The second request resumed after the last id seen, as a browser's EventSource does.
    assert len(server.requests) == 2
    assert b"last-event-id" not in server.requests[0].lower()
    assert b"Last-Event-ID: 12\r\n" in server.requests[1]
    # One latency per timed update (1, 2, 3; 0 is the warm-up), each under 20 s.
    latencies = (tmp_path / "latency.bin").read_bytes()
    assert len(latencies) == 3 * 4
    assert all(0 <= int.from_bytes(latencies[i:i + 4], "little", signed=True) < 20_000_000 for i in range(0, 12, 4))
