"""The fan-out benchmark (benchmarks/fanout) runs, and every reader gets every update once.

A small functional run: a few hundred readers on Dateline alone, a few posts. It checks the
harness and the delivery guarantee, not speed: no timing assertion here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "fanout" / "run.py"
READERS = 300
POSTS = 3

pytestmark = pytest.mark.slow


def test_fanout_benchmark_delivers_every_update_once(tmp_path: Path) -> None:
    if not Path("/proc/self/stat").exists():
        missing_service("the fan-out benchmark reads CPU and memory from /proc (Linux only)")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        missing_service("uvloop is not installed (it comes with uvicorn[standard])")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(RUN), "--servers", "dateline", "--readers", str(READERS), "--posts", str(POSTS),
         "--rate", "10", "--settle", "0.5", "--read-spike-seconds", "1" if shutil.which("wrk") else "0",
         "--no-plot", "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())

    assert {"benchmark", "machine", "command", "runs", "read_spike"} <= report.keys()
    [run] = report["runs"]
    assert "error" not in run, run
    assert {
        "server", "readers", "posts", "rate", "connect_seconds", "open_readers", "latency_ms", "deliveries",
        "deliveries_per_second", "missing", "duplicates", "id_mismatch", "memory_per_reader_kb",
        "pss_per_reader_kb", "server_cpu_per_1000_deliveries", "server_cpu_us_per_delivery",
        "client_cpu_seconds", "client", "client_cpu_system_share", "connect_cpu_us_per_reader", "settings",
    } <= run.keys()
    assert run["client"] in ("c", "python") and 0 <= run["client_cpu_system_share"] <= 1
    # Read in 10 ms clock ticks: 300 readers' accepts may round to 0, never below.
    assert isinstance(run["connect_cpu_us_per_reader"], float) and run["connect_cpu_us_per_reader"] >= 0
    assert set(run["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert run["server"] == "dateline"
    assert run["open_readers"] == READERS
    # Every reader got every post exactly once, each under one event id.
    assert run["missing"] == 0
    assert run["deliveries"] == READERS * POSTS
    assert run["duplicates"] == 0
    assert run["id_mismatch"] == 0
    assert run["streams_ended"] == 0
    # The table went to stdout.
    assert "dateline" in done.stdout and "p99 ms" in done.stdout

    if shutil.which("wrk"):
        spike = report["read_spike"]
        for name in ("story_page", "catch_up"):
            assert spike[name]["status"] == 200
            assert "cache-control" in spike[name]["headers"]


def test_accept_benchmark_connects_every_reader_and_counts_the_cpu(tmp_path: Path) -> None:
    """benchmarks/fanout/accept.py: the accept path's figure alone (Dateline and the bare
    uvloop floor here)."""
    if not Path("/proc/self/stat").exists():
        missing_service("the accept benchmark reads CPU from /proc (Linux only)")
    out = tmp_path / "accept.json"
    done = subprocess.run(
        [sys.executable, str(RUN.parent / "accept.py"), "--servers", "dateline,floor", "--readers", str(READERS),
         "--runs", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["server"] for r in results] == ["dateline", "floor"] * 2
    for result in results:
        assert result["open"] == READERS and result["failed"] == 0
        # Read in 10 ms clock ticks: a few hundred accepts may round to 0, never below.
        assert result["server_cpu_seconds"] >= 0 and result["server_cpu_us_per_reader"] >= 0
    assert "µs a reader" in done.stdout
    bad = subprocess.run([sys.executable, str(RUN.parent / "accept.py"), "--servers", "dateline,apache"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "unknown server(s): apache" in bad.stderr


@pytest.mark.parametrize("resume", [False, True])
def test_the_python_share_of_accepting_a_reader_needs_no_task(resume: bool) -> None:
    """benchmarks/fanout/accept_python.py: every reader joins the hub, a new one and one
    resuming from the window alike, with no task of its own (and all it missed written)."""
    done = subprocess.run(
        [sys.executable, str(RUN.parent / "accept_python.py"), "--readers", str(READERS),
         *(["--resume"] if resume else [])],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    assert f"{READERS} in the hub, 0 tasks" in line, line
    written = int(line.split("tasks, ")[1].split(" bytes")[0])
    assert written > 1000 if resume else written == 213, line  # the head, and the three missed updates
