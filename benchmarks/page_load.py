"""A breaking story's page, asked for by everyone at once: Dateline against the same bytes
served by a bare ASGI app on uvicorn and by nginx, in one run.

    python benchmarks/page_load.py            # 10 s per measurement
    python benchmarks/page_load.py --quick    # 3 s per measurement, under a minute

The story is the demo's, with a full first page of updates (20). Each server gets two
processes (`dateline serve --workers 2`, `uvicorn --workers 2`, nginx `worker_processes 2`),
and `wrk -t2 -c64` runs on the same two cores. Measured:

- the warm page as it is (no `Accept-Encoding`, as wrk asks), and brotli-compressed;
- revalidation: `If-None-Match` with the page's ETag, a 304;
- the catch-up API from the start (`/api/v1/stories/{slug}/events?after=0`), brotli;
- the story's Atom feed, brotli, and a feed reader polling with its ETag (a 304); the embed;
- the references serve the page's uncompressed bytes from memory (uvicorn) or a file (nginx);
- a first load over the wire: the page and every file it links (styles, scripts, icon), as a
  browser asks (`Accept-Encoding: gzip, deflate, br`), headers included; photos excluded.

Prints a table and the ratios the targets are stated in (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
BARE_APP = '''
import os
BODY = open(os.environ["PAGE_FILE"], "rb").read()
HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
'''
NGINX_CONF = '''
worker_processes 2;
daemon off;
pid {scratch}/nginx.pid;
error_log {scratch}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {scratch}/tmp; proxy_temp_path {scratch}/tmp; fastcgi_temp_path {scratch}/tmp;
    uwsgi_temp_path {scratch}/tmp; scgi_temp_path {scratch}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {scratch}/www; default_type text/html; }}
    }}
}}
'''
BROWSER = {"Accept-Encoding": "gzip, deflate, br", "Accept": "text/html,*/*"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                time.sleep(1.0)  # every worker up, not only the first to answer
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def dateline_command() -> list[str]:
    script = Path(sys.executable).parent / "dateline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dateline"]


def start_dateline(scratch: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """`dateline serve` on the demo story with a full first page; returns it and the story's path."""
    from dateline.db import Database
    from dateline.demo import load_sample, seed

    url = f"sqlite:///{scratch / 'dateline.db'}"
    env = {**os.environ, "DATELINE_DATABASE_URL": url, "DATELINE_MEDIA_DIR": str(scratch / "media"),
           "DATELINE_LOG_LEVEL": "warning"}
    subprocess.run([*dateline_command(), "init"], env=env, cwd=scratch, check=True, capture_output=True)
    db = Database(url)
    seeded = seed(db)
    slug, token = seeded.slug, seeded.token
    db.dispose()
    process = subprocess.Popen([*dateline_command(), "serve", "--workers", "2", "--port", str(port)], env=env,
                               cwd=scratch, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/api/v1/stories", process)
    texts = [item["body"] for item in load_sample()["entries"] if item["kind"] == "text"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        for n in range(10):  # 12 from the demo, 10 more: a full first page and a link to older ones
            response = client.post(f"/api/v1/stories/{slug}/entries", json={"body": texts[n % len(texts)]})
            response.raise_for_status()
    return process, f"/stories/{slug}"


def wrk(url: str, seconds: float, *headers: str) -> float:
    args = [a for header in headers for a in ("-H", header)]
    subprocess.run(["wrk", "-t1", "-c8", "-d1s", *args, url], capture_output=True)  # warm
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds:g}s", *args, url], capture_output=True, text=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not found:
        raise RuntimeError(f"wrk printed no rate: {out}")
    return float(found.group(1))


def wire_bytes(response: httpx.Response) -> int:
    """What the response took on the wire: status line, headers, body as sent."""
    head = len(f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n") + 2
    head += sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    return head + response.num_bytes_downloaded


FIRST_LOAD_BUDGET = 20_000  # bytes on the wire for a story page and what it links (issue target: 20 KB)


def first_load(base: str, path: str) -> dict[str, int]:
    """The page and what it links, compressed as a browser asks; and the same uncompressed."""
    found = {"wire": 0, "wire_identity": 0, "files": 0}
    with httpx.Client(base_url=base) as client:
        page = client.get(path, headers=BROWSER)
        links = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js|svg))"', page.text)))
        for link in [path, *links]:
            found["wire"] += wire_bytes(client.get(link, headers=BROWSER))
            found["wire_identity"] += wire_bytes(client.get(link, headers={"Accept-Encoding": "identity"}))
        found["files"] = len(links)
        found["page"] = wire_bytes(page)
        found["page_identity"] = len(client.get(path, headers={"Accept-Encoding": "identity"}).content)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        port = free_port()
        dateline, path = start_dateline(scratch, port)
        base = f"http://127.0.0.1:{port}"
        try:
            page = httpx.get(base + path, headers={"Accept-Encoding": "identity"})
            etag = page.headers["etag"]
            (scratch / "page.html").write_bytes(page.content)
            load = first_load(base, path)
            rows.append(("dateline: page", wrk(base + path, seconds)))
            rows.append(("dateline: page, brotli", wrk(base + path, seconds, "Accept-Encoding: br")))
            rows.append(("dateline: revalidated (304)", wrk(base + path, seconds, f"If-None-Match: {etag}")))
            catch_up = base + path.replace("/stories/", "/api/v1/stories/") + "/events?after=0"
            rows.append(("dateline: catch-up API, after=0, brotli", wrk(catch_up, seconds, "Accept-Encoding: br")))
            feed = base + path + "/feed.atom"
            feed_etag = httpx.get(feed).headers["etag"]
            rows.append(("dateline: Atom feed, brotli", wrk(feed, seconds, "Accept-Encoding: br")))
            rows.append(("dateline: Atom feed revalidated (304)", wrk(feed, seconds, f"If-None-Match: {feed_etag}")))
            rows.append(("dateline: embed, brotli", wrk(base + path + "/embed", seconds, "Accept-Encoding: br")))
        finally:
            stop(dateline)

        (scratch / "bare_page.py").write_text(textwrap.dedent(BARE_APP))
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_page:app", "--workers", "2", "--port", str(port),
             "--no-access-log", "--log-level", "warning"],
            cwd=scratch, env={**os.environ, "PAGE_FILE": str(scratch / "page.html")}, start_new_session=True)
        try:
            wait_up(f"http://127.0.0.1:{port}/", bare)
            rows.append(("bare ASGI app on uvicorn: the same bytes", wrk(f"http://127.0.0.1:{port}/", seconds)))
        finally:
            stop(bare)

        if shutil.which("nginx"):
            (scratch / "www").mkdir()
            (scratch / "tmp").mkdir()
            shutil.copy(scratch / "page.html", scratch / "www" / "index.html")
            port = free_port()
            (scratch / "nginx.conf").write_text(NGINX_CONF.format(scratch=scratch, port=port))
            nginx = subprocess.Popen(["nginx", "-c", str(scratch / "nginx.conf"), "-p", str(scratch)],
                                     start_new_session=True, stderr=subprocess.DEVNULL)
            try:
                wait_up(f"http://127.0.0.1:{port}/", nginx)
                rows.append(("nginx: the same bytes, from a file", wrk(f"http://127.0.0.1:{port}/", seconds)))
            finally:
                stop(nginx)

    rates = dict(rows)
    bare_rate = rates["bare ASGI app on uvicorn: the same bytes"]
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"wrk -t2 -c64 -d{seconds:g}s; each server 2 processes; page {load['page_identity']:,} bytes")
    print(f"{'what':44} {'requests/s':>12} {'of bare uvicorn':>16}")
    for name, rate in rows:
        print(f"{name:44} {rate:12,.0f} {rate / bare_rate:15.0%}")
    print(f"first load (page + {load['files']} files, no photo), as a browser asks: {load['wire']:,} bytes on the wire "
          f"(the page {load['page']:,}); uncompressed {load['wire_identity']:,}; "
          f"{'within' if load['wire'] <= FIRST_LOAD_BUDGET else 'OVER'} the budget of {FIRST_LOAD_BUDGET:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
