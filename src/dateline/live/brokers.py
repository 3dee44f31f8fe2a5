"""How one Dateline process tells the others that the event log has grown.

A broker carries only a nudge, never the events: whoever is nudged reads the log after the
last id it has, so a lost or doubled nudge costs nothing but a moment. The follower also
polls the log every second or so, which covers a broker that is down.

`LocalBroker` (the default) reaches the other processes on this machine that share the
database, through Unix datagram sockets in a private folder: `serve --workers N` needs no
extra server. `NoBroker` leaves it to the poll. Every broker has the three methods of
`Broker`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..vocabulary import BrokerName

log = logging.getLogger("dateline.live")


class Broker(Protocol):
    async def start(self, on_nudge: Callable[[], None]) -> None: ...

    def announce(self) -> None:
        """Called after each local commit, from the writing thread."""

    async def close(self) -> None: ...


class NoBroker:
    """One process alone: the in-process signal is all it needs."""

    async def start(self, on_nudge: Callable[[], None]) -> None:
        pass

    def announce(self) -> None:
        pass

    async def close(self) -> None:
        pass


class LocalBroker:
    def __init__(self, database_url: str, folder: Path | None = None) -> None:
        key = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        base = folder or Path(tempfile.gettempdir()) / f"dateline-{os.getuid()}"
        self.folder = base / key
        self.path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        self._listener: socket.socket | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, on_nudge: Callable[[], None]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder.parent, 0o700)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.setblocking(False)
        listener.bind(str(self.path))
        self._listener = listener
        self._loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                while listener.recv(64):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            on_nudge()

        self._loop.add_reader(listener.fileno(), readable)

    def announce(self) -> None:
        try:
            peers = os.listdir(self.folder)
        except FileNotFoundError:
            return
        for name in peers:
            peer = self.folder / name
            if peer == self.path:
                continue
            try:
                self._sender.sendto(b"!", str(peer))
            except (ConnectionRefusedError, FileNotFoundError):
                # Its process is gone without cleaning up (killed): remove the leftover.
                try:
                    peer.unlink()
                except OSError:
                    pass
            except (BlockingIOError, OSError):
                pass  # its queue is full: it has nudges waiting already

    async def close(self) -> None:
        if self._listener is not None and self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        self._sender.close()
        try:
            self.path.unlink()
            self.folder.rmdir()  # only succeeds when no other process is left
        except OSError:
            pass


def broker_for(setting: BrokerName, database_url: str) -> Broker:
    """The broker named by `DATELINE_BROKER` (one of `vocabulary.BROKERS`)."""
    if setting == "local":
        return LocalBroker(database_url)
    return NoBroker()
