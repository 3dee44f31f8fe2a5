"""Slow, unfinished and oversized requests against a real `dateline serve` process, over raw
sockets: a half-sent head or a slow body is cut off after its timeout, one address may not
hold more than its share of unfinished requests, a body over the limit gets a 413 the client
can read, and an open live stream is cut by none of it."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess
from PIL import Image

from dateline.web.addresses import address_key
from dateline.web.server import SLOW_AFTER_SECONDS

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 3.0
BODY_TIMEOUT = 4.0
HALF_OPEN = 4
MAX_REQUEST_BYTES = 1_048_576


@dataclass
class Served:
    server: ServerProcess
    tokens: dict[str, str]
    slug: str

    @property
    def port(self) -> int:
        return self.server.port

    def auth(self, who: str = "eve") -> str:
        return f"Authorization: Bearer {self.tokens[who]}\r\n"


@pytest.fixture(scope="module")
def served(sqlite_template: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    template, tokens = sqlite_template
    path = tmp_path_factory.mktemp("limits") / "dateline.db"
    shutil.copy(template, path)
    server = ServerProcess(f"sqlite:///{path}", None, "--workers", "1", env={
        "DATELINE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "DATELINE_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "DATELINE_MAX_HALF_OPEN_PER_ADDRESS": str(HALF_OPEN), "DATELINE_HEARTBEAT_SECONDS": "1",
        "DATELINE_BROKER": "none",
    }).start()
    try:
        story = httpx.post(server.base_url + "/api/v1/stories", json={"headline": "Slow clients", "status": "live"},
                           headers={"Authorization": f"Bearer {tokens['eve']}"})
        assert story.status_code == 201, story.text
        yield Served(server, tokens, story.json()["slug"])
        output = server.output()
        assert "Traceback" not in output and "Exception in ASGI" not in output, output[-3000:]
    finally:
        server.stop()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_to_end(sock: socket.socket, timeout: float = 15) -> tuple[bytes, str, float]:
    """Everything the server sends until it closes: (data, how it ended, seconds it took)."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        ended = "closed"
    except ConnectionResetError:
        ended = "reset"
    except TimeoutError:
        ended = "still open"
    sock.close()
    return data, ended, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def get(port: int, path: str = "/api/v1/stories", source: str = "127.0.0.1") -> int:
    sock = connect(port, source)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: dateline\r\nConnection: close\r\n\r\n".encode())
    return status_of(read_to_end(sock)[0])


# --- item: no request waits for ever -------------------------------------------------------


def test_a_half_sent_head_is_answered_408_and_closed_after_the_header_timeout(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline\r\nAccept: appl")
    answer, ended, took = read_to_end(sock)
    assert ended == "closed" and status_of(answer) == 408, (answer, ended)
    assert HEADER_TIMEOUT - 0.5 <= took < HEADER_TIMEOUT + 3, took


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(served: Served) -> None:
    answer, ended, took = read_to_end(connect(served.port))
    assert (answer, ended) == (b"", "closed")
    assert HEADER_TIMEOUT - 0.5 <= took < HEADER_TIMEOUT + 3, took


def test_a_body_trickling_in_is_cut_off_after_the_body_timeout(served: Served) -> None:
    sock = connect(served.port)
    sock.sendall(f"POST /api/v1/stories HTTP/1.1\r\nHost: dateline\r\n{served.auth()}"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"headline\": \"".encode())
    started = time.monotonic()
    sock.settimeout(0.4)
    answer = b""
    try:  # a byte every 0.4 s: never idle, never done
        while time.monotonic() - started < BODY_TIMEOUT + 5:
            sock.sendall(b"a")
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    took = time.monotonic() - started
    sock.close()
    assert status_of(answer) == 408, answer
    assert BODY_TIMEOUT - 0.5 <= took < BODY_TIMEOUT + 3, took


def test_one_address_holds_only_so_many_unfinished_requests_while_others_are_served(served: Served) -> None:
    held = [connect(served.port, "127.0.0.2") for _ in range(HALF_OPEN)]
    try:
        for sock in held:
            sock.sendall(b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline\r\n")  # half a head
        # A burst of connections that finish their requests at once is never counted: many
        # more than the limit, all open at the same moment, are all served.
        burst = [connect(served.port, "127.0.0.2") for _ in range(HALF_OPEN * 5)]
        for sock in burst:
            sock.sendall(b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline\r\nConnection: close\r\n\r\n")
        assert [status_of(read_to_end(sock)[0]) for sock in burst] == [200] * len(burst)
        time.sleep(SLOW_AFTER_SECONDS + 0.3)  # the held ones are slow now, and counted
        # One more that sends nothing is refused as soon as it is slow too (a 429 before the
        # header timeout's 408: a connection that has sent nothing has half of that)...
        answer, ended, took = read_to_end(connect(served.port, "127.0.0.2"))
        assert status_of(answer) == 429 and ended == "closed" and took < HEADER_TIMEOUT, (answer, ended, took)
        assert b"retry-after: 5" in answer.lower()
        # ...while one from the same address that sends its request at once is served.
        assert get(served.port, source="127.0.0.2") == 200
        # Other addresses are served meanwhile, and so is the proxy's (trusted: 127.0.0.1).
        assert get(served.port, source="127.0.0.3") == 200
        assert get(served.port, source="127.0.0.1") == 200
        # One of the held requests finishes: it is served, and its address has room again.
        held[0].sendall(b"Connection: close\r\n\r\n")
        assert status_of(read_to_end(held[0])[0]) == 200
        late = connect(served.port, "127.0.0.2")
        time.sleep(SLOW_AFTER_SECONDS + 0.3)  # slow, but within its address's share now
        late.sendall(b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline\r\nConnection: close\r\n\r\n")
        assert status_of(read_to_end(late)[0]) == 200
    finally:
        for sock in held:
            sock.close()


def test_requests_waiting_for_a_busy_server_are_not_counted_as_slow(served: Served) -> None:
    """When a story breaks, readers behind one address (a carrier's NAT) connect by the
    thousand, and a busy process reads their heads late. Before: past the one-second grace
    their heads, already sent, still unread, counted as slow, and all but the first few were
    refused with 429 (an EventSource gives up for good on it). The process is stopped here
    for longer than the grace, with every head sent, then let go."""
    burst = [connect(served.port, "127.0.0.4") for _ in range(HALF_OPEN * 3)]
    time.sleep(0.5)  # accepted by now: each one's grace has begun
    os.kill(served.server.process.pid, signal.SIGSTOP)
    try:
        for sock in burst:
            sock.sendall(b"GET /api/v1/stories HTTP/1.1\r\nHost: dateline\r\nConnection: close\r\n\r\n")
        time.sleep(SLOW_AFTER_SECONDS + 0.5)  # the grace is over before the process reads a byte
    finally:
        os.kill(served.server.process.pid, signal.SIGCONT)
    assert [status_of(read_to_end(sock)[0]) for sock in burst] == [200] * len(burst)


def test_an_open_live_stream_is_not_cut_by_the_timeouts(served: Served) -> None:
    """Two readers: one as a browser is, one that also starts another request on the
    connection and never finishes it (that request waits for the stream, not the reverse)."""
    request = f"GET /stories/{served.slug}/live HTTP/1.1\r\nHost: dateline\r\nAccept: text/event-stream\r\n\r\n"
    readers = [connect(served.port), connect(served.port)]
    readers[0].sendall(request.encode())
    readers[1].sendall(request.encode() + b"GET /api/v1/stories HTTP/1.1\r\nHost: dat")
    received = [b"", b""]
    watch_until = time.monotonic() + 2 * max(HEADER_TIMEOUT, BODY_TIMEOUT) + 1
    try:
        while time.monotonic() < watch_until:
            for i, sock in enumerate(readers):
                sock.settimeout(0.2)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                assert chunk, f"stream {i} was closed after {len(received[i])} bytes: {received[i][-300:]!r}"
                received[i] += chunk
    finally:
        for sock in readers:
            sock.close()
    for answer in received:
        # No 408 answer after the stream; the bytes "408" alone may be its random `retry:` (4083 ms)
        assert status_of(answer) == 200 and b"HTTP/1.1 408" not in answer
        assert answer.count(b":\n\n") > 2 * max(HEADER_TIMEOUT, BODY_TIMEOUT) - 3, "a heartbeat every second"


# --- item: a body over the limit is a 413 the client reads ---------------------------------


def chunked(data: bytes, size: int = 65536) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_a_body_over_the_limit_gets_a_413_the_client_can_read(served: Served, framing: str, connection: str) -> None:
    body = json.dumps({"headline": "x" * (20 * MAX_REQUEST_BYTES)}).encode()  # sent whole, before reading
    framed = chunked(body) if framing == "chunked" else body
    length = "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {len(body)}"
    sock = connect(served.port)
    sock.sendall(f"POST /api/v1/stories HTTP/1.1\r\nHost: dateline\r\n{served.auth()}Connection: {connection}\r\n"
                 f"Content-Type: application/json\r\n{length}\r\n\r\n".encode() + framed)  # no reset while sending
    answer, ended, _ = read_to_end(sock)
    assert status_of(answer) == 413, answer[:300]
    problem = json.loads(body_of(answer))
    assert problem["status"] == 413 and "1048576 bytes" in problem["detail"]
    assert ended == "closed", ended
    assert get(served.port) == 200


# --- items: HEAD, and photos from phones ---------------------------------------------------


def test_head_answers_every_get_of_the_api_without_a_body(served: Served) -> None:
    for path in ("/api/v1/stories", f"/api/v1/stories/{served.slug}", f"/api/v1/stories/{served.slug}/entries",
                 f"/api/v1/stories/{served.slug}/events", "/api/v1/openapi.json", f"/stories/{served.slug}",
                 "/static/newsroom.js"):
        for encoding in ("identity", "gzip, br"):
            sent = {"Accept-Encoding": encoding}
            got = httpx.get(served.server.base_url + path, headers=sent)
            head = httpx.head(served.server.base_url + path, headers=sent)
            assert (head.status_code, got.status_code) == (200, 200), path
            assert head.content == b"" and head.headers["content-length"] == str(got.num_bytes_downloaded), path
            assert head.headers.get("content-encoding") == got.headers.get("content-encoding"), path
        assert head.headers["content-type"] == got.headers["content-type"], path


def phone_photo() -> bytes:
    """A 12-megapixel JPEG of about 6 MB, like a phone's."""
    noise = Image.frombytes("RGB", (1008, 756), os.urandom(1008 * 756 * 3))
    buffer = io.BytesIO()
    noise.resize((4032, 3024), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_a_phone_photo_of_six_megabytes_is_uploaded(served: Served) -> None:
    photo = phone_photo()
    assert len(photo) > 5 * MAX_REQUEST_BYTES
    answer = httpx.post(served.server.base_url + "/api/v1/uploads",
                        files={"file": ("IMG_0001.jpg", photo, "image/jpeg")},
                        headers={"Authorization": f"Bearer {served.tokens['rita']}"}, timeout=60)
    assert answer.status_code == 201, answer.text
    assert (answer.json()["width"], answer.json()["height"]) == (1600, 1200)


def test_an_ipv6_client_counts_with_its_network() -> None:
    """A client may use any address of its /64: they count as one."""
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"


def test_the_listen_backlog_is_the_setting(sqlite_template: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """`DATELINE_LISTEN_BACKLOG` is the queue of connections the kernel completes for a process
    that has not accepted them yet (the system's default, 2048 in uvicorn, is short for a wave
    of readers): with the process stopped, the kernel completes that many and one more, and
    no more."""
    template, _ = sqlite_template
    shutil.copy(template, tmp_path / "dateline.db")
    backlog = 5
    server = ServerProcess(f"sqlite:///{tmp_path / 'dateline.db'}", None, "--workers", "1",
                           env={"DATELINE_LISTEN_BACKLOG": str(backlog), "DATELINE_BROKER": "none"}).start()
    assert server.process is not None
    waiting: list[socket.socket] = []
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        for _ in range(backlog * 4):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            waiting.append(sock)
        time.sleep(0.5)
        _, completed, _ = select.select([], waiting, [], 0)
        assert len(completed) == backlog + 1, len(completed)  # Linux: the backlog, and one more
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        for sock in waiting:
            sock.close()
        server.stop()
