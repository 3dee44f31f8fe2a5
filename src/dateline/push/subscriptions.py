"""Who wants notifications, and the VAPID keys Dateline signs them with.

A subscription is what the browser's `PushManager.subscribe()` returns: an endpoint at the
browser's push service, and the keys to encrypt for it. Readers need no account; what they
send is checked hard, since Dateline will later make requests to that endpoint: https only,
at one of the browsers' push services (`DATELINE_PUSH_SERVICES`), on a public host name or
address, never loopback, private or link-local (no SSRF), unless
`DATELINE_PUSH_TEST_ENDPOINTS=1` (for tests only) lets http on loopback through.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, and_, delete, select, update

from ..schema import push_keys, push_subscriptions
from ..vocabulary import BROWSER_PUSH_SERVICES
from .webpush import b64u, public_bytes, unb64u

MAX_ENDPOINT = 2048


class SubscriptionError(ValueError):
    """A subscription Dateline will not accept; the message says why."""


# --- VAPID keys ---------------------------------------------------------------------------


def current_key(conn: Connection) -> tuple[ec.EllipticCurvePrivateKey, str] | None:
    row = conn.execute(
        select(push_keys).where(push_keys.c.retired_at.is_(None)).order_by(push_keys.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    key = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, row.public_key


def create_key(conn: Connection) -> str:
    """A new VAPID key pair; the previous one is retired. Returns the public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    now = datetime.now(timezone.utc)
    conn.execute(update(push_keys).where(push_keys.c.retired_at.is_(None)).values(retired_at=now))
    public = b64u(public_bytes(key.public_key()))
    conn.execute(push_keys.insert().values(private_pem=pem, public_key=public, created_at=now))
    return public


def ensure_key(conn: Connection) -> str:
    found = current_key(conn)
    return found[1] if found else create_key(conn)


# --- subscriptions ------------------------------------------------------------------------


def known_service(host: str, services: tuple[str, ...]) -> bool:
    for pattern in services:
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def check_endpoint(endpoint: str, allow_test_endpoints: bool = False,
                   services: tuple[str, ...] = BROWSER_PUSH_SERVICES) -> None:
    if len(endpoint) > MAX_ENDPOINT:
        raise SubscriptionError(f"the endpoint is longer than {MAX_ENDPOINT} characters")
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if allow_test_endpoints and loopback and parts.scheme in ("http", "https"):
        return
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise SubscriptionError("the endpoint must be an https:// URL")
    if loopback or host.endswith((".localhost", ".local", ".internal")) or ("." not in host and address is None):
        raise SubscriptionError("the endpoint must be on a public host")
    if address is not None and not address.is_global:
        raise SubscriptionError("the endpoint must not be a private, loopback or link-local address")
    if not known_service(host.lower(), services):
        # Only the browsers' push services: anything else would have Dateline send requests
        # to hosts of a stranger's choosing, as many as there are notifications.
        raise SubscriptionError(f"{host} is not a browser push service this site sends to (DATELINE_PUSH_SERVICES)")


def check_keys(p256dh: str, auth: str) -> None:
    try:
        point = unb64u(p256dh)
        secret = unb64u(auth)
    except ValueError:
        raise SubscriptionError("the keys must be base64url") from None
    if len(point) != 65 or point[0] != 4:
        raise SubscriptionError("keys.p256dh must be an uncompressed P-256 public key (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise SubscriptionError("keys.p256dh is not a point on the P-256 curve") from None
    if len(secret) != 16:
        raise SubscriptionError("keys.auth must be 16 bytes")


def subscribe(conn: Connection, endpoint: str, p256dh: str, auth: str, story_id: int | None) -> None:
    """Add or refresh a subscription (subscribing twice keeps one, with the newest keys)."""
    unsubscribe(conn, endpoint, story_id)
    conn.execute(
        push_subscriptions.insert().values(
            endpoint=endpoint, p256dh=p256dh, auth=auth, story_id=story_id, created_at=datetime.now(timezone.utc)
        )
    )


def unsubscribe(conn: Connection, endpoint: str, story_id: int | None) -> int:
    scope = push_subscriptions.c.story_id.is_(None) if story_id is None else push_subscriptions.c.story_id == story_id
    query = delete(push_subscriptions).where(and_(push_subscriptions.c.endpoint == endpoint, scope))
    return conn.execute(query).rowcount
