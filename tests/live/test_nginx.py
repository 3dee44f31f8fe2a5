"""deploy/nginx/dateline.conf, as shipped, started with Debian's nginx in front of two real
nodes on PostgreSQL: readers and the newsroom go through nginx only; one node is killed and
its readers come back through nginx to the other without missing or repeating an event. And
deploy/nginx/dateline-tls.conf with a certificate made for the test: HTTP goes to HTTPS, and
the live stream works over HTTP/2."""

from __future__ import annotations

import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, Site, free_port, missing_service
from live_helpers import Api, as_triples, fault_figures, fault_seed
from sse_client import Event, SSEStream, StreamClosed


pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEPLOY = Path(__file__).parents[2] / "deploy" / "nginx"
SHIPPED = DEPLOY / "dateline.conf"
SNIPPET = "/etc/nginx/snippets/dateline-proxy.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    def __init__(self, nodes: list[int], shipped: Path = SHIPPED, changes: dict[str, str] | None = None) -> None:
        if not os.path.exists(NGINX):
            missing_service("nginx is not installed (apt-get install nginx)")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dateline-nginx-"))
        site = shipped.read_text()
        changes = {**({"listen 8080;": f"listen 127.0.0.1:{{port}};"} if "listen 8080;" in site else {}),
                   **(changes or {}),
                   SNIPPET: str(self.folder / "dateline-proxy.conf")}
        changes.update({f"127.0.0.1:{8000 + n}": f"127.0.0.1:{port}" for n, port in enumerate(nodes, 1)})
        for shipped_text, here in changes.items():
            assert shipped_text in site, shipped_text
            site = site.replace(shipped_text, here.replace("{port}", str(self.port)))
        shutil.copy(DEPLOY / "snippets" / "dateline-proxy.conf", self.folder)
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
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
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

        seed = fault_seed()
        rng = random.Random(seed)
        for i in range(rng.randint(2, 10)):  # the crash comes at a random moment of the story
            api.post(slug, f"Before the crash {i}")  # nginx spreads the posts over both nodes
        read_until(api.newest_id(slug))
        nodes[0].kill()
        for i in range(6):
            api.post(slug, f"After the crash {i}")  # nginx skips the dead node
        expected = as_triples(api.events(slug))
        read_until(expected[-1][0])
        fault_figures("nginx, a node killed", seed, expected, [as_triples(g) for g in got])
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


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for the test."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "live.example.org")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_shipped_tls_configuration_serves_the_stream_over_http2(
    pg_site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATELINE_BROKER", "postgresql")
    nodes = [ServerProcess(pg_site.url, None, "--workers", "1") for _ in range(2)]
    cert, key = certificate(tmp_path)
    plain = free_port()
    live_cert = "/etc/letsencrypt/live/live.example.org/"
    proxy: Nginx | None = None
    try:
        for node in nodes:
            node.start()
        proxy = Nginx([n.port for n in nodes], DEPLOY / "dateline-tls.conf", {
            "listen 80;": f"listen 127.0.0.1:{plain};", "listen 443 ssl http2;": "listen 127.0.0.1:{port} ssl http2;",  # {port}: the test's
            live_cert + "fullchain.pem": str(cert), live_cert + "privkey.pem": str(key),
        })
        https = f"https://127.0.0.1:{proxy.port}"
        moved = httpx.get(f"http://127.0.0.1:{plain}/stories/x", headers={"Host": "live.example.org"})
        assert moved.status_code == 301 and moved.headers["location"] == "https://live.example.org/stories/x"
        with httpx.Client(base_url=https, http2=True, verify=ssl.create_default_context(cafile=str(cert)),
                      timeout=15) as client:
            health = client.get("/healthz")
            assert health.http_version == "HTTP/2" and health.status_code == 200
            assert health.headers["strict-transport-security"] == "max-age=31536000"
            api = Api(https, pg_site)
            api.http = client
            slug = api.story()
            posted = [api.post(slug, f"Over HTTPS {n}") for n in range(3)]
            with client.stream("GET", f"/stories/{slug}/live", headers={"Last-Event-ID": "0"}) as stream:
                assert stream.http_version == "HTTP/2"
                assert stream.headers["content-type"].startswith("text/event-stream")
                later = api.post(slug, "Posted while the stream is open")  # passed on at once, not buffered
                seen = ""
                for text in stream.iter_text():
                    seen += text
                    if f'"id":{later["id"]},' in seen:
                        break
            for entry in [*posted, later]:
                assert seen.count(f'"body":"{entry["body"]}"') == 1
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.stop()
