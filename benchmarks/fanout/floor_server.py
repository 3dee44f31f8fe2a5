"""The floor of accepting readers in Python: a bare uvloop protocol, nothing else.

    python benchmarks/fanout/floor_server.py PORT WORKERS [--reuseport]

Each connection's first read is answered with the head of an event stream and its first
comment (the bytes Dateline writes, 213 of them), and the connection is held
open; nothing is parsed, looked up or kept but the transport. WORKERS processes share one
listening socket, as `dateline serve --workers` shares uvicorn's; with `--reuseport` each has a
socket of its own (SO_REUSEPORT), as nginx's `listen … reuseport` in the Nchan benchmark. Any
other request (the harness's check that the server is up) is answered 204 and closed.

`accept.py --servers floor,floor-reuseport` measures it beside Dateline and Nchan: what is left
of a reader's cost when Python does nothing but hold it is uvloop's and the kernel's.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import uvloop

from dateline.live.connection import OPENINGS

STREAM = b"/stories/"
OPENING = OPENINGS[len(OPENINGS) // 2]  # the very bytes Dateline opens a stream with
OTHER = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"


class Reader(asyncio.Protocol):
    __slots__ = ("transport",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"GET " + STREAM):
            self.transport.write(OPENING)
        else:
            self.transport.write(OTHER)
            self.transport.close()


def listener(port: int, reuseport: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)  # uvicorn's default backlog, and the Nchan benchmark's
    return sock


async def serve(sock: socket.socket) -> None:
    server = await asyncio.get_running_loop().create_server(Reader, sock=sock)
    await server.serve_forever()


def main() -> None:
    port, workers, reuseport = int(sys.argv[1]), int(sys.argv[2]), "--reuseport" in sys.argv
    shared = None if reuseport else listener(port, False)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            uvloop.run(serve(shared or listener(port, True)))
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
