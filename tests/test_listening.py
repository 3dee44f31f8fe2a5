"""`dateline serve --workers N` listens with a socket in each worker (web/listening.py)."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess

from dateline.web import listening

pytestmark = pytest.mark.skipif(not listening.available(), reason="SO_REUSEPORT spreads connections only on Linux")


@pytest.fixture
def migrated_sqlite_url(sqlite_template: tuple[Path, dict[str, str]], tmp_path: Path) -> str:
    shutil.copy(sqlite_template[0], tmp_path / "dateline.db")
    return f"sqlite:///{tmp_path / 'dateline.db'}"


def listeners(port: int) -> list[int]:
    """The inodes of the sockets listening on 127.0.0.1:`port` (/proc/net/tcp, state 0A)."""
    found = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            address, state, inode = fields[1], fields[3], int(fields[9])
            if state == "0A" and address == f"0100007F:{port:04X}":
                found.append(inode)
    return found


def holders(inodes: list[int]) -> set[int]:
    """The processes holding these sockets open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in os.listdir(f"/proc/{pid}/fd")):
                pids.add(int(pid))
        except OSError:
            continue
    return pids


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    """A worker starts in about 1.5 s on an idle machine, and many times that beside a busy suite."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what() if callable(what) else what}"
        time.sleep(0.1)


def workers_of(server: ServerProcess) -> set[int]:
    assert server.process is not None
    out = subprocess.run(["pgrep", "-P", str(server.process.pid)],  # noqa: S603, S607
                         capture_output=True, text=True).stdout
    # uvicorn's supervisor also runs multiprocessing's resource tracker: only servers hold sockets
    return {int(pid) for pid in out.split()}


def test_each_worker_listens_on_a_socket_of_its_own(migrated_sqlite_url: str) -> None:
    server = ServerProcess(migrated_sqlite_url, None, "--workers", "3").start()
    try:
        wait_for(lambda: len(listeners(server.port)) == 3)
        sockets = listeners(server.port)
        owners = holders(sockets)
        assert len(owners) == 3 and owners <= workers_of(server), (owners, workers_of(server))
        assert server.process is not None and server.process.pid not in owners  # the supervisor only reserves
        for _ in range(30):
            assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200

        # A worker that dies is replaced, and the replacement listens on a socket of its own.
        victim = next(iter(owners))
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in (now := holders(listeners(server.port))) and len(now) == 3,
                 what=lambda: f"killed {victim}; listening now: {holders(listeners(server.port))}, "
                              f"workers: {workers_of(server)}")
        assert len(listeners(server.port)) == 3
        for _ in range(30):
            assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200

        # A second server on the same port is refused, as with any address in use, and the
        # first keeps serving: its sockets would have let the second join them.
        command = [sys.executable, "-m", "dateline", "serve", "--workers", "2", "--port", str(server.port)]
        second = subprocess.run(command, env={**os.environ, "DATELINE_DATABASE_URL": migrated_sqlite_url},  # noqa: S603
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{server.port}: Address already in use" in second.stderr
        assert "Traceback" not in second.stderr
        assert len(listeners(server.port)) == 3
        assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert listeners(server.port) == []


def test_one_shared_socket_when_turned_off(migrated_sqlite_url: str) -> None:
    server = ServerProcess(migrated_sqlite_url, None, "--workers", "2",
                           env={"DATELINE_LISTEN_REUSEPORT": "0"}).start()
    try:
        wait_for(lambda: len(holders(listeners(server.port))) >= 2)
        assert len(listeners(server.port)) == 1
    finally:
        server.stop()


def test_a_port_another_program_holds_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            listening.reserve("127.0.0.1", taken.getsockname()[1])


def test_the_stand_in_unpickles_as_a_socket_at_the_same_address() -> None:
    """What each worker does as it starts: uvicorn's supervisor pickles the stand-in for it."""
    reserved = listening.reserve("127.0.0.1", 0)
    try:
        own = pickle.loads(pickle.dumps(listening.OwnSocket(reserved)))  # noqa: S301
        try:
            assert isinstance(own, socket.socket)
            assert own.getsockname() == reserved.getsockname()
            assert own.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            own.listen()
            with socket.create_connection(reserved.getsockname(), timeout=5):
                accepted, _ = own.accept()  # the reserved socket does not listen: connections come here
                accepted.close()
        finally:
            own.close()
    finally:
        reserved.close()
