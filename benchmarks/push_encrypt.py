"""Cost of encrypting one Web Push message for one subscriber (RFC 8291, aes128gcm).

    python benchmarks/push_encrypt.py

Each message gets a fresh server key pair and salt, as the RFC asks; that key generation and
the ECDH are most of the cost.
"""

from __future__ import annotations

import os
import timeit

from cryptography.hazmat.primitives.asymmetric import ec

from dateline.push.webpush import encrypt, public_bytes

MESSAGES = 5000


def main() -> None:
    browser = public_bytes(ec.generate_private_key(ec.SECP256R1()).public_key())
    auth = os.urandom(16)
    payload = b'{"title":"Polls close","body":"' + b"x" * 300 + b'","url":"/stories/polls/entries/1"}'
    seconds = min(timeit.repeat(lambda: encrypt(payload, browser, auth), number=MESSAGES, repeat=3))
    print(f"{seconds / MESSAGES * 1e6:.0f} µs per message ({len(payload)}-byte payload, best of 3 × {MESSAGES})")


if __name__ == "__main__":
    main()
