"""The retry-scan benchmark (benchmarks/push_retry_scan.py) runs on both databases and
reports its three figures with the due index and without it. It checks the harness and its
report, not speed: the property itself is tests/push/test_recipients.py's."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "push_retry_scan.py"
ROW = re.compile(r"^(a look for work|a claim|a lease renewal)\s+([\d.]+) ms\s+([\d.]+) ms$", re.MULTILINE)

pytestmark = pytest.mark.slow


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own benchmark, fixed arguments
        [sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, timeout=240, cwd=ROOT,
    )


@pytest.mark.parametrize("database", ["SQLite", "PostgreSQL"])
def test_push_retry_scan_benchmark_reports_with_and_without_the_index(database: str) -> None:
    if database == "PostgreSQL":
        try:
            socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
        except OSError:
            missing_service("PostgreSQL is not reachable at 127.0.0.1:5432")
    done = run("--deliveries", "2000", *(["--postgres"] if database == "PostgreSQL" else []))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"2,000 deliveries waiting for a retry, none due ({database})" in done.stdout
    rows = ROW.findall(done.stdout)
    assert [label for label, _, _ in rows] == ["a look for work", "a claim", "a lease renewal"], done.stdout
    assert all(float(with_it) > 0 and float(without) > 0 for _, with_it, without in rows), done.stdout


def test_push_retry_scan_benchmark_refuses_no_deliveries() -> None:
    done = run("--deliveries", "0")
    assert done.returncode == 2 and "--deliveries must be at least 1" in done.stderr
