"""Web Push message encryption (RFC 8291, `aes128gcm` of RFC 8188) and VAPID (RFC 8292).

Written on `cryptography` directly: one ECDH, a few HMACs and one AES-GCM call a message, so
the cost per subscriber stays near the floor of the primitives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORD_SIZE = 4096
CURVE = ec.SECP256R1()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def encrypt(
    plaintext: bytes, ua_public: bytes, auth_secret: bytes, *,
    server_key: ec.EllipticCurvePrivateKey | None = None, salt: bytes | None = None,
) -> bytes:
    """The body of a push message for one subscription (`p256dh` and `auth` of the browser).

    `server_key` and `salt` are fresh for every message; pass them only to check a test vector.
    """
    if len(auth_secret) != 16:
        raise ValueError("the subscription's auth secret must be 16 bytes")
    if len(plaintext) > RECORD_SIZE - 16 - 1 - 86:
        raise ValueError("the payload is too large for one push message")
    receiver = ec.EllipticCurvePublicKey.from_encoded_point(CURVE, ua_public)
    server_key = server_key or ec.generate_private_key(CURVE)
    salt = salt or os.urandom(16)
    as_public = public_bytes(server_key.public_key())
    shared = server_key.exchange(ec.ECDH(), receiver)
    prk_key = _hmac(auth_secret, shared)
    ikm = _hmac(prk_key, b"WebPush: info\x00" + ua_public + as_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    record = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)  # 0x02: the last record
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    return header + record


def vapid_authorization(endpoint: str, key: ec.EllipticCurvePrivateKey, subject: str, ttl: int = 12 * 3600) -> str:
    """The `Authorization: vapid t=…, k=…` header for a push service (RFC 8292)."""
    parts = urlsplit(endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + ttl, "sub": subject}
    signing_input = (
        b64u(json.dumps({"typ": "JWT", "alg": "ES256"}, separators=(",", ":")).encode())
        + "."
        + b64u(json.dumps(claims, separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    token = signing_input + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return f"vapid t={token}, k={b64u(public_bytes(key.public_key()))}"
