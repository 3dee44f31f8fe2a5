"""The servers under test, each started the way its operator would, on 127.0.0.1.

- `Dateline`: `dateline init`, `dateline user add`, `dateline token create`, then
  `dateline serve --workers K` on SQLite in a scratch folder; posts go through the JSON API.
- `SseStarlette`: the usual Python SSE server (`peer_starlette.py`): Starlette and
  sse-starlette, an asyncio.Queue per reader, under `uvicorn --workers K`; the workers hear
  each post through Redis pub/sub (127.0.0.1:6379).
- `Nchan`: nginx with the Nchan module (Debian's libnginx-mod-nchan), K worker processes,
  a private configuration; posts go to its publisher location.

All three send the same frame for an update, `id: …\nevent: entry.created\ndata: {json}\n\n`,
with the same JSON (the peers get a copy of the entry Dateline would send), so the load
client measures each the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, ClassVar

import httpx

from procstats import descendants

HERE = Path(__file__).resolve().parent
SLUG = "bench"
NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
REDIS = ("127.0.0.1", 6379)
LISTEN_BACKLOG = 2048  # uvicorn's default; nginx gets the same


class Unavailable(Exception):
    """Something a server needs is not installed or not running: skip it, with this reason."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def marker(seq: int, sent_ns: int) -> str:
    """What the load client looks for in a frame: the update's number and when it was posted."""
    return f"zq{seq}x{sent_ns}qz"


def entry_json(seq: int, text: str) -> str:
    """The JSON of a text entry as Dateline's API returns it, for the peers to send."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps({
        "id": seq, "story": SLUG, "kind": "text", "body": text, "html": f"<p>{text}</p>",
        "author": {"username": "bench", "name": "bench"}, "published_at": stamp, "updated_at": stamp,
        "revision": 1, "pinned": False, "key_event": False, "status": "published", "correction": "",
    }, separators=(",", ":"))


class Server:
    name: ClassVar[str]
    host = "127.0.0.1"

    def __init__(self, workers: int, scratch: Path) -> None:
        self.workers = workers
        self.scratch = scratch / self.name
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://{self.host}:{self.port}", timeout=30)
        self.settings: dict[str, object] = {"workers": workers}

    @property
    def stream_path(self) -> str:
        return f"/stories/{SLUG}/live"

    def start(self) -> None:
        raise NotImplementedError

    def publish(self, seq: int) -> None:
        """Post update `seq` (stamped with the wall clock now) and wait for the server's answer."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        assert self.process is not None
        return descendants(self.process.pid)

    def worker_pids(self) -> list[int]:
        """The processes that hold readers (not the supervisor or master)."""
        assert self.process is not None
        return [pid for pid in self.pids() if pid != self.process.pid]

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.log = open(self.scratch / "server.log", "wb")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=self.scratch)

    def _wait_until_up(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            try:
                if self.http.get(path, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.name} did not start in {timeout} s: {self.log_tail()}")
        # Every worker must be running before readers arrive, not only the first to answer.
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)

    def restarts(self) -> int:
        """Worker processes that died and were replaced during the run (uvicorn's supervisor
        kills a worker that does not answer its ping for 5 s; nginx's master restarts one
        that crashed)."""
        try:
            text = (self.scratch / "server.log").read_text(errors="replace")
            text += (self.scratch / "error.log").read_text(errors="replace") if (self.scratch / "error.log").exists() else ""
        except OSError:
            return 0
        return text.count("] died") + text.count("exited on signal")

    def log_tail(self, size: int = 3000) -> str:
        try:
            return (self.scratch / "server.log").read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        self.http.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self.log is not None:
            self.log.close()


class Dateline(Server):
    name = "dateline"

    def __init__(self, workers: int, scratch: Path, max_streams: int) -> None:
        super().__init__(workers, scratch)
        self.max_streams = max_streams
        self.token = ""
        self.settings.update(max_streams=max_streams, database="sqlite (WAL, synchronous=FULL)")

    def _command(self) -> list[str]:
        script = Path(sys.executable).parent / "dateline"
        return [str(script)] if script.exists() else [sys.executable, "-m", "dateline"]

    def start(self) -> None:
        env = {
            **os.environ,
            "DATELINE_DATABASE_URL": f"sqlite:///{self.scratch / 'dateline.db'}",
            "DATELINE_MEDIA_DIR": str(self.scratch / "media"),
            # The one setting an operator must raise for this audience: the default (15,000
            # per process) is below what a process can hold here (20,000 open files).
            "DATELINE_MAX_STREAMS": str(self.max_streams),
        }
        dateline = self._command()

        def run(*args: str) -> str:
            done = subprocess.run([*dateline, *args], env=env, cwd=self.scratch, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"dateline {' '.join(args)} failed: {done.stderr.strip()}")
            return done.stdout.strip()

        run("init")
        run("user", "add", "bench", "--role", "editor")
        self.token = run("token", "create", "bench")
        self._spawn(self.serve_command(dateline), env)
        self._wait_until_up("/api/v1/stories")
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.post("/api/v1/stories", json={"headline": "Fan-out benchmark", "slug": SLUG,
                                                           "status": "live"})
        if response.status_code != 201:
            raise RuntimeError(f"cannot create the story: {response.status_code} {response.text}")

    def serve_command(self, dateline: list[str]) -> list[str]:
        return [*dateline, "serve", "--workers", str(self.workers), "--port", str(self.port)]

    def publish(self, seq: int) -> None:
        text = marker(seq, time.time_ns())
        response = self.http.post(f"/api/v1/stories/{SLUG}/entries", json={"kind": "text", "body": text})
        if response.status_code != 201:
            raise RuntimeError(f"post {seq} refused: {response.status_code} {response.text}")


class DatelineOn(Dateline):
    """The same app (`create_app`, the same settings from the environment) under another ASGI
    server: what the readers' stream costs through ASGI `send`, without `dateline serve`'s
    protocol of its own (live/connection.py). The choice of that protocol rests on these."""

    COMMANDS: ClassVar[dict[str, list[str]]] = {
        # uvicorn's own httptools protocol: the ASGI stream, written straight to the socket
        "dateline-uvicorn": ["-m", "uvicorn", "dateline.app:create_app", "--factory", "--http", "httptools",
                             "--no-access-log", "--log-level", "warning", "--no-server-header",
                             "--timeout-worker-healthcheck", "30", "--workers", "{workers}", "--port", "{port}"],
        "dateline-granian": ["-m", "granian", "--interface", "asgi", "--factory", "--workers", "{workers}",
                             "--port", "{port}", "--no-ws", "--log-level", "warning", "--backlog", "65535",
                             "--backpressure", "20000", "dateline.app:create_app"],  # its default: 512 requests a worker
        "dateline-hypercorn": ["-m", "hypercorn", "--workers", "{workers}", "--bind", "127.0.0.1:{port}",
                               "--log-level", "warning", "--worker-class", "uvloop", "dateline.app:create_app()"],
    }

    def __init__(self, name: str, workers: int, scratch: Path, max_streams: int) -> None:
        self.name = name  # type: ignore[misc]  # the base class names the scratch folder by it
        super().__init__(workers, scratch, max_streams)
        self.settings.update(asgi_server=name.removeprefix("dateline-"))

    def serve_command(self, dateline: list[str]) -> list[str]:
        module = self.COMMANDS[self.name][1]
        if importlib.util.find_spec(module) is None:
            raise Unavailable(f"{module} is not installed (pip install {module})")
        return [sys.executable, *(a.format(workers=self.workers, port=self.port) for a in self.COMMANDS[self.name])]


class SseStarlette(Server):
    name = "sse-starlette"

    def __init__(self, workers: int, scratch: Path) -> None:
        super().__init__(workers, scratch)
        self.channel = f"fanout-bench-{os.getpid()}-{self.port}"
        self.settings.update(fan_in="redis pub/sub", queue="asyncio.Queue per reader")

    def start(self) -> None:
        try:
            import redis
            import sse_starlette  # noqa: F401 - only to tell what is missing
        except ImportError as exc:
            raise Unavailable(f"{exc.name} is not installed (pip install sse-starlette redis)") from None
        try:
            self._redis = redis.Redis(*REDIS)
            self._redis.ping()
        except redis.RedisError as exc:
            raise Unavailable(f"Redis is not reachable at {REDIS[0]}:{REDIS[1]} ({exc})") from None
        env = {**os.environ, "FANOUT_PEER_CHANNEL": self.channel,
               "FANOUT_PEER_REDIS": f"redis://{REDIS[0]}:{REDIS[1]}/0"}
        self._spawn([sys.executable, "-m", "uvicorn", "peer_starlette:app", "--app-dir", str(HERE),
                     "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
                     "--backlog", str(LISTEN_BACKLOG)], env)
        self._wait_until_up("/health")
        # A worker not yet subscribed would miss posts: wait for all of them.
        deadline = time.monotonic() + 30
        while self._subscribers() < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self._subscribers()} of {self.workers} workers subscribed to Redis")
            time.sleep(0.1)

    def _subscribers(self) -> int:
        return int(dict(self._redis.pubsub_numsub(self.channel)).get(self.channel.encode(), 0))

    def publish(self, seq: int) -> None:
        data = entry_json(seq, marker(seq, time.time_ns()))
        response = self.http.post(f"/publish/{SLUG}", params={"id": seq, "event": "entry.created"}, content=data)
        if response.status_code != 202:
            raise RuntimeError(f"post {seq} refused: {response.status_code} {response.text}")

    def stop(self) -> None:
        super().stop()
        if hasattr(self, "_redis"):
            self._redis.close()


NGINX_CONF = """\
load_module {module};
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
master_process on;

events {{
    worker_connections {connections};
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_body_buffer_size 64k;
    nchan_shared_memory_size 256M;

    server {{
        # reuseport: one listening socket per worker, the kernel spreads connections evenly
        # (with one shared socket a worker took all it could, then refused the rest).
        listen 127.0.0.1:{port} backlog={backlog} reuseport;

        location = /health {{
            return 200 "ok";
        }}

        location ~ ^/stories/([^/]+)/live$ {{
            nchan_subscriber eventsource;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
            nchan_eventsource_event entry.created;
            nchan_eventsource_ping_interval 15;  # as Dateline's heartbeat and sse-starlette's ping
        }}

        location ~ ^/pub/([^/]+)$ {{
            nchan_publisher;
            nchan_channel_id $1;
            nchan_message_buffer_length 100;
            nchan_message_timeout 10m;
        }}
    }}
}}
"""


class Nchan(Server):
    name = "nchan"

    def start(self) -> None:
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if nginx is None or not NGINX_MODULE.exists():
            raise Unavailable("nginx with the Nchan module is not installed "
                              "(apt-get install nginx-light libnginx-mod-nchan)")
        conf = self.scratch / "nginx.conf"
        nofile = max(20_000, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # as `dateline serve` takes
        conf.write_text(NGINX_CONF.format(module=NGINX_MODULE, workers=self.workers, prefix=self.scratch,
                                          port=self.port, backlog=LISTEN_BACKLOG, nofile=nofile,
                                          connections=nofile - 200))
        self._spawn([nginx, "-p", str(self.scratch), "-c", str(conf), "-e", str(self.scratch / "error.log")])
        self._wait_until_up("/health")

    def publish(self, seq: int) -> None:
        data = entry_json(seq, marker(seq, time.time_ns()))
        response = self.http.post(f"/pub/{SLUG}", content=data, headers={"Accept": "text/json"})
        if response.status_code not in (201, 202):
            raise RuntimeError(f"post {seq} refused: {response.status_code} {response.text}")


class Floor(Server):
    """A bare uvloop protocol (floor_server.py): what accepting a reader costs when Python
    does nothing but answer the head and hold the connection. For accept.py only."""

    name = "floor"
    reuseport = False

    def start(self) -> None:
        self._spawn([sys.executable, str(HERE / "floor_server.py"), str(self.port), str(self.workers),
                     *(["--reuseport"] if self.reuseport else [])])
        self._wait_until_up("/health")


class FloorReuseport(Floor):
    name = "floor-reuseport"
    reuseport = True
