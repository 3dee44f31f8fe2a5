"""Who a connection is from, as the request limits count it (web/server.py, rate_limit.py)."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import ipaddress
import struct
import termios


@functools.cache
def _trusted(forwarded_allow_ips: str) -> tuple[bool, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]]:
    """(every address, networks) trusted as proxies, from uvicorn's comma-separated list."""
    items = [item.strip() for item in forwarded_allow_ips.split(",") if item.strip()]
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue  # a host name or a unix socket: never the address of a TCP peer
    return "*" in items, tuple(networks)


@functools.lru_cache(maxsize=4096)
def _is_trusted(address: str, forwarded_allow_ips: str) -> bool:
    every, networks = _trusted(forwarded_allow_ips)
    if every:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def is_trusted_proxy(address: str, forwarded_allow_ips: str | list[str]) -> bool:
    listed = forwarded_allow_ips if isinstance(forwarded_allow_ips, str) else ",".join(forwarded_allow_ips)
    return _is_trusted(address, listed)


@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """What the limit counts by: the IPv4 address, or the IPv6 /64 (one subscriber's network;
    a client may pick any address in it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes the client has sent that wait in the socket's receive queue, unread (Linux)."""
    sock = transport.get_extra_info("socket")
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):
        return 0
    return int(struct.unpack("i", answer)[0])
