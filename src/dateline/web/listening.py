"""The listening sockets of `dateline serve --workers N`: one per worker process, on Linux.

With one socket shared by every worker, each new connection wakes every worker, and all but
one find nothing to accept. At six workers on two cores that made a bare server's accepting a
reader up to 74 % dearer (docs/performance.md, "One listening socket per process"). With a
socket each (SO_REUSEPORT), the kernel hands each connection to one worker, spread evenly by
address.

uvicorn's supervisor gives each worker, pickled, whatever it was given as the sockets to serve.
It is given an `OwnSocket`, which unpickles in each worker as a new socket of that worker's own,
at the same address. The supervisor keeps one socket bound there (not listening), so the port
stays taken while workers come and go.
"""

from __future__ import annotations

import errno
import socket
import sys
from typing import Any

from uvicorn.config import STARTUP_FAILURE  # the exit code that stops the supervisor restarting a worker


def available() -> bool:
    """SO_REUSEPORT spreads connections over the sockets only on Linux."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(family: int, address: tuple[str, int], reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """The supervisor's socket at `host:port`, for the workers to share the port with.

    A port another program holds, or another `dateline serve` (whose sockets would let a second
    one join them), is refused as usual: the address is first bound alone, without SO_REUSEPORT.
    Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with _socket(family, (host, port), reuse_port=False) as alone:
        port = alone.getsockname()[1]  # port 0: the one the kernel chose
    return _socket(family, (host, port), reuse_port=True)


class OwnSocket:
    """Stands for a worker's own listening socket at the address of `reserved`: what uvicorn's
    supervisor pickles for each worker it starts, and the worker unpickles as that socket."""

    def __init__(self, reserved: socket.socket) -> None:
        self.family = int(reserved.family)
        self.address: tuple[str, int] = reserved.getsockname()[:2]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_worker_socket, (self.family, self.address))


def _worker_socket(family: int, address: tuple[str, int]) -> socket.socket:
    """In a worker being started: its own socket, which uvicorn's server will listen on."""
    try:
        sock = _socket(family, address, reuse_port=True)
    except OSError as exc:
        # Another user's program took the port in between: no restart would do better.
        print(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or errno.errorcode.get(exc.errno or 0)}",
              file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    return sock
