"""Web Push encryption against RFC 8291's own example and an independent decoder; VAPID tokens."""

from __future__ import annotations

import json
import time

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from dateline.push.webpush import b64u, encrypt, public_bytes, unb64u, vapid_authorization

# RFC 8291, section 5 (the example), values as the RFC prints them.
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
UA_PUBLIC = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS"
    "6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)


def test_the_rfc_8291_example_comes_out_byte_for_byte() -> None:
    server_key = ec.derive_private_key(int.from_bytes(unb64u(AS_PRIVATE), "big"), ec.SECP256R1())
    body = encrypt(PLAINTEXT, unb64u(UA_PUBLIC), unb64u(AUTH), server_key=server_key, salt=unb64u(SALT))
    assert b64u(body) == MESSAGE


def test_an_independent_decoder_reads_our_messages() -> None:
    browser_key = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    payload = json.dumps({"title": "Polls close", "body": "Counting starts in Dravonne"}).encode()
    body = encrypt(payload, public_bytes(browser_key.public_key()), auth)
    assert http_ece.decrypt(body, private_key=browser_key, auth_secret=auth, version="aes128gcm") == payload
    assert body != encrypt(payload, public_bytes(browser_key.public_key()), auth), "fresh salt and key each time"


@pytest.mark.parametrize("auth", [b"", b"short", b"x" * 17])
def test_a_bad_auth_secret_is_refused(auth: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="16 bytes"):
        encrypt(b"x", public_bytes(key.public_key()), auth)


def test_a_bad_browser_key_is_refused() -> None:
    with pytest.raises(ValueError):
        encrypt(b"x", b"\x04" + b"\x00" * 64, b"0123456789abcdef")


def test_vapid_tokens_are_signed_for_the_push_service_and_expire_within_a_day() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    header = vapid_authorization("https://push.example.net/wpush/v2/abc", key, "mailto:news@example.org")
    assert header.startswith("vapid t=")
    token, k = header[len("vapid t="):].split(", k=")
    assert unb64u(k) == public_bytes(key.public_key())
    head, claims, signature = token.split(".")
    assert json.loads(unb64u(head)) == {"typ": "JWT", "alg": "ES256"}
    body = json.loads(unb64u(claims))
    assert body["aud"] == "https://push.example.net" and body["sub"] == "mailto:news@example.org"
    assert time.time() < body["exp"] <= time.time() + 24 * 3600
    raw = unb64u(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
