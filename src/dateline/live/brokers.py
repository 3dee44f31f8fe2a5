"""How one Dateline process tells the others that the event log has grown.

A broker carries only a nudge, never the events: whoever is nudged reads the log after the
last id it has, so a lost or doubled nudge costs nothing but a moment. The follower also
polls the log every second or so, which covers a broker that is down.

- `local` (the default): processes on one machine sharing the database, through Unix
  datagram sockets in a private folder: `serve --workers N` needs no extra server.
- `none`: the poll alone.
- `postgresql`: LISTEN/NOTIFY on the database the nodes already share.
- `redis://host:port/db`: a Redis pub/sub channel.
- `nats://host:port`: a core NATS subject. Not JetStream: a nudge is worth nothing once it
  is late (the log has the events), so storing and acknowledging nudges would only add work.

Announcing runs in the writing thread, right after a commit that appended events: it only
raises a flag, and a task in the event loop sends one message for however many commits came
meanwhile. Each message names the node that sent it; a node ignores its own. A network
broker whose connection drops reconnects with jittered backoff (the poll carries the news
meanwhile) and, once back, nudges its own node so the log is read after the last id at once.
The network brokers are in network_brokers.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..config import broker_kind
from .network_brokers import (  # re-exported: the names callers ask for
    BACKOFF_MAX,
    BrokerUnavailable,
    NatsBroker,
    NetworkBroker,
    PostgresBroker,
    RedisBroker,
)


class Broker(Protocol):
    kind: str

    async def start(self, on_nudge: Callable[[], None]) -> None: ...

    def announce(self) -> None:
        """Called after each local commit that appended events, from the writing thread."""

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool: ...


class NoBroker:
    """One process alone: the in-process signal is all it needs."""

    kind = "none"
    connected = True

    async def start(self, on_nudge: Callable[[], None]) -> None:
        pass

    def announce(self) -> None:
        pass

    async def close(self) -> None:
        pass


class LocalBroker:
    kind = "local"
    connected = True

    def __init__(self, database_url: str, folder: Path | None = None) -> None:
        key = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        base = folder or Path(tempfile.gettempdir()) / f"dateline-{os.getuid()}"
        self.folder = base / key
        self.path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        self._listener: socket.socket | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flagged = False  # a round of nudges is due: later commits need no other
        self.sent = 0  # rounds of nudges sent (announcing is coalesced)

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
        # Writing thread: only a flag and a wake-up; the event loop sends the nudges, once for
        # however many commits came meanwhile.
        if self._flagged or self._loop is None:
            return
        self._flagged = True
        try:
            self._loop.call_soon_threadsafe(self._nudge_peers)
        except RuntimeError:
            pass  # the loop has closed: the process is stopping

    def _nudge_peers(self) -> None:
        self._flagged = False
        if self._listener is None:
            return  # closed meanwhile
        self.sent += 1
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
        self._loop = None
        self._sender.close()
        try:
            self.path.unlink()
            self.folder.rmdir()  # only succeeds when no other process is left
        except OSError:
            pass



__all__ = ["BACKOFF_MAX", "Broker", "BrokerUnavailable", "LocalBroker", "NetworkBroker", "NoBroker",
           "broker_for", "probe"]


def broker_for(setting: str, database_url: str) -> Broker:
    """The broker `DATELINE_BROKER` names (config.broker_kind has checked it)."""
    kind = broker_kind(setting)
    if kind == "local":
        return LocalBroker(database_url)
    if kind == "redis":
        return RedisBroker(setting)
    if kind == "nats":
        return NatsBroker(setting)
    if kind == "postgresql":
        return PostgresBroker(database_url)
    return NoBroker()


async def probe(setting: str, database_url: str) -> None:
    """Connect once and close: BrokerUnavailable, with one line, if the broker cannot be reached."""
    broker = broker_for(setting, database_url)
    await broker.start(lambda: None)
    await broker.close()


