"""A push service on loopback that behaves as RFC 8030 says, for tests and the benchmark.

Browsers here cannot reach a real push service, so this one plays its part: it hands out
subscriptions (an endpoint, and the keys a browser would make), takes `POST /push/<token>`,
checks the VAPID token (RFC 8292: an ES256 JWT whose `aud` is this origin, `exp` within
24 h, a `sub`) and the RFC 8030 headers, and decrypts each message with the subscription's
private key using `http_ece`, an implementation independent of Dateline's. Subscriptions can
be told to misbehave: `gone` answers 410, `throttled` answers 429 with Retry-After once,
`flaky` answers 503 once. With `tls=True` it serves https with a certificate of its own
(`cafile`), and speaks HTTP/2 to clients that offer it (ALPN), as real push services do.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import http_ece
import uvloop
from hyperframe.frame import GoAwayFrame
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser keeps for one subscription: the private key and the auth secret."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes
    behaviour: str = "ok"
    answered: int = 0
    first_answered_at: float = 0.0  # time.time() of the first answer

    @classmethod
    def new(cls, behaviour: str = "ok") -> "Browser":
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16), behaviour)

    @classmethod
    def from_pem(cls, pem: str, auth: str) -> "Browser":
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(key, unb64u(auth))

    def pem(self) -> str:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def public(self) -> str:
        return b64u(self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    def auth_b64(self) -> str:
        return b64u(self.auth)


@dataclass
class Delivery:
    token: str
    headers: dict[str, str]
    message: dict[str, Any] | None  # the decrypted JSON (None when not checked: sampling)
    at: float = field(default_factory=time.time)


class PushService:
    def __init__(self, verify_every: int = 1, retry_after: str = "1", delay: float = 0.0,
                 tls: bool = False, http2: bool = True, certificate_dir: str | None = None,
                 max_streams: int = 100, goaway_after: int = 0, strict_http2: bool = True) -> None:
        self.tls = tls
        # HTTP/2: h2 checks every header a client sends, as a strict service would. The
        # benchmark turns that off (the tests check the same client with it on): on the
        # benchmark's shared cores it was half of the service's CPU.
        self.strict_http2 = strict_http2
        self.max_streams = max_streams  # HTTP/2: the SETTINGS_MAX_CONCURRENT_STREAMS it sends
        self.goaway_after = goaway_after  # HTTP/2: a GOAWAY after this many requests on a connection
        self.in_flight = self.max_in_flight = 0  # requests received and not yet answered
        self.max_in_flight_per_connection = 0
        self.http2 = http2
        self.certificate_dir = certificate_dir
        self.cafile = ""
        self.protocols: Counter[str] = Counter()  # connections by protocol: "h2", "http/1.1"
        self.verify_every = verify_every  # the benchmark checks a sample; tests check all
        self.delay = delay  # seconds before each answer: a slow service, or a long fan-out
        self.retry_after = retry_after
        self.held: list[tuple[Any, tuple[Any, ...]]] | None = None  # answers kept back while held (`hold`)
        self.browsers: dict[str, Browser] = {}
        self.deliveries: dict[str, list[Delivery]] = defaultdict(list)
        self.requests = 0
        self.errors: list[str] = []  # anything a real push service would refuse
        self.connections: set[asyncio.Transport] = set()
        self.vapid_public_key: str | None = None  # when set, `k` must be this key
        self.ready: Any = None  # serve_forever sets it (a threading or multiprocessing Event) once listening
        self.accept_any: Browser | None = None  # the benchmark: any token is a browser with these keys
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.origin = ""

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, behaviour: str = "ok", browser: Browser | None = None) -> dict[str, Any]:
        """A `PushSubscription` JSON, as `PushManager.subscribe()` would give a page. Passing
        `browser` shares its keys (making 100,000 key pairs takes a while)."""
        token = os.urandom(12).hex()
        shared = browser or Browser.new()
        self.browsers[token] = Browser(shared.key, shared.auth, behaviour)
        return {"endpoint": f"{self.origin}/push/{token}",
                "keys": {"p256dh": self.browsers[token].public(), "auth": b64u(shared.auth)}}

    def messages(self, subscription: dict[str, Any]) -> list[dict[str, Any] | None]:
        return [d.message for d in self.deliveries[subscription["endpoint"].rsplit("/", 1)[1]]]

    # --- running ---------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        """A self-signed certificate for 127.0.0.1; clients trust it through `cafile`."""
        if not self.tls:
            return None
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test push service")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256())
        )
        folder = self.certificate_dir or tempfile.mkdtemp(prefix="push-service-")
        self.cafile = os.path.join(folder, "cert.pem")
        keyfile = os.path.join(folder, "key.pem")
        with open(self.cafile, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(keyfile, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cafile, keyfile)
        context.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a client needs to trust this service."""
        return ssl.create_default_context(cafile=self.cafile)

    def start(self) -> "PushService":
        ready = threading.Event()
        context = self._tls_context()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Protocol(self), "127.0.0.1", 0, backlog=1024, ssl=context))
            self.port = self._server.sockets[0].getsockname()[1]
            self.origin = f"{'https' if context else 'http'}://127.0.0.1:{self.port}"
            ready.set()
            self._loop.run_forever()
            for connection in list(self.connections):
                connection.close()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="push-service", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def serve_forever(self, port: int = 0) -> None:
        """Run in this thread (the benchmark runs the service in a process of its own);
        `ready` is set once it listens."""
        context = self._tls_context()

        async def main() -> None:
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Protocol(self), "127.0.0.1", port, backlog=4096, ssl=context)
            if self.ready is not None:
                self.ready.set()
            await self._server.serve_forever()
        uvloop.run(main())  # the push service's own CPU is not what is measured: keep it small

    def hold(self) -> None:
        """Keep every answer back until `release()`, as a stalled service would: a sender's
        requests stay in flight, and its batch stays claimed, for as long as a test needs."""
        self.held = []

    def release(self) -> None:
        """Send the answers kept back, and answer as usual from now on."""
        assert self._loop is not None

        def flush() -> None:
            held, self.held = self.held or [], None
            for action, args in held:
                action(*args)
        self._loop.call_soon_threadsafe(flush)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # --- one request -----------------------------------------------------------------------

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]]]:
        self.requests += 1
        token = path.rsplit("/", 1)[-1]
        browser = self.browsers.get(token)
        if browser is None and self.accept_any is not None:
            browser = self.browsers[token] = Browser(self.accept_any.key, self.accept_any.auth)
        if not path.startswith("/push/") or browser is None:
            return 404, []
        browser.answered += 1
        if browser.answered == 1:
            browser.first_answered_at = time.time()
        if browser.behaviour == "gone":
            return 410, []
        if browser.behaviour == "throttled" and browser.answered == 1:
            return 429, [("Retry-After", self.retry_after)]
        if browser.behaviour == "flaky" and browser.answered == 1:
            return 503, [("Retry-After", self.retry_after)]
        problem = self._check_headers(headers, len(body))
        message = None
        if problem is None and self.requests % self.verify_every == 0:
            problem = self._check_vapid(headers.get("authorization", ""))
            if problem is None:
                try:
                    plain = http_ece.decrypt(body, private_key=browser.key, auth_secret=browser.auth,
                                             version="aes128gcm")
                    message = json.loads(plain)
                except Exception as exc:  # noqa: BLE001 - anything undecryptable is refused
                    problem = f"cannot decrypt: {exc!r}"
        if problem is not None:
            self.errors.append(problem)
            return (401 if "VAPID" in problem else 400), []
        self.deliveries[token].append(Delivery(token, headers, message))
        return 201, [("Location", f"{self.origin}/message/{token}-{self.requests}")]

    @staticmethod
    def _check_headers(headers: dict[str, str], length: int) -> str | None:
        if not headers.get("ttl", "").isdigit():
            return "TTL header missing"
        if headers.get("content-encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm"
        if headers.get("urgency", "normal") not in ("very-low", "low", "normal", "high"):
            return "bad Urgency"
        topic = headers.get("topic")
        if topic is not None and (len(topic) > 32 or not all(c.isalnum() or c in "-_" for c in topic)):
            return "bad Topic"
        if length > 4096:
            return "message larger than 4096 bytes"
        return None

    def _check_vapid(self, authorization: str) -> str | None:
        if not authorization.startswith("vapid "):
            return "VAPID: no `vapid` Authorization"
        params = dict(part.strip().split("=", 1) for part in authorization[6:].split(","))
        token, key = params.get("t", ""), params.get("k", "")
        if self.vapid_public_key is not None and key != self.vapid_public_key:
            return "VAPID: k is not the key the subscription was made with"
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(key))
            signature = unb64u(signature_b64)
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
            header = json.loads(unb64u(header_b64))
            claims = json.loads(unb64u(claims_b64))
        except (ValueError, InvalidSignature) as exc:
            return f"VAPID: bad token ({exc.__class__.__name__})"
        now = time.time()
        if header.get("alg") != "ES256":
            return "VAPID: alg is not ES256"
        if claims.get("aud") != self.origin:
            return f"VAPID: aud {claims.get('aud')!r} is not {self.origin!r}"
        if not now < claims.get("exp", 0) <= now + 24 * 3600:
            return "VAPID: exp not within 24 hours"
        if not claims.get("sub"):
            return "VAPID: no sub"
        return None


class _Protocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive (requests carry a Content-Length, as push requests do), or
    HTTP/2 when TLS negotiated it."""

    def __init__(self, service: PushService) -> None:
        self.service = service
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.h2: h2.connection.H2Connection | None = None
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.received = 0  # requests on this connection
        self.waiting = 0  # ... not answered yet
        self.last_stream_id: int | None = None  # set once it has sent a GOAWAY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.service.connections.add(self.transport)  # type: ignore[arg-type]
        tls = transport.get_extra_info("ssl_object")
        if tls is not None and tls.selected_alpn_protocol() == "h2":
            strict = self.service.strict_http2
            self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
                client_side=False, header_encoding="utf-8", validate_inbound_headers=strict,
                normalize_inbound_headers=strict, validate_outbound_headers=strict, normalize_outbound_headers=strict))
            # In its first SETTINGS, as a real service sends them.
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.service.max_streams})
            self.h2.initiate_connection()
            self.transport.write(self.h2.data_to_send())  # type: ignore[union-attr]
        self.service.protocols["h2" if self.h2 else "http/1.1"] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.connections.discard(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            return self._h2_received(data)
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            path = lines[0].split(" ")[1]
            status, extra = self.service.handle(path, headers, body)
            reply = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in extra)
            self._later(self._write, reply.encode() + b"\r\n")

    def _h2_received(self, data: bytes) -> None:
        assert self.h2 is not None and self.transport is not None
        answers: list[tuple[int, int, list[tuple[str, str]]]] = []  # answered together, after the delay
        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = ({str(k): str(v) for k, v in event.headers}, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                headers, body = self.streams.pop(event.stream_id)
                if self.last_stream_id is not None and event.stream_id > self.last_stream_id:
                    continue  # after its GOAWAY: never acted on, as the GOAWAY said
                status, extra = self.service.handle(headers.get(":path", ""), headers, bytes(body))
                self._count(+1)
                answers.append((event.stream_id, status, extra))
                self.received += 1
                if self.received == self.service.goaway_after:
                    # Written by hand: h2 would refuse to send the answers it still owes.
                    self.last_stream_id = event.stream_id
                    self.transport.write(GoAwayFrame(0, last_stream_id=event.stream_id, error_code=0).serialize())
        self.transport.write(self.h2.data_to_send())
        if answers:
            self._later(self._h2_answer, answers)

    def _count(self, change: int) -> None:
        self.waiting += change
        self.service.in_flight += change
        self.service.max_in_flight = max(self.service.max_in_flight, self.service.in_flight)
        self.service.max_in_flight_per_connection = max(self.service.max_in_flight_per_connection, self.waiting)

    def _h2_answer(self, answers: list[tuple[int, int, list[tuple[str, str]]]]) -> None:
        self._count(-len(answers))
        if self.h2 is None or self.transport is None or self.transport.is_closing():
            return
        for stream_id, status, extra in answers:
            self.h2.send_headers(stream_id, [(":status", str(status)), *((k.lower(), v) for k, v in extra)],
                                 end_stream=True)
        self.transport.write(self.h2.data_to_send())

    def _later(self, action, *args) -> None:  # type: ignore[no-untyped-def]
        if self.service.held is not None:
            self.service.held.append((action, args))
        elif self.service.delay:
            asyncio.get_running_loop().call_later(self.service.delay, action, *args)
        else:
            action(*args)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
