"""The Web Push fan-out benchmark (benchmarks/push_fanout.py) runs end to end: a real
`dateline serve` sends one notification to every subscriber through the test push service
over TLS and HTTP/2, and httpx is timed beside it; then to followers of the story and of the
whole site, each browser once. It checks the harness and its report (the
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


def test_push_fanout_benchmark_with_site_wide_followers(tmp_path: Path) -> None:
    """Half the browsers follow the site, some of them the story too: every browser is sent
    one message (the benchmark checks the outbox's count against the browsers)."""
    done = subprocess.run(  # noqa: S603 - our own benchmark, fixed arguments
        [sys.executable, str(BENCHMARK), "--subscribers", str(SUBSCRIBERS), "--site-followers", "0.5",
         "--pywebpush", "0", "--httpx", "0", "--workers", "2"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"One notification to {SUBSCRIBERS:,} subscribers, 50% of them site-wide" in done.stdout
    posted = re.search(r"the post itself \(with its outbox\)\s+([\d.]+) s", done.stdout)
    assert posted is not None and float(posted.group(1)) > 0, done.stdout


def test_push_fanout_benchmark_refuses_a_share_out_of_range(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own benchmark, fixed arguments
        [sys.executable, str(BENCHMARK), "--site-followers", "1.5"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "--site-followers" in done.stderr and "between 0 and 1" in done.stderr
