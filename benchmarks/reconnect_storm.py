"""Reconnect storm: a node holding 20,000 readers dies, and they all come back to the others.

    python benchmarks/reconnect_storm.py                  # 20,000 readers: window on, then off
    python benchmarks/reconnect_storm.py --quick          # 2,000 readers, under a minute
    python benchmarks/reconnect_storm.py --readers 100000 --only window --nchan

Three nodes share one PostgreSQL database (a scratch one, created for the run and dropped
after) with Redis between them, as docs/scaling.md runs them. Node A (two worker processes)
holds every reader; B and C (one process each) hold none. Then:

1. the readers (load-client processes, benchmarks/fanout/loadclient.c) connect to A and get a
   warm-up update and `--live` more, posted through B;
2. A is killed (SIGKILL, all its processes) and `--missed` updates are posted through B at
   once: A's readers never got them;
3. every reader comes back within `--spread` seconds, to B or C alternately, with
   `Last-Event-ID`, as a browser behind a load balancer does;
4. the run waits until every reader has every update: none may be missing, none twice.

Node A gets a process for every 15,000 readers, and each survivor enough for its share
(`--survivors`, 2 by default), so that 100,000 readers fit. With `--nchan`, the run first
measures the reference the target is set against: how long Nchan (nginx, as many workers as
node A) takes to accept the same number of fresh subscribers from the same load clients.

It reports the catch-up time (from the kill until the last reader has the last update) and
the statements the two surviving nodes sent to the database (`database.queries` of
`/healthz`, sampled every second): the peak per second and the total over the storm, beside
a quiet second before it. It runs twice, with the window of recent events (the default) and
without it (`DATELINE_LIVE_WINDOW_EVENTS=0`: every replay reads the log), side by side.

It also says when 10, 50, 90, 99 and 100 % of the missed updates had arrived, and where the
machine's CPU went from the kill to the last delivery (/proc: the survivors' processes, the
load clients, everything else). `--profile S` samples one of node B's processes with py-spy,
`--perf FILE` the whole machine with perf.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fanout"))

import procstats  # noqa: E402
import run as fanout  # noqa: E402
import scratch_database  # noqa: E402
import servers  # noqa: E402
from run import LoadClientProcess, progress  # noqa: E402

REDIS_URL = os.environ.get("DATELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE = "dateline_storm"
READERS_PER_CLIENT = 10_000
READERS_PER_PROCESS = 15_000  # what a node is given processes for, by default (20,000 open files each)
HEADROOM = 4_000  # streams a process may hold beyond its share: the kernel does not spread a burst evenly


class Node(servers.Server):
    """One `dateline serve` of the site, on the shared database and broker."""

    def __init__(self, name: str, workers: int, scratch: Path, env: dict[str, str]) -> None:
        self.name = name  # type: ignore[misc]  # the base class reads it as its folder's name
        super().__init__(workers, scratch)
        self.env = env
        self.processes = workers
        if workers == 1:
            self.workers = 0  # one process, no supervisor: no worker processes to wait for

    def start(self) -> None:
        self._spawn([*dateline_command(), "serve", "--workers", str(self.processes), "--port", str(self.port)],
                    self.env)
        self._wait_until_up("/healthz")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return super().worker_pids() if self.processes > 1 else [self.process.pid]

    def queries(self) -> int | None:
        try:
            return int(self.http.get("/healthz", timeout=5).json()["database"]["queries"])
        except Exception:  # noqa: BLE001 - a node too busy to answer this second
            return None

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def dateline_command() -> list[str]:
    script = Path(sys.executable).parent / "dateline"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dateline"]


class Sampler(threading.Thread):
    """Every second: the statements each surviving node has sent so far."""

    def __init__(self, nodes: list[Node]) -> None:
        super().__init__(daemon=True)
        self.nodes = nodes
        self.samples: list[tuple[float, list[int | None]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            self.samples.append((started, [node.queries() for node in self.nodes]))
            self.stopping.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def per_second(self, since: float, until: float, spanning: bool = True) -> list[float]:
        """Statements per second over both nodes, between consecutive samples: those that
        overlap the span, or (`spanning=False`) lie wholly inside it."""
        rates = []
        for (t0, q0), (t1, q1) in zip(self.samples, self.samples[1:]):
            inside = t1 > since and t0 < until if spanning else t0 >= since and t1 <= until
            if not inside or None in q0 or None in q1:
                continue
            rates.append(sum(b - a for a, b in zip(q0, q1)) / (t1 - t0))  # type: ignore[operator]
        return rates

    def total(self, since: float, until: float) -> int | None:
        inside = [(t, q) for t, q in self.samples if None not in q]
        before = [q for t, q in inside if t <= since]
        after = [q for t, q in inside if t >= until]
        if not before or not after:
            return None
        return sum(b - a for a, b in zip(before[-1], after[0]))  # type: ignore[operator]


def run_storm(args: argparse.Namespace, window: bool, scratch: Path) -> dict[str, Any]:
    url = scratch_database.create(DATABASE)
    env = {
        **os.environ,
        "DATELINE_DATABASE_URL": url,
        "DATELINE_BROKER": f"{REDIS_URL}?channel=dateline.storm.{os.getpid()}",
        "DATELINE_MAX_STREAMS": str(args.readers_per_process + HEADROOM),
        "DATELINE_LIVE_WINDOW_EVENTS": "10000" if window else "0",
        "DATELINE_LOG_LEVEL": "warning",
    }
    run = lambda *a: subprocess.run([*dateline_command(), *a], env=env, capture_output=True, text=True,  # noqa: E731
                                    check=True).stdout.strip()
    run("init")
    run("user", "add", "bench", "--role", "editor")
    token = run("token", "create", "bench")
    mode = "window" if window else "no-window"
    a = Node(f"{mode}-a", max(2, math.ceil(args.readers / args.readers_per_process)), scratch, env)
    each = math.ceil(args.readers / args.survivors / args.readers_per_process)
    survivors = [Node(f"{mode}-{chr(ord('b') + i)}", each, scratch, env) for i in range(args.survivors)]
    b = survivors[0]
    nodes = [a, *survivors]
    clients: list[LoadClientProcess] = []
    sampler = Sampler(survivors)
    try:
        for node in nodes:
            node.start()
        b.http.headers["Authorization"] = f"Bearer {token}"
        created = b.http.post("/api/v1/stories", json={"headline": "Reconnect storm", "slug": servers.SLUG,
                                                        "status": "live"})
        assert created.status_code == 201, created.text
        updates = 1 + args.live + args.missed
        seq = 0

        def post() -> None:
            nonlocal seq
            body = servers.marker(seq, time.time_ns())
            response = b.http.post(f"/api/v1/stories/{servers.SLUG}/entries", json={"kind": "text", "body": body})
            assert response.status_code == 201, response.text
            seq += 1

        addresses = ",".join(f"{node.host}:{node.port}" for node in survivors)
        count = (args.readers + READERS_PER_CLIENT - 1) // READERS_PER_CLIENT
        for index in range(count):
            share = args.readers // count + (index < args.readers % count)
            clients.append(LoadClientProcess(index, a, share, updates,
                                             ("--reconnect-to", addresses, "--reconnect-spread", str(args.spread))))
        for client in clients:
            client.expect("hello")
            client.send("go")
        started = time.monotonic()
        answers = [client.expect("headers", timeout=300) for client in clients]
        opened = sum(answer["headers"] for answer in answers)
        connect_seconds = max(answer["seconds"] for answer in answers)  # the first connections, for scale
        # A process that took more than its share of a burst sheds the rest (`retry:`, then
        # close); they come back a second later, to another of node A's processes.
        while opened < args.readers and time.monotonic() - started < 120:
            time.sleep(0.2)
            opened = progress(clients)[0]
            connect_seconds = round(time.monotonic() - started, 2)
        assert opened == args.readers, f"only {opened} of {args.readers} readers connected to node A"

        def wait_delivered(total: int, stall: float, until: float,
                           timeline: list[tuple[float, int, int]] | None = None) -> dict[str, float]:
            seen: dict[str, float] = {}
            last_change, last = time.monotonic(), -1
            while time.monotonic() < until:
                open_now, delivered, _ = progress(clients)
                now = time.monotonic()
                if timeline is not None:
                    timeline.append((now, open_now, delivered))
                if open_now >= args.readers and "all_back" not in seen:
                    seen["all_back"] = now
                if delivered >= total:
                    return seen
                if delivered != last:
                    last_change, last = now, delivered
                elif now - last_change > stall:
                    break
                time.sleep(0.1)
            return seen

        post()  # the warm-up
        wait_delivered(args.readers, 30, time.monotonic() + 120)
        for client in clients:
            client.send("measure")
        for _ in range(args.live):
            post()
            time.sleep(0.2)
        wait_delivered(args.readers * (1 + args.live), 30, time.monotonic() + 120)
        sampler.start()
        time.sleep(3.5)  # quiet seconds: the nodes' own polls and health checks
        quiet_until = time.monotonic()
        survivor_pids = [pid for node in survivors for pid in procstats.descendants(node.process.pid)]
        client_pids = [client.process.pid for client in clients]
        cpu_before = cpu_now(survivor_pids, client_pids)
        timeline: list[tuple[float, int, int]] = []
        perf = ["perf", "record", "-a", "-g", "-q", "-o", str(args.perf)]
        recorder = (subprocess.Popen(perf, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
                    if args.perf and window else None)
        profiler = fanout.start_profiler(b, args.profile, scratch) if args.profile and window else None
        kill_ns, killed = time.time_ns(), time.monotonic()
        a.kill()
        for _ in range(args.missed):
            post()
        seen = wait_delivered(args.readers * updates, 30, killed + args.timeout, timeline)
        done = time.monotonic()
        cpu = cpu_spent(cpu_before, cpu_now(survivor_pids, client_pids), done - killed)
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
        profile = fanout.finish_profiler(profiler) if profiler is not None else None
        time.sleep(2.5)  # the last samples
        sampler.stopping.set()
        sampler.join(5)
        reports = [client.ask(f"report {scratch / f'{mode}-{client.index}.lat'}", "readers", 120) for client in clients]
        total = {key: sum(r[key] for r in reports) for key in ("missing", "duplicates", "id_mismatch", "resumed",
                                                                "failed", "bad_status", "errors")}
        statuses: dict[str, int] = {}
        for r in reports:
            for code, n in r.get("statuses", {}).items():
                statuses[code] = statuses.get(code, 0) + n
        last_ns = max(r["last_delivery_ns"] for r in reports)
        storm = sampler.per_second(killed, done)
        quiet = sampler.per_second(killed - 4.0, quiet_until, spanning=False)
        return {
            "mode": mode, "readers": args.readers, "updates_missed": args.missed,
            "catch_up_seconds": round((last_ns - kill_ns) / 1e9, 2),
            "all_back_seconds": round(seen["all_back"] - killed, 2) if "all_back" in seen else None,
            "first_connect_seconds": round(connect_seconds, 2),
            "queries_peak_per_second": round(max(storm)) if storm else None,
            "queries_in_storm": sampler.total(killed, done),
            "queries_quiet_per_second": round(max(quiet)) if quiet else None,
            **total, "bad_statuses": statuses,
            "timeline": wave_timeline(timeline, killed, args.readers, args.readers * (1 + args.live),
                                      args.readers * args.missed),
            "cpu_seconds_in_storm": cpu,
            **({"profile": profile} if profile else {}),
        }
    finally:
        sampler.stopping.set()
        for client in clients:
            client.close()
        for node in nodes:
            node.stop()
        scratch_database.drop(DATABASE)


def allow_open_files(needed: int) -> None:
    """Raise this process's open-file limit, which the nodes and Nchan inherit, to `needed`."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        except (ValueError, OSError):
            sys.exit(f"--readers-per-process needs {needed} open files a process; the limit is {hard} "
                     "(raise it with `ulimit -Hn` first, or run with CAP_SYS_RESOURCE)")


def machine_cpu() -> dict[str, float]:
    """Seconds of CPU time the whole machine has spent so far, by kind (/proc/stat, all cores)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:8]]
    ticks = dict(zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq"), fields, strict=True))
    return {kind: n / procstats.CLOCK_TICKS for kind, n in ticks.items()}


def cpu_now(survivors: list[int], clients: list[int]) -> dict[str, float]:
    return {**machine_cpu(), "survivors": procstats.cpu_seconds(survivors),
            "clients": procstats.cpu_seconds(clients)}


def cpu_spent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Where the machine's CPU went from the kill to the last delivery: the survivors' processes,
    the load clients, the kernel's softirq work (much of loopback TCP) and everything else
    (the databases, Redis, the kernel tearing down the killed node's sockets), and what was idle."""
    spent = {kind: after[kind] - before[kind] for kind in after}
    busy = sum(spent[k] for k in ("user", "nice", "system", "irq", "softirq"))
    return {"wall": round(seconds, 2), "available": round(seconds * (os.cpu_count() or 1), 2),
            "idle": round(spent["idle"] + spent["iowait"], 2), "busy": round(busy, 2),
            "survivors": round(spent["survivors"], 2), "clients": round(spent["clients"], 2),
            "softirq": round(spent["softirq"], 2),
            "other": round(busy - spent["survivors"] - spent["clients"], 2)}


def wave_timeline(samples: list[tuple[float, int, int]], killed: float, readers: int, delivered_before: int,
                  missed: int) -> dict[str, dict[str, float | None]]:
    """When a share of the readers were back (open again), and when that share of the missed
    updates had been delivered, in seconds after the kill.

    The clients count a reader open until they have read the end of its stream, so the first
    samples still show the killed node's readers: readers count as back only from the sample
    with the fewest open, when the clients had seen the kill."""
    def first(share: float, value: Callable[[tuple[float, int, int]], float],
              among: list[tuple[float, int, int]]) -> float | None:
        return next((round(t - killed, 2) for t, *_ in filter(lambda s: value(s) >= share, among)), None)

    shares = (0.1, 0.5, 0.9, 0.99, 1.0)
    trough = min(range(len(samples)), key=lambda i: samples[i][1], default=0)
    back = {f"{share:.0%}": first(share, lambda s: s[1] / readers, samples[trough:]) for share in shares}
    delivered = lambda s: (s[2] - delivered_before) / missed if missed else 1.0  # noqa: E731
    caught_up = {f"{share:.0%}": first(share, delivered, samples) for share in shares}
    return {"back": back, "delivered": caught_up}


def nchan_accepts(readers: int, per_process: int, scratch: Path) -> float:
    """Seconds for Nchan, with as many workers as node A, to accept `readers` fresh
    subscribers from the same load clients: from the first connect to the last response head."""
    nchan = servers.Nchan(max(2, math.ceil(readers / per_process)), scratch)
    count = (readers + READERS_PER_CLIENT - 1) // READERS_PER_CLIENT
    clients = []
    try:
        nchan.start()
        for index in range(count):
            share = readers // count + (index < readers % count)
            clients.append(LoadClientProcess(index, nchan, share, 1))
        for client in clients:
            client.expect("hello")
            client.send("go")
        answers = [client.expect("headers", timeout=300) for client in clients]
        opened = sum(answer["headers"] for answer in answers)
        assert opened == readers, f"Nchan accepted only {opened} of {readers}"
        return round(max(answer["seconds"] for answer in answers), 2)
    finally:
        for client in clients:
            client.close()
        nchan.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 readers: under a minute")
    parser.add_argument("--readers", type=int, default=20_000)
    parser.add_argument("--live", type=int, default=5, help="updates delivered live before the kill")
    parser.add_argument("--missed", type=int, default=10, help="updates posted right after the kill")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which readers come back")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the catch-up")
    parser.add_argument("--only", choices=["window", "no-window"], help="run one of the two")
    parser.add_argument("--survivors", type=int, default=2, help="nodes the readers come back to")
    parser.add_argument("--nchan", action="store_true", help="first time Nchan accepting as many fresh readers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--perf", type=Path, metavar="FILE",
                        help="record the whole machine (`perf record -a -g`) from the kill to the last delivery "
                             "of the run with the window, into FILE; read it with `perf report -i FILE`")
    parser.add_argument("--profile", type=float, metavar="S",
                        help="py-spy one of node B's processes for S seconds from the kill (the run with the window)")
    parser.add_argument("--readers-per-process", type=int, default=READERS_PER_PROCESS,
                        help="how many readers a node (and Nchan) is given a process for; past 15,000 the open-file "
                             "limit must allow more than 20,000 (raised where CAP_SYS_RESOURCE allows)")
    parser.add_argument("--client", choices=fanout.CLIENTS, default="c",
                        help="the load client: compiled from fanout/loadclient.c (default) or fanout/loadclient.py")
    args = parser.parse_args(argv)
    if args.quick and args.readers == parser.get_default("readers"):
        args.readers = 2_000
    fanout.client_kind = args.client
    allow_open_files(args.readers_per_process + HEADROOM + 1_000)
    if args.perf and not shutil.which("perf"):
        sys.exit("--perf needs perf (apt-get install linux-perf)")
    results = []
    reference = None
    with tempfile.TemporaryDirectory(prefix="dateline-storm-") as tmp:
        if args.nchan:
            reference = nchan_accepts(args.readers, args.readers_per_process, Path(tmp))
            print(json.dumps({"nchan_accepts_seconds": reference}), flush=True)
        for window in (True, False):
            if args.only and args.only != ("window" if window else "no-window"):
                continue
            results.append(run_storm(args, window, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    print(f"\nReconnect storm: {args.readers} readers of a killed node, {args.missed} updates missed, "
          f"back within {args.spread} s ({platform.node()}, {os.cpu_count()} cores)\n")
    print("| | catch-up | all back | first connect | queries/s, peak | queries, storm | queries/s, quiet "
          "| missing | twice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['mode']} | {r['catch_up_seconds']} s | {r['all_back_seconds']} s | "
              f"{r['first_connect_seconds']} s | "
              f"{r['queries_peak_per_second']} | {r['queries_in_storm']} | {r['queries_quiet_per_second']} | "
              f"{r['missing']} | {r['duplicates'] + r['id_mismatch']} |")
    for r in results:
        back, delivered, cpu = r["timeline"]["back"], r["timeline"]["delivered"], r["cpu_seconds_in_storm"]
        print(f"\n{r['mode']}, seconds after the kill: readers back " +
              ", ".join(f"{k} at {v}" for k, v in back.items()) + "; missed updates delivered " +
              ", ".join(f"{k} at {v}" for k, v in delivered.items()))
        print(f"{r['mode']}, CPU from the kill to the last delivery: {cpu['busy']} of {cpu['available']} "
              f"core-seconds busy: survivors {cpu['survivors']}, load clients {cpu['clients']}, "
              f"everything else {cpu['other']} (softirq, in any of them, {cpu['softirq']})")
    if reference is not None:
        print(f"\nNchan accepting {args.readers} fresh subscribers, same run: {reference} s"
              + "".join(f"; {r['mode']}: caught up in {r['catch_up_seconds'] / reference:.2f}× that" for r in results))
    if args.json:
        args.json.write_text(json.dumps({"machine": platform.node(), "cores": os.cpu_count(),
                                         "nchan_accepts_seconds": reference, "results": results}, indent=2))
    return 0 if all(r["missing"] == 0 and r["duplicates"] == 0 and r["id_mismatch"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
