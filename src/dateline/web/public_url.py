"""The site's public address, for every link that leaves the site: canonical links, feeds,
structured data, social cards, sitemaps, embeds.

`DATELINE_PUBLIC_URL` names it. Unset, each request's own scheme and `Host` stand in (right
for a laptop or a single proxy that passes `Host` on), and the pages held in memory are kept
per origin so that a forged `Host` is only ever shown back to whoever forged it.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.types import Scope

# What a Host header may hold to be used in a link: a name or an address, and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{0,63}|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def origin_of(scope: Scope, public_url: str) -> str:
    """The base of absolute links for this request: the public URL, else its scheme and Host."""
    if public_url:
        return public_url.rstrip("/")
    host = ""
    for name, raw in scope.get("headers", ()):
        if name == b"host":
            host = raw.decode("latin-1")
            break
    if not _HOST.match(host) or len(host) > 260:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def is_loopback(host: str) -> bool:
    """Whether `dateline serve` listening on `host` is reachable only from this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_url_warning(public_url: str, host: str) -> str | None:
    """What `dateline serve` says when it listens beyond loopback with no public URL set."""
    if public_url or is_loopback(host):
        return None
    return ("Warning: DATELINE_PUBLIC_URL is not set, so links that leave the site (canonical, feeds, "
            "embeds, sitemaps) are built from each request's Host header; set it to the address readers "
            "use, such as https://live.example.org.")
