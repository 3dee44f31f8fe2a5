"""deploy/nginx/dateline.conf, as shipped, started with Debian's nginx in front of two real
nodes on PostgreSQL: readers and the newsroom go through nginx only; one node is killed and
its readers come back through nginx to the other without missing or repeating an event."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, Site, free_port, missing_service
from live_helpers import Api, as_triples
from sse_client import Event, SSEStream, StreamClosed


pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SHIPPED = Path(__file__).parents[2] / "deploy" / "nginx" / "dateline.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    def __init__(self, nodes: list[int]) -> None:
        if not os.path.exists(NGINX):
            missing_service("nginx is not installed (apt-get install nginx)")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dateline-nginx-"))
        site = SHIPPED.read_text()
        for placeholder, port in zip(("127.0.0.1:8001", "127.0.0.1:8002"), nodes, strict=True):
            assert placeholder in site
            site = site.replace(placeholder, f"127.0.0.1:{port}")
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        (self.folder / "dateline.conf").write_text(site)
        temp = {name: self.folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        (self.folder / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n"
            + "".join(f"  {name}_temp_path {path};\n" if name != "body" else f"  client_body_temp_path {path};\n"
                      for name, path in temp.items())
            + f"  include {self.folder}/dateline.conf;\n}}\n"
        )
        self.process = subprocess.Popen([NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode()  # type: ignore[union-attr]
                self.process.stderr.close()  # type: ignore[union-attr]
                raise AssertionError(f"nginx exited: {error}")
            try:
                httpx.get(f"{self.base_url}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def test_the_shipped_nginx_configuration_in_front_of_two_nodes(pg_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATELINE_BROKER", "postgresql")
    monkeypatch.setenv("DATELINE_LIVE_POLL_SECONDS", "30")  # the broker, not the poll
    nodes = [ServerProcess(pg_site.url, None, "--workers", "1") for _ in range(2)]
    proxy: Nginx | None = None
    readers: list[SSEStream] = []
    try:
        for node in nodes:
            node.start()
        proxy = Nginx([n.port for n in nodes])
        health = httpx.get(f"{proxy.base_url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["broker"]["kind"] == "postgresql"
        api = Api(proxy.base_url, pg_site)
        slug = api.story()
        live = f"{proxy.base_url}/stories/{slug}/live"
        readers = [SSEStream(live, headers={"Last-Event-ID": "0"}) for _ in range(6)]  # over both nodes
        got: list[list[Event]] = [[] for _ in readers]
        reconnected = [0] * len(readers)

        def read_until(newest: int) -> None:
            for index, reader in enumerate(readers):
                while not got[index] or got[index][-1].id < newest:
                    try:
                        got[index].append(reader.next_event(timeout=10))
                    except (StreamClosed, OSError):
                        # Its node is gone: the browser reconnects through nginx with its last id.
                        readers[index] = SSEStream(live, headers={"Last-Event-ID": reader.parser.last_event_id})
                        reader.close()
                        reader = readers[index]
                        reconnected[index] += 1

        for i in range(6):
            api.post(slug, f"Before the crash {i}")  # nginx spreads the posts over both nodes
        read_until(api.newest_id(slug))
        nodes[0].kill()
        for i in range(6):
            api.post(slug, f"After the crash {i}")  # nginx skips the dead node
        expected = as_triples(api.events(slug))
        read_until(expected[-1][0])
        for index in range(len(readers)):
            assert as_triples(got[index]) == expected, f"reader {index}"
        assert 0 < sum(1 for n in reconnected if n) < len(readers), reconnected  # the dead node's readers, only
        api.close()
    finally:
        for reader in readers:
            reader.close()
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.stop()
