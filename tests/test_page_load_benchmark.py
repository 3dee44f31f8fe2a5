"""The read-spike benchmark (benchmarks/page_load.py) runs from start to end and prints its table.

A functional run, one second a measurement: it checks the harness (the demo story seeded, every
server started and measured, the first load counted), not speed: no timing assertion here. The
first load's size is checked against its budget, since bytes do not vary with the machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing_service

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from page_load import FIRST_LOAD_BUDGET  # noqa: E402

pytestmark = pytest.mark.slow


def test_page_load_benchmark_measures_every_row(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        missing_service("wrk is not installed (apt-get install wrk)")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "page_load.py"), "--seconds", "1"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rates = dict(re.findall(r"^(\S.*?)\s{2,}([\d,]+)\s+\d+%$", done.stdout, re.MULTILINE))
    for row in ("dateline: page", "dateline: revalidated (304)", "dateline: catch-up API, after=0, brotli",
                "dateline: Atom feed, brotli", "bare ASGI app on uvicorn: the same bytes"):
        assert int(rates[row].replace(",", "")) > 0, (row, done.stdout)
    first = re.search(r"first load \(page \+ (\d+) files, no photo\).*?: ([\d,]+) bytes on the wire", done.stdout)
    assert first is not None, done.stdout
    assert int(first.group(1)) >= 2 and int(first.group(2).replace(",", "")) > 1000
    # A size, not a speed: the same bytes on any machine. Every feature added to the story
    # page spends some of it; the benchmark says how much is left.
    assert int(first.group(2).replace(",", "")) <= FIRST_LOAD_BUDGET, first.group(0)
