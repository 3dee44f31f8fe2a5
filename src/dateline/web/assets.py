"""The static files (styles, scripts, icons) under names that carry their content's hash.

Pages link `/static/live.3f9a0c1d2e.js`, never `/static/live.js`: the name changes whenever
the file does, so a browser or a CDN keeps it for a year (`immutable`) and never asks again,
and a deploy is seen at once by the next page. The plain name still answers, revalidated
each time (the service worker's icons, old links). A hashed name from another version (a
page rendered by a node not yet upgraded, in a rolling deploy) gets this version's file,
revalidated each time too, so no cache keeps the wrong bytes for a year.

The folder is small and read once per process; each text file is compressed once, with
brotli at its best and gzip, on its first request.

A bundle is files a page always loads together, served as one under a name of its own, so a
reader's first load makes one request fewer. Its parts stay files of their own for the pages
that load one alone.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from .compression import FILE_BROTLI_QUALITY, Encoded
from .http_cache import matches

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".txt", ".html", ".webmanifest"}
# The story page and the embed: every page's times, then the live updates that use them.
BUNDLES = {"story.js": ("times.js", "live.js")}
HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<suffix>\.[A-Za-z0-9]+)$")


@dataclass
class Asset:
    path: Path
    digest: str
    content_type: str
    data: bytes
    encoded: Encoded | None = None  # compressed on first request

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


class Assets:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, Asset] = {}
        self._lock = threading.Lock()
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                data = path.read_bytes()
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                if content_type.startswith("text/") or content_type in {"application/javascript", "image/svg+xml"}:
                    content_type += "; charset=utf-8"
                name = path.relative_to(folder).as_posix()
                self.files[name] = Asset(path, hashlib.sha256(data).hexdigest()[:10], content_type, data)
        for name, parts in BUNDLES.items():
            if name in self.files:
                raise RuntimeError(f"static/{name} is the name of a bundle (BUNDLES): rename the file")
            data = b"\n".join(self.files[part].data for part in parts)
            first = self.files[parts[0]]
            self.files[name] = Asset(folder / name, hashlib.sha256(data).hexdigest()[:10], first.content_type, data)

    def url(self, name: str) -> str:
        """`/static/<name with its hash>`, for a page to link."""
        asset = self.files[name]  # a template naming a missing file fails loudly, in the tests
        stem, dot, suffix = name.rpartition(".")
        return f"/static/{stem}.{asset.digest}.{suffix}" if dot else f"/static/{name}.{asset.digest}"

    def find(self, name: str) -> tuple[Asset, bool] | None:
        """The file a path names, and whether the name is this version's hashed one."""
        if (asset := self.files.get(name)) is not None:
            return asset, False
        if (hashed := HASHED.match(name)) is None:
            return None
        asset = self.files.get(hashed["stem"] + hashed["suffix"])
        return None if asset is None else (asset, asset.digest == hashed["hash"])

    def encoded(self, asset: Asset) -> Encoded:
        if asset.encoded is None:
            with self._lock:
                if asset.encoded is None:
                    compressible = asset.path.suffix.lower() in COMPRESSIBLE
                    asset.encoded = (Encoded.of(asset.data, FILE_BROTLI_QUALITY) if compressible
                                     else Encoded(asset.data))
        return asset.encoded

    def serve(self, request: Request) -> Response:
        """`/static/{name}`: run in the thread pool (a first request compresses the file)."""
        found = self.find(request.path_params["name"])
        if found is None:
            return Response("Not Found", status_code=404, media_type="text/plain; charset=utf-8")
        asset, current = found
        cache_control = IMMUTABLE if current else REVALIDATE
        encoded = self.encoded(asset)
        headers = {"ETag": asset.etag, "Cache-Control": cache_control}
        if encoded.gzip or encoded.br:
            headers["Vary"] = "Accept-Encoding"
        if matches(request.headers.get("if-none-match"), asset.etag):
            return Response(status_code=304, headers=headers)
        coding, body = encoded.pick(request.headers.get("accept-encoding"))
        if coding:
            headers["Content-Encoding"] = coding
        return Response(body, media_type=asset.content_type, headers=headers)


STATIC = Path(__file__).parent.parent / "static"
assets = Assets(STATIC)
