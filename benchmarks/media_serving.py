"""How fast one server process serves an uploaded photo: from the folder, from the database.

    python benchmarks/media_serving.py [--seconds 10] [--connections 32] [--database URL]

Sets up a scratch site (SQLite, or `--database`, an empty PostgreSQL database of your own:
it is initialised and written to), uploads one photo (a 1600-pixel-wide JPEG), starts
`dateline serve --workers 1` with DATELINE_MEDIA_STORE=folder, then again with `database`
(the photo copied in with `dateline media import`), and has wrk fetch the 960-pixel variant
over and over, warm: the database store answers from its in-process cache. Plain GETs, then
revalidations (If-None-Match, answered 304). Prints one table. Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image, ImageFilter

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "dateline", *args], env=env, input=stdin,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _photo() -> bytes:
    """A photo-like JPEG: smooth gradients with some grain, as a camera's picture compresses."""
    width, height = 2400, 1600
    grain = Image.effect_noise((width // 4, height // 4), 40).resize((width, height))
    grain = grain.filter(ImageFilter.GaussianBlur(2))
    image = Image.merge("RGB", (Image.linear_gradient("L").resize((width, height)), grain,
                                Image.radial_gradient("L").resize((width, height))))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dateline", "serve", "--workers", "1", "--port", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                if httpx.get(self.base + "/api/v1/stories", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


def _wrk(url: str, seconds: int, connections: int, *headers: str) -> tuple[float, float]:
    """(requests/s, p99 ms) of wrk at `url`."""
    extra = [a for h in headers for a in ("-H", h)]
    subprocess.run(["wrk", "-t1", "-c8", "-d1s", *extra, url], capture_output=True, check=True)  # warm
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
                         capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or p99 is None or errors:
        raise RuntimeError(f"wrk: {out}")
    return float(rps[1]), float(p99[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99[2]]


def _measure(env: dict[str, str], path: str, seconds: int, connections: int) -> dict[str, float]:
    server = Server(env)
    try:
        first = httpx.get(server.base + path)
        first.raise_for_status()
        etag = first.headers["etag"]
        assert httpx.get(server.base + path, headers={"If-None-Match": etag}).status_code == 304
        rps, p99 = _wrk(server.base + path, seconds, connections)
        rps_304, p99_304 = _wrk(server.base + path, seconds, connections, f"If-None-Match: {etag}")
    finally:
        server.stop()
    return {"bytes": len(first.content), "rps": rps, "p99": p99, "rps_304": rps_304, "p99_304": p99_304}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database", help="an empty PostgreSQL database to use instead of scratch SQLite")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("media_serving.py needs wrk: apt-get install wrk")

    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATELINE_")}
        env.update(DATELINE_DATABASE_URL=options.database or f"sqlite:///{Path(scratch) / 'site.db'}",
                   DATELINE_LOG_LEVEL="warning", DATELINE_MEDIA_DIR=str(Path(scratch) / "media"),
                   DATELINE_MEDIA_STORE="folder")
        _run(env, "init")
        _run(env, "user", "add", "eve", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n")
        token = _run(env, "token", "create", "eve")
        server = Server(env)
        try:
            answer = httpx.post(server.base + "/api/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                                files={"file": ("photo.jpg", _photo(), "image/jpeg")}, timeout=60)
            answer.raise_for_status()
        finally:
            server.stop()
        path = next(p.split()[0] for p in answer.json()["srcset"].split(", ") if p.endswith(" 960w"))
        print(_run(env, "media", "import"), file=sys.stderr)
        results = {store: _measure({**env, "DATELINE_MEDIA_STORE": store}, path, options.seconds, options.connections)
                   for store in ("folder", "database")}

    database = "PostgreSQL" if options.database else "SQLite"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"# {path.rsplit('/', 1)[1]} ({results['folder']['bytes']:,} bytes), one server process, "
          f"wrk -t1 -c{options.connections} -d{options.seconds}s, {database}; "
          f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}")
    head = f"{'store':18} {'GET req/s':>10} {'p99 ms':>8} {'304 req/s':>10} {'p99 ms':>8}"
    print(head)
    print("-" * len(head))
    for store, r in results.items():
        label = "database (cache)" if store == "database" else store
        print(f"{label:18} {r['rps']:>10,.0f} {r['p99']:>8.1f} {r['rps_304']:>10,.0f} {r['p99_304']:>8.1f}")

if __name__ == "__main__":
    main()
