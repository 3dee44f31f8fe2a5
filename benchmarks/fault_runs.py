"""Repeat the fault tests with random timing, and add up what every run reports.

    python benchmarks/fault_runs.py              # 5 runs of each
    python benchmarks/fault_runs.py --runs 20

Each fault test (three nodes with each broker and one SIGKILLed; PostgreSQL restarted under
two nodes; a node killed behind nginx) draws its timing from a seed (a new one each run; the
seed of a run is printed, and `DATELINE_FAULT_SEED=...` replays it) and reports, before it
asserts anything, the events lost, duplicated and out of order over all its readers
(`fault_figures` in tests/live/live_helpers.py). This runs them `--runs` times with pytest
and prints the totals per test: all must be zero.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/live/test_cluster.py",
    "tests/live/test_postgres_restart.py",
    "tests/live/test_nginx.py::test_the_shipped_nginx_configuration_in_front_of_two_nodes",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    failed_runs = 0
    with tempfile.TemporaryDirectory(prefix="dateline-faults-") as tmp:
        report = Path(tmp) / "runs.jsonl"
        for run in range(1, args.runs + 1):
            env = {**os.environ, "DATELINE_FAULT_REPORT": str(report)}
            env.pop("DATELINE_FAULT_SEED", None)
            done = subprocess.run([sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", *TESTS],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            failed_runs += done.returncode != 0
            print(f"run {run}/{args.runs}: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.returncode}",
                  flush=True)
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    by_test: dict[str, list[dict[str, float]]] = defaultdict(list)
    for row in rows:
        by_test[row["test"]].append(row)
    print(f"\n{args.runs} runs of each fault test, random timing\n")
    print("| test | runs | readers × events checked | lost | duplicated | out of order | cross-node p50 / p99 "
          "(median run) | same node p50 / p99 (median run) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for test, found in sorted(by_test.items()):
        checked = sum(r["readers"] * r["events"] for r in found)

        def latency(where: str) -> str:
            p50s = [r[f"{where}_p50_ms"] for r in found if f"{where}_p50_ms" in r]
            p99s = [r[f"{where}_p99_ms"] for r in found if f"{where}_p99_ms" in r]
            return f"{statistics.median(p50s):.1f} / {statistics.median(p99s):.1f} ms" if p99s else "—"

        print(f"| {test} | {len(found)} | {checked:,} | {sum(r['lost'] for r in found)} | "
              f"{sum(r['duplicated'] for r in found)} | {sum(r['out_of_order'] for r in found)} | "
              f"{latency('cross_node')} | {latency('same_node')} |")
    bad = sum(r["lost"] + r["duplicated"] + r["out_of_order"] for r in rows)
    return 1 if bad or failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
