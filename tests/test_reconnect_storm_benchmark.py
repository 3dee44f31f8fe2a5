"""The reconnect-storm benchmark (benchmarks/reconnect_storm.py) runs, and every reader of the
killed node comes back with every update it missed, once.

A small functional run on the real parts (three `dateline serve` nodes on PostgreSQL, Redis
between them): it checks the harness, its report and the delivery guarantee, not speed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent
STORM = ROOT / "benchmarks" / "reconnect_storm.py"
READERS = 400
MISSED = 4

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_reconnect_storm_benchmark_brings_every_reader_back_exactly(tmp_path: Path) -> None:
    if not Path("/proc/stat").exists():
        missing_service("the storm benchmark reads CPU time from /proc (Linux only)")
    for port, name in ((5432, "PostgreSQL"), (6379, "Redis")):
        if not reachable(port):
            missing_service(f"{name} is not reachable at 127.0.0.1:{port}")
    out = tmp_path / "storm.json"
    done = subprocess.run(
        [sys.executable, str(STORM), "--readers", str(READERS), "--only", "window", "--live", "1",
         "--missed", str(MISSED), "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [run] = json.loads(out.read_text())["results"]

    assert run["mode"] == "window" and run["readers"] == READERS
    assert (run["missing"], run["duplicates"], run["id_mismatch"], run["failed"]) == (0, 0, 0, 0)
    assert run["resumed"] == READERS  # each reader lost its stream once, at the kill
    assert run["queries_in_storm"] is not None and run["queries_in_storm"] < READERS  # none per reader

    # When each share of the missed updates had arrived: in order, and all of them by the end.
    delivered = run["timeline"]["delivered"]
    assert list(delivered) == ["10%", "50%", "90%", "99%", "100%"]
    times = list(delivered.values())
    assert None not in times and times == sorted(times) and times[-1] <= run["catch_up_seconds"] + 1

    # Where the machine's CPU went meanwhile: the parts add up to what was busy.
    # The compiled load clients may spend less than one clock tick (10 ms) on 400 readers, so
    # theirs may read 0; the survivors, which served every resumed reader, cannot.
    cpu = run["cpu_seconds_in_storm"]
    assert cpu["survivors"] > 0 and cpu["clients"] >= 0
    assert cpu["busy"] + cpu["idle"] <= cpu["available"] * 1.05 + 0.1
    assert cpu["survivors"] + cpu["clients"] + cpu["other"] == pytest.approx(cpu["busy"], abs=0.02)
    assert "readers back" in done.stdout and "CPU from the kill to the last delivery" in done.stdout
