"""The HTTP client that talks to push services: HTTP/2 over one connection where the service
speaks it, HTTP/1.1 otherwise, and never a request to a non-public address."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dateline.push import webpush
from dateline.push.client import PushClient, PushHttpError
from dateline.push.http2 import MAX_STREAMS
from dateline.push.sender import retry_after
from push_service import PushService

T = TypeVar("T")

VAPID_KEY = ec.generate_private_key(ec.SECP256R1())


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, leaving closing transports (a failed TLS handshake, a timed-out
    request) a moment to finish closing before the loop ends."""
    async def main() -> T:
        try:
            return await coroutine
        finally:
            await asyncio.sleep(0.05)
    return asyncio.run(main())


@pytest.fixture(params=["h2", "http/1.1"])
def tls_service(request: pytest.FixtureRequest) -> Iterator[PushService]:
    service = PushService(tls=True, http2=request.param == "h2").start()
    service.vapid_public_key = webpush.b64u(webpush.public_bytes(VAPID_KEY.public_key()))
    yield service
    service.stop()


def message(service: PushService, sub: dict[str, object], text: str) -> tuple[list[tuple[str, str]], bytes]:
    keys = sub["keys"]
    assert isinstance(keys, dict)
    body = webpush.encrypt(json.dumps({"text": text}).encode(), webpush.unb64u(keys["p256dh"]), webpush.unb64u(keys["auth"]))
    headers = [("TTL", "60"), ("Urgency", "high"), ("Content-Encoding", "aes128gcm"),
               ("Authorization", webpush.vapid_authorization(str(sub["endpoint"]), VAPID_KEY, "mailto:desk@example.org"))]
    return headers, body


def test_many_requests_share_one_connection_over_tls(tls_service: PushService) -> None:
    """HTTP/2: 200 requests at once, multiplexed, 100 a connection (what the service allows).
    HTTP/1.1 (a service that offers only that in ALPN): a pool of at most 16 kept-alive
    connections."""
    subs = [tls_service.subscribe() for _ in range(200)]
    assert send_all(tls_service, subs) == [201] * 200
    assert tls_service.errors == []
    for n, sub in enumerate(subs):
        assert tls_service.messages(sub) == [{"text": f"update {n}"}], "decrypted by an independent implementation"
    if tls_service.http2:
        assert tls_service.protocols == {"h2": 2}
    else:
        assert set(tls_service.protocols) == {"http/1.1"} and tls_service.protocols["http/1.1"] <= 16


def test_an_untrusted_certificate_is_refused() -> None:
    service = PushService(tls=True).start()
    sub = service.subscribe()

    async def send() -> None:
        client = PushClient(allow_loopback=True)  # the system's trust store: not the test certificate
        try:
            await client.post(str(sub["endpoint"]), [("TTL", "60")], b"x")
        finally:
            await client.aclose()

    try:
        with pytest.raises(PushHttpError, match="CERTIFICATE_VERIFY_FAILED"):
            run(send())
    finally:
        service.stop()
    assert service.requests == 0


@pytest.mark.parametrize("endpoint", [
    "https://127.0.0.1:9/push/x", "https://localhost:9/push/x", "https://[::1]:9/push/x",
    "https://10.1.2.3/push/x", "https://169.254.169.254/latest/meta-data", "http://push.example.net/x",
])
def test_non_public_addresses_are_refused_at_send_time(endpoint: str) -> None:
    """Checked again when sending, after DNS: no request ever leaves for these."""
    async def send() -> None:
        client = PushClient()
        try:
            await client.post(endpoint, [], b"")
        finally:
            await client.aclose()

    with pytest.raises(PushHttpError) as refused:
        run(send())
    assert refused.value.retry is False


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("120") == 120.0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=90), usegmt=True)
    assert 85 <= (retry_after(later) or 0) <= 90
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    assert retry_after(past) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None and retry_after("") is None


def test_a_service_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from dateline.push import client as client_module

    monkeypatch.setattr(client_module, "TIMEOUT", 0.5)
    service = PushService(delay=5).start()
    sub = service.subscribe()

    async def send() -> None:
        client = PushClient(allow_loopback=True)
        try:
            await client.post(str(sub["endpoint"]), [("TTL", "60")], b"x")
        finally:
            await client.aclose()

    started = time.monotonic()
    try:
        with pytest.raises(PushHttpError, match="did not answer") as slow:
            run(send())
    finally:
        service.stop()
    assert slow.value.retry is True and time.monotonic() - started < 3


def send_all(service: PushService, subs: list[dict[str, Any]], concurrency: int = 16) -> list[int]:
    async def main() -> list[int]:
        client = PushClient(concurrency=concurrency, allow_loopback=True, ssl_context=service.client_context())
        try:
            answers = await asyncio.gather(*(
                client.post(str(sub["endpoint"]), *message(service, sub, f"update {n}")) for n, sub in enumerate(subs)))
        finally:
            await client.aclose()
        return [answer.status for answer in answers]
    return run(main())


def test_http2_sends_as_many_at_once_as_the_service_allows_then_opens_more_connections() -> None:
    """The cap of HTTP/1.1 connections (`concurrency`) is not a cap on HTTP/2 streams: with a
    real round trip to the service, the streams in flight set the pace."""
    service = PushService(tls=True, max_streams=90, delay=1.0).start()
    try:
        subs = [service.subscribe() for _ in range(360)]
        assert send_all(service, subs, concurrency=16) == [201] * 360
        assert service.errors == []
        assert service.max_in_flight_per_connection == 90, "every stream the service allows, and no more"
        assert service.max_in_flight > 3 * 90 and service.protocols == {"h2": 4}, "full connections: another"
        for n, sub in enumerate(subs):
            assert service.messages(sub) == [{"text": f"update {n}"}]
    finally:
        service.stop()


def test_a_service_allowing_more_streams_than_is_cheap_gets_more_connections_instead() -> None:
    service = PushService(tls=True, max_streams=10_000, delay=1.0).start()
    try:
        subs = [service.subscribe() for _ in range(3 * MAX_STREAMS)]
        assert send_all(service, subs) == [201] * len(subs)
        assert service.max_in_flight_per_connection == MAX_STREAMS and service.max_in_flight > 2 * MAX_STREAMS
        assert service.protocols["h2"] == 3
    finally:
        service.stop()


def test_a_goaway_sends_nothing_twice_and_loses_nothing() -> None:
    """The service goes away after 60 requests on each connection, still answering those up
    to its GOAWAY's last stream: they are read where they were sent, and the rest, which the
    service says it never acted on, go again on a new connection. Each message arrives once."""
    service = PushService(tls=True, max_streams=100, delay=0.2, goaway_after=60).start()
    try:
        subs = [service.subscribe() for _ in range(300)]
        assert send_all(service, subs) == [201] * 300
        assert service.errors == []
        for n, sub in enumerate(subs):
            assert service.messages(sub) == [{"text": f"update {n}"}], "exactly once"
        assert service.protocols["h2"] >= 5  # 300 requests, 60 a connection
    finally:
        service.stop()


def test_an_address_that_does_not_answer_is_passed_over_for_the_next() -> None:
    """A push service with several addresses: a refused connection tries the next, and the
    one that answered is tried first from then on."""
    service = PushService().start()  # plain http, 127.0.0.1 only
    sub = service.subscribe()

    async def main() -> tuple[int, list[str]]:
        client = PushClient(allow_loopback=True)
        try:
            first = await client.post(str(sub["endpoint"]), *message(service, sub, "first"))
            (known,) = client.services.values()
            known.addresses = ["127.0.0.2", "127.0.0.1"]  # nothing listens on the first: refused
            for connection in known.idle:  # a new connection, to go through the addresses
                connection.close()
            known.idle.clear()
            second = await client.post(str(sub["endpoint"]), *message(service, sub, "second"))
            assert first.status == 201
            return second.status, known.addresses
        finally:
            await client.aclose()

    try:
        assert run(main()) == (201, ["127.0.0.1", "127.0.0.2"])
        assert service.messages(sub) == [{"text": "first"}, {"text": "second"}]
    finally:
        service.stop()
