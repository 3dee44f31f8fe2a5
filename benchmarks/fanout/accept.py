"""What accepting readers costs a server: N readers connect, and nothing else happens.

    python benchmarks/fanout/accept.py --readers 30000 --runs 3
    python benchmarks/fanout/accept.py --quick    # 5,000 readers, under a minute
    python benchmarks/fanout/accept.py --readers 30000 --servers dateline --profile 15

For each server and each run, the script starts a fresh server as run.py does: Dateline's
`dateline serve --workers K` on SQLite, or Nchan with K workers. It opens N readers from the
load-client processes and measures the server's CPU (all its processes, from /proc) from the
first connect to the last response head. The load clients' CPU is shown beside it. The
fan-out benchmark reports the same figure (`connect_cpu_us_per_reader`) as one column among
many; this script measures it alone, quickly and repeatedly, for work on the accept path.
`--profile S` runs py-spy on one Dateline worker for S seconds from the first connect, and
prints where its time goes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
import servers  # noqa: E402
from procstats import cpu_seconds, tree_cpu_seconds  # noqa: E402

SERVERS = ("dateline", "nchan", "floor", "floor-reuseport")
DEFAULT_SERVERS = ("dateline", "nchan")


def accept_once(name: str, readers: int, workers: int, scratch: Path, profile_seconds: float) -> dict[str, Any]:
    server: servers.Server
    if name == "dateline":
        server = servers.Dateline(workers, scratch, max_streams=19_000)
    else:
        server = {"nchan": servers.Nchan, "floor": servers.Floor, "floor-reuseport": servers.FloorReuseport}[name](
            workers, scratch)
    server.start()
    assert server.process is not None
    clients: list[run.LoadClientProcess] = []
    try:
        time.sleep(0.5)
        count = math.ceil(readers / run.READERS_PER_CLIENT)
        clients = [run.LoadClientProcess(i, server, readers // count + (i < readers % count), 1) for i in range(count)]
        for client in clients:
            client.expect("hello", 30)
        profiler = (run.start_profiler(server, profile_seconds, scratch)
                    if profile_seconds and name == "dateline" else None)
        client_pids = [c.process.pid for c in clients]
        server_start, client_start = tree_cpu_seconds(server.process.pid), cpu_seconds(client_pids)
        start = time.monotonic()
        for client in clients:
            client.send("go")
        opened = failed = 0
        while opened + failed < readers and time.monotonic() - start < 120 + readers / 200:
            time.sleep(0.05)
            opened, _, failed = run.progress(clients)
        seconds = time.monotonic() - start
        server_cpu = tree_cpu_seconds(server.process.pid) - server_start
        result: dict[str, Any] = {
            "server": name, "readers": readers, "workers": workers, "open": opened, "failed": failed,
            "connect_seconds": round(seconds, 2), "server_cpu_seconds": round(server_cpu, 2),
            "server_cpu_us_per_reader": round(server_cpu / max(opened, 1) * 1e6, 1),
            "client_cpu_seconds": round(cpu_seconds(client_pids) - client_start, 2),
        }
        if profiler is not None:
            result["profile"] = run.finish_profiler(profiler)
        return result
    finally:
        for client in clients:
            client.close()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 readers: under a minute")
    parser.add_argument("--readers", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="server processes (K), the same for each server")
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                        help=f"comma separated, of: {', '.join(SERVERS)}")
    parser.add_argument("--profile", type=float, default=0, metavar="S",
                        help="py-spy one Dateline worker for S seconds from the first connect")
    parser.add_argument("--client", choices=run.CLIENTS, default="c", help="the load client (see README.md)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick and args.readers == parser.get_default("readers"):
        args.readers = 5_000
    run.client_kind = args.client
    names = [n for n in args.servers.split(",") if n]
    if unknown := set(names) - set(SERVERS):
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    results = []
    with tempfile.TemporaryDirectory(prefix="dateline-accept-") as tmp:
        for attempt in range(args.runs):
            for name in names:
                try:
                    result = accept_once(name, args.readers, args.workers, Path(tmp) / f"{name}-{attempt}",
                                         args.profile)
                except servers.Unavailable as exc:
                    print(f"{name}: skipped ({exc})", file=sys.stderr)
                    continue
                results.append(result)
                print(f"{name:9} N={result['readers']:,} open {result['open']:,} in {result['connect_seconds']} s: "
                      f"server {result['server_cpu_seconds']} CPU-s ({result['server_cpu_us_per_reader']} µs a reader), "
                      f"load clients {result['client_cpu_seconds']} CPU-s", flush=True)
                for function, percent in result.get("profile", {}).get("self_percent", []):
                    print(f"    {percent:5.1f}%  {function}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results and all(r["open"] == r["readers"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
