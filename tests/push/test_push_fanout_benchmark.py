"""The Web Push fan-out benchmark (benchmarks/push_fanout.py) runs end to end: a real
`dateline serve` sends one notification to every subscriber through the test push service
over TLS and HTTP/2, and httpx is timed beside it. It checks the harness and its report (the
benchmark exits non-zero unless the outbox reports every message sent), not speed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "push_fanout.py"
SUBSCRIBERS = 300

pytestmark = pytest.mark.slow


def test_push_fanout_benchmark_reaches_every_subscriber(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own benchmark, fixed arguments
        [sys.executable, str(BENCHMARK), "--tls", "--subscribers", str(SUBSCRIBERS), "--pywebpush", "0",
         "--httpx", "30", "--workers", "2"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"One notification to {SUBSCRIBERS:,} subscribers" in done.stdout and "https, HTTP/2" in done.stdout
    ours = re.search(r"^Dateline \(2 processes\)\s+([\d.]+) s\s+([\d,]+)\s+(\d+) µs$", done.stdout, re.MULTILINE)
    assert ours is not None, done.stdout
    assert float(ours.group(1)) > 0 and int(ours.group(2).replace(",", "")) > 0 and int(ours.group(3)) > 0
    service = re.search(r"the test push service meanwhile\s+(\d+) µs\s+\((\d+)% of a core\)", done.stdout)
    assert service is not None and int(service.group(1)) > 0, done.stdout
    assert re.search(r"^httpx AsyncClient, http2=True\s+[\d.]+ s .*\(timed on 30, extrapolated\)$",
                     done.stdout, re.MULTILINE), done.stdout
