"""Compressed answers: each body compressed once, in every encoding a client may ask for, and
picked per request by its `Accept-Encoding`.

A page, a file or a catch-up answer is compressed when it is made (a page once per version,
a file once per process), never per request: a breaking story's page is asked for tens of
thousands of times a second and is the same bytes every time.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass

import brotli  # type: ignore[import-untyped]

MIN_BYTES = 512  # below this, the encoding's own overhead eats the saving
ANSWER_BROTLI_QUALITY = 5  # catch-up answers (one per cursor), feeds, embeds: 41 KB in about 1.3 ms
# A reader's page, once per version and the first thing a reader waits for: 41 KB in about
# 10 ms off the event loop (brotli lets go of the GIL), 9% smaller than at 5 (5,286 bytes
# against 5,840); 11 would take 33 ms for 2% more.
PAGE_BROTLI_QUALITY = 10
FILE_BROTLI_QUALITY = 11  # files: once per process, so the smallest
GZIP_LEVEL = 9
ENCODINGS = ("br", "gzip")  # in the order preferred when a client accepts both equally


@dataclass(frozen=True, slots=True)
class Encoded:
    """One body, as it is and in each encoding that makes it smaller."""

    identity: bytes
    gzip: bytes | None = None
    br: bytes | None = None

    @classmethod
    def of(cls, body: bytes, brotli_quality: int = ANSWER_BROTLI_QUALITY) -> Encoded:
        if len(body) < MIN_BYTES:
            return cls(body)
        zipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        squeezed = brotli.compress(body, quality=brotli_quality)
        return cls(body, zipped if len(zipped) < len(body) else None, squeezed if len(squeezed) < len(body) else None)

    def pick(self, accept_encoding: str | None) -> tuple[str | None, bytes]:
        """(content coding or None, bytes) for a request's `Accept-Encoding`."""
        for coding in accepted(accept_encoding or ""):
            body = self.br if coding == "br" else self.gzip
            if body is not None:
                return coding, body
        return None, self.identity

    @property
    def size(self) -> int:
        return len(self.identity) + len(self.gzip or b"") + len(self.br or b"")


@functools.lru_cache(maxsize=256)
def accepted(accept_encoding: str) -> tuple[str, ...]:
    """The codings of ours that `accept_encoding` accepts, best first (RFC 9110 §12.5.3):
    `q=0` refuses one, `*` stands for any not named, equal weights go by our preference."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        name = name.strip()
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            weights[name] = weight
    star = weights.get("*", 0.0)
    chosen = [(weights.get(coding, star), -rank, coding) for rank, coding in enumerate(ENCODINGS)]
    return tuple(coding for weight, _, coding in sorted(chosen, reverse=True) if weight > 0)
