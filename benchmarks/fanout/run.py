"""Live fan-out benchmark (issue #6): N readers on one story, M posts, Dateline against peers.

    python benchmarks/fanout/run.py --quick
    python benchmarks/fanout/run.py --readers 10000,30000,60000,100000

For each N and each server (Dateline, sse-starlette, Nchan), in this order, the run:

1. starts the server as its operator would (Dateline: `dateline init`, a user and a token,
   `dateline serve --workers K` on SQLite in a scratch folder; see servers.py);
2. opens N SSE readers to one live story from load-client processes (loadclient.py), up to
   16,000 readers each, each from its own source address 127.0.0.2, .3, ...;
3. waits a few seconds and takes the servers' memory (RSS summed over their processes):
   growth / N is the memory per idle reader;
4. posts a warm-up update and waits until every reader has it (all are subscribed);
5. posts M updates at a steady rate (by default N × rate = 20,000 deliveries/s), each
   stamped with the wall clock, and waits until every reader has every update, or until
   deliveries stop;
6. collects per reader which updates arrived (by sequence number, cross-checked against the
   event id of the frame), and the publish-to-receive latency of every delivery. A stream
   that ends during the posts resumes with Last-Event-ID, as a browser's would.

It prints a table (with Dateline's ratio to each peer), writes a JSON file and a PNG plot,
and measures the read spike: `wrk` on the story page and the catch-up API, warm.

Server CPU (user + system, all processes, from /proc) is taken from the first timed post to
the last delivery: it includes the posts and any keep-alive comments (every 15 s on all
three servers), which is what a real story costs. The load clients' CPU is reported too.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import servers  # noqa: E402
from procstats import cpu_seconds, pss_bytes, rss_bytes, tree_cpu_seconds  # noqa: E402

READERS_PER_CLIENT = 16_000  # a process may hold 20,000 open files here (ulimit -n)
SERVER_NAMES = ["dateline", "sse-starlette", "nchan", *servers.DatelineOn.COMMANDS]
DELIVERIES_PER_SECOND = 20_000  # the default offered load, N × posts/s
CLIENTS = ("c", "python")
client_kind = "c"  # which load client LoadClientProcess starts: set by --client


def load_client_program(kind: str) -> list[str]:
    """The command that starts one load client: the compiled one (loadclient.c, built once
    into build/ beside it, again when the source changes), or loadclient.py. Without a C
    compiler, the Python client, with a note: its figures carry more of the client's CPU."""
    if kind == "c":
        source, binary = HERE / "loadclient.c", HERE / "build" / "loadclient"
        if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
            return [str(binary)]
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler:
            binary.parent.mkdir(exist_ok=True)
            built = subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], capture_output=True, text=True)
            if built.returncode == 0:
                return [str(binary)]
            print(f"loadclient.c did not build, using loadclient.py:\n{built.stderr}", file=sys.stderr)
        else:
            print("no C compiler (cc): using loadclient.py", file=sys.stderr)
    return [sys.executable, str(HERE / "loadclient.py")]


class LoadClientProcess:
    """One load-client process (loadclient.c or loadclient.py) and the JSON lines it answers with."""

    def __init__(self, index: int, server: servers.Server, readers: int, updates: int,
                 extra: tuple[str, ...] = ()) -> None:
        self.index = index
        self.readers = readers
        self.process = subprocess.Popen(
            [*load_client_program(client_kind), "--host", server.host, "--port", str(server.port),
             "--path", server.stream_path, "--source", f"127.0.0.{2 + index}", "--readers", str(readers),
             "--updates", str(updates), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, key: str, timeout: float = 60) -> dict[str, Any]:
        """The next message carrying `key` (others, such as late notices, are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"load client {self.index} did not answer ({key})") from None
            if key in message:
                return message

    def ask(self, command: str, key: str, timeout: float = 60) -> dict[str, Any]:
        self.send(command)
        return self.expect(key, timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("quit")
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def progress(clients: list[LoadClientProcess]) -> tuple[int, int, int]:
    """(open readers, deliveries so far, readers given up on) over all clients."""
    for client in clients:
        client.send("progress")
    answers = [client.expect("delivered") for client in clients]
    return (sum(a["open"] for a in answers), sum(a["delivered"] for a in answers),
            sum(a["failed"] for a in answers))


def percentile(ordered: list[int], q: float) -> float:
    if not ordered:
        return math.nan
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def make_server(name: str, workers: int, scratch: Path, max_streams: int) -> servers.Server:
    if name == "dateline":
        return servers.Dateline(workers, scratch, max_streams)
    if name in servers.DatelineOn.COMMANDS:
        return servers.DatelineOn(name, workers, scratch, max_streams)
    if name == "sse-starlette":
        return servers.SseStarlette(workers, scratch)
    if name == "nchan":
        return servers.Nchan(workers, scratch)
    raise ValueError(name)


def run_one(server: servers.Server, readers: int, posts: int, rate: float, settle: float, scratch: Path,
            profile_seconds: float = 0, profile_dir: Path | None = None,
            after: Callable[[servers.Server], None] | None = None) -> dict[str, Any]:
    """One server, one N: the numbers of one row of the table."""
    log = lambda text: print(f"  [{server.name} N={readers:,}] {text}", file=sys.stderr, flush=True)  # noqa: E731
    server.start()
    assert server.process is not None
    root = server.process.pid
    time.sleep(0.5)
    rss_before, pss_before = rss_bytes(server.pids()), pss_bytes(server.pids())
    sizes = [readers // math.ceil(readers / READERS_PER_CLIENT)] * math.ceil(readers / READERS_PER_CLIENT)
    sizes[-1] += readers - sum(sizes)
    clients = [LoadClientProcess(i, server, size, posts + 1) for i, size in enumerate(sizes)]
    result: dict[str, Any] = {"server": server.name, "readers": readers, "posts": posts, "rate": rate,
                              "settings": server.settings, "load_clients": len(clients)}
    try:
        for client in clients:
            client.expect("hello", 30)
        client_pids = [c.process.pid for c in clients]
        client_cpu_start = cpu_seconds(client_pids)

        # Connect every reader.
        connect_cpu_start = tree_cpu_seconds(root)
        start = time.monotonic()
        for client in clients:
            client.send("go")
        deadline = start + 120 + readers / 200
        best, best_at = 0, start
        while True:
            opened, _, failed = progress(clients)
            now = time.monotonic()
            if opened > best:
                best, best_at = opened, now
            # Done, given up on, or stuck (a server that cannot hold N readers sheds or loses
            # them as fast as they come back): measure with the readers it holds.
            if opened >= readers or opened + failed >= readers or now > deadline or now - best_at > 60:
                break
            time.sleep(0.1)
        result["connect_seconds"] = round(time.monotonic() - start, 2)
        # What accepting a reader costs the server: accept, the request head, the stream's
        # answer, over all its processes (what sets the pace of a reconnect wave).
        result["connect_cpu_us_per_reader"] = round((tree_cpu_seconds(root) - connect_cpu_start) / max(opened, 1) * 1e6, 1)
        log(f"{opened:,} readers open in {result['connect_seconds']} s ({failed} given up)")

        # Idle memory: let the servers settle, then take the growth.
        time.sleep(settle)
        opened, _, _ = progress(clients)
        rss_idle, pss_idle = rss_bytes(server.pids()), pss_bytes(server.pids())
        result["open_readers"] = opened
        result["server_rss_mb"] = round(rss_idle / 2**20, 1)
        result["memory_per_reader_kb"] = round((rss_idle - rss_before) / max(opened, 1) / 1024, 2)
        result["pss_per_reader_kb"] = round((pss_idle - pss_before) / max(opened, 1) / 1024, 2)
        for client in clients:
            client.send("measure")

        # Warm-up: everyone subscribed and every code path warm before the clock starts.
        server.publish(0)
        warm_deadline = time.monotonic() + 60 + readers / 1000
        while progress(clients)[1] < opened and time.monotonic() < warm_deadline:
            time.sleep(0.1)

        # The timed posts, at a steady rate.
        profiler = start_profiler(server, profile_seconds, profile_dir or scratch) if profile_seconds else None
        server_cpu_start, client_cpu_timed = tree_cpu_seconds(root), cpu_seconds(client_pids)
        first_post_ns = time.time_ns()
        t0 = time.monotonic()
        post_seconds = []
        for seq in range(1, posts + 1):
            delay = t0 + (seq - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            began = time.monotonic()
            server.publish(seq)
            post_seconds.append(time.monotonic() - began)
        expected = opened * (posts + 1)
        last, last_change = -1, time.monotonic()
        hard_stop = time.monotonic() + 120 + readers * posts / 20_000
        while True:
            _, delivered, _ = progress(clients)
            now = time.monotonic()
            if delivered != last:
                last, last_change = delivered, now
            if delivered >= expected or now - last_change > 15 or now > hard_stop:
                break
            time.sleep(0.2)
        server_cpu = tree_cpu_seconds(root) - server_cpu_start
        client_cpu = cpu_seconds(client_pids) - client_cpu_timed
        if profiler is not None:
            result["profile"] = finish_profiler(profiler)

        # What every reader got.
        reports = [c.ask(f"report {scratch / f'latency-{c.index}.bin'}", "missing", 120) for c in clients]
        latencies = array.array("i")
        for c in clients:
            with open(scratch / f"latency-{c.index}.bin", "rb") as f:
                latencies.frombytes(f.read())
        ordered = sorted(latencies)
        totals = Counter[str]()
        for report in reports:
            totals.update({k: v for k, v in report.items() if isinstance(v, int) and not isinstance(v, bool)})
        timed = len(ordered)
        last_ns = max(r["last_delivery_ns"] for r in reports)
        span = max((last_ns - first_post_ns) / 1e9, 1e-9)
        result.update({
            "latency_ms": {name: round(percentile(ordered, q) / 1000, 1)
                           for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
            "deliveries": timed,
            "deliveries_per_second": round(timed / span),
            # Every one of the N readers must get every one of the M posts exactly once.
            "missing": readers * posts - timed,
            "duplicates": totals["duplicates"],
            "id_mismatch": totals["id_mismatch"],
            # Streams that ended after the first post; each reader resumed (Last-Event-ID).
            "streams_ended": totals["resumed"],
            "worker_restarts": server.restarts(),
            "failed_readers": totals["failed"],
            "reconnects_while_connecting": totals["reconnects"],
            "bad_status": totals["bad_status"],
            "protocol_errors": totals["errors"] + totals["out_of_range"],
            "server_cpu_seconds": round(server_cpu, 3),
            "server_cpu_per_1000_deliveries": round(server_cpu / max(timed, 1) * 1000, 4),
            "server_cpu_us_per_delivery": round(server_cpu / max(timed, 1) * 1e6, 2),
            "client_cpu_seconds": round(client_cpu, 3),
            "client_cpu_seconds_whole_run": round(cpu_seconds(client_pids) - client_cpu_start, 3),
            "client_uvloop": all(r["uvloop"] for r in reports),
            "client": reports[0].get("client", "python") if reports else client_kind,
            # How much of the clients' CPU is the kernel's (reads, TCP), over their whole run.
            "client_cpu_system_share": round(sum(r["cpu_system_seconds"] for r in reports)
                                             / max(sum(r["cpu_seconds"] for r in reports), 1e-9), 3),
            "post_ms": {"p50": round(sorted(post_seconds)[len(post_seconds) // 2] * 1000, 1),
                        "max": round(max(post_seconds) * 1000, 1)},
            "span_seconds": round(span, 2),
        })
        log(f"p99 {result['latency_ms']['p99']} ms, {result['missing']} missing, "
            f"{result['server_cpu_us_per_delivery']} µs CPU/delivery")
        for client in clients:
            client.close()
        if after is not None:
            after(server)
    except Exception as exc:
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        log(f"failed: {result['error']}\n{server.log_tail(1500)}")
    finally:
        for client in clients:
            client.close()
        server.stop()
    return result


# --- py-spy ---------------------------------------------------------------------------------


def start_profiler(server: servers.Server, seconds: float, scratch: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    """py-spy on the worker holding the most readers, for `seconds` of the timed posts."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("  py-spy is not installed: no profile", file=sys.stderr)
        return None
    worker = max(server.worker_pids(), key=lambda pid: rss_bytes([pid]))
    out = scratch / f"profile-{server.name}.txt"  # py-spy's raw (collapsed stacks) format
    process = subprocess.Popen([py_spy, "record", "--pid", str(worker), "--duration", str(int(seconds)),
                                "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, out


LINE_NUMBER = re.compile(r":\d+\)$")


def finish_profiler(profiler: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    process, out = profiler
    _, err = process.communicate()
    if not out.exists():
        return {"error": err.decode(errors="replace")[-500:]}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]  # by function, not line
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    share = lambda c: [(f, round(100 * n / total, 1)) for f, n in c.most_common(15)]  # noqa: E731
    return {"samples": total, "file": str(out), "self_percent": share(own), "inclusive_percent": share(inclusive)}


# --- read spike -------------------------------------------------------------------------------


def read_spike(server: servers.Server, seconds: int) -> dict[str, Any]:
    """Warm requests/s with wrk on the story page and the catch-up API, and their cache headers."""
    wrk = shutil.which("wrk")
    paths = {"story_page": f"/stories/{servers.SLUG}",
             "catch_up": f"/api/v1/stories/{servers.SLUG}/events?after=0"}
    found: dict[str, Any] = {"workers": server.workers}
    server.http.headers.pop("Authorization", None)  # a reader, not the newsroom
    for name, path in paths.items():
        response = server.http.get(path)
        headers = {h: response.headers.get(h) for h in ("etag", "last-modified", "cache-control", "vary")}
        entry: dict[str, Any] = {"path": path, "status": response.status_code, "bytes": len(response.content),
                                 "headers": headers}
        validators = {}
        if headers["etag"]:
            validators["If-None-Match"] = headers["etag"]
        if headers["last-modified"]:
            validators["If-Modified-Since"] = headers["last-modified"]
        if validators:
            entry["conditional_status"] = server.http.get(path, headers=validators).status_code
        if wrk is None:
            entry["requests_per_second"] = None
        else:
            url = f"http://{server.host}:{server.port}{path}"
            wrk_command = [wrk, "-t2", "-c64", f"-d{seconds}s", "--latency", url]
            subprocess.run([wrk, "-t1", "-c8", "-d1s", url], capture_output=True)  # warm
            entry["requests_per_second"], entry["wrk_p99_ms"] = _wrk(wrk_command)
            if validators:
                args = [a for k, v in validators.items() for a in ("-H", f"{k}: {v}")]
                entry["conditional_requests_per_second"], _ = _wrk([*wrk_command[:-1], *args, url])
        found[name] = entry
    if wrk is None:
        found["note"] = "wrk is not installed (apt-get install wrk): no requests/s"
    return found


def _wrk(command: list[str]) -> tuple[float | None, float | None]:
    out = subprocess.run(command, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = None
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return (float(rps.group(1)) if rps else None), p99_ms


# --- output ------------------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'N':>8} {'server':14} {'connect s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'deliv/s':>9} {'missing':>8} {'KB/reader':>9} {'CPU s/1k':>9} {'µs/deliv':>8} {'client CPU':>10} "
            f"{'µs/accept':>11}")
    lines = [head, "-" * len(head)]
    for r in results:
        if "error" in r or "skipped" in r:
            lines.append(f"{r['readers']:>8,} {r['server']:14} {r.get('skipped') or r['error']}")
            continue
        lat = r["latency_ms"]
        lines.append(
            f"{r['readers']:>8,} {r['server']:14} {r['connect_seconds']:>9.1f} {lat['p50']:>8.1f} {lat['p95']:>8.1f} "
            f"{lat['p99']:>8.1f} {lat['max']:>8.1f} {r['deliveries_per_second']:>9,} {r['missing']:>8,} "
            f"{r['memory_per_reader_kb']:>9.2f} {r['server_cpu_per_1000_deliveries']:>9.4f} "
            f"{r['server_cpu_us_per_delivery']:>8.1f} {r['client_cpu_seconds']:>9.1f}s {r['connect_cpu_us_per_reader']:>11.1f}")
        extra = {k: r[k] for k in ("duplicates", "id_mismatch", "streams_ended", "worker_restarts", "failed_readers",
                                   "reconnects_while_connecting", "bad_status", "protocol_errors") if r.get(k)}
        if r["open_readers"] < r["readers"]:
            extra["open_readers"] = r["open_readers"]  # the rest never got a stream
        if extra:
            lines.append(f"{'':>8} {'':14} ! {extra}")
    ratios = ratio_lines(results)
    if ratios:
        lines += ["", "Dateline / peer (below 1 is better for Dateline; deliveries/s: above 1 is better)", *ratios]
    return "\n".join(lines)


def ratio_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    ok = [r for r in results if "latency_ms" in r]
    for n in sorted({r["readers"] for r in ok}):
        mine = next((r for r in ok if r["readers"] == n and r["server"] == "dateline"), None)
        if mine is None:
            continue
        for peer in (r for r in ok if r["readers"] == n and r["server"] != "dateline"):
            def ratio(a: float, b: float) -> str:
                return f"{a / b:.2f}×" if b else "n/a"
            lines.append(
                f"{n:>8,} vs {peer['server']:14} p99 {ratio(mine['latency_ms']['p99'], peer['latency_ms']['p99'])}, "
                f"CPU/delivery {ratio(mine['server_cpu_us_per_delivery'], peer['server_cpu_us_per_delivery'])}, "
                f"memory/reader {ratio(mine['memory_per_reader_kb'], peer['memory_per_reader_kb'])}, "
                f"deliveries/s {ratio(mine['deliveries_per_second'], peer['deliveries_per_second'])}, "
                f"CPU/accepted reader {ratio(mine['connect_cpu_us_per_reader'], peer['connect_cpu_us_per_reader'])}")
    return lines


def plot(results: list[dict[str, Any]], path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot"
    ok = [r for r in results if "latency_ms" in r]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [("p99 latency (ms)", lambda r: r["latency_ms"]["p99"]),
              ("deliveries/s", lambda r: r["deliveries_per_second"]),
              ("server CPU µs per delivery", lambda r: r["server_cpu_us_per_delivery"])]
    for axis, (title, value) in zip(axes, panels):
        for name in SERVER_NAMES:
            rows = sorted((r for r in ok if r["server"] == name), key=lambda r: r["readers"])
            if rows:
                axis.plot([r["readers"] for r in rows], [value(r) for r in rows], marker="o", label=name)
        axis.set_xscale("log")
        axis.set_xlabel("readers (N)")
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
    axes[0].axhline(1000, color="grey", linestyle="--", linewidth=0.8)  # the 1 s target
    if ok:
        axes[0].legend()
    figure.suptitle("Live fan-out: one story, N readers (benchmarks/fanout)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return None


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "kernel": platform.release(), "open_files_limit": _nofile()}


def _nofile() -> int:
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def default_workers(readers: int, max_streams: int) -> int:
    """Enough processes for the readers with room to spare (the kernel does not balance a
    shared listening socket evenly), and at least one per core."""
    return max(os.cpu_count() or 1, math.ceil(readers * 1.3 / max_streams))


def write_report(out: Path, results: list[dict[str, Any]], spike: dict[str, Any] | None) -> None:
    report = {"benchmark": "fanout", "issue": 6, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), "command": " ".join(sys.argv), "runs": results, "read_spike": spike}
    (out / "results.json").write_text(json.dumps(report, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 readers, 10 posts: under a minute")
    parser.add_argument("--readers", default="10000,30000,60000,100000", help="N values, comma separated")
    parser.add_argument("--posts", type=int, default=20, help="timed posts (M) per run")
    parser.add_argument("--rate", type=float, default=0,
                        help="posts per second; default: 20,000 deliveries/s (N × rate), at most 5 posts/s")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES), help="which of " + ", ".join(SERVER_NAMES))
    parser.add_argument("--workers", type=int, default=0, help="server processes (default: by N, see README)")
    parser.add_argument("--max-streams", type=int, default=19_000, help="DATELINE_MAX_STREAMS for the run")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before memory is taken")
    parser.add_argument("--read-spike-seconds", type=int, default=10, help="wrk duration per path; 0: skip")
    parser.add_argument("--profile", type=float, default=0,
                        help="py-spy the busiest Dateline worker for this many seconds of the largest N")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for results.json and fanout.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--client", choices=CLIENTS, default="c",
                        help="the load client: compiled from loadclient.c (default) or loadclient.py")
    args = parser.parse_args(argv)
    global client_kind
    client_kind = args.client
    if args.quick:
        args.readers, args.posts, args.settle = "2000", 10, 1.0
        args.read_spike_seconds = min(args.read_spike_seconds, 3)
    sizes = [int(n.replace("_", "")) for n in args.readers.split(",")]
    names = [n.strip() for n in args.servers.split(",")]
    unknown = set(names) - set(SERVER_NAMES)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    if not Path("/proc/self/stat").exists():
        parser.error("needs Linux (/proc) for CPU and memory figures")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    results: list[dict[str, Any]] = []
    spike: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="fanout-") as tmp:
        for n in sizes:
            # A steady load every server here can carry on two cores at every N (Nchan needs
            # ~0.2 core for it, Dateline ~0.6), so latency shows the fan-out of one post rather
            # than a queue growing; raise --rate to find where each one saturates.
            rate = args.rate or min(5.0, DELIVERIES_PER_SECOND / n)
            workers = args.workers or default_workers(n, args.max_streams)
            for name in names:
                scratch = Path(tmp) / f"{name}-{n}"
                scratch.mkdir()
                server = make_server(name, workers, scratch, args.max_streams)
                after = None
                if name == "dateline" and spike is None and args.read_spike_seconds:
                    def after(s: servers.Server) -> None:
                        nonlocal spike
                        spike = read_spike(s, args.read_spike_seconds)
                profile = args.profile if name == "dateline" and n == max(sizes) else 0
                print(f"{name}: {n:,} readers, {args.posts} posts at {rate:g}/s, {workers} workers",
                      file=sys.stderr, flush=True)
                try:
                    results.append(run_one(server, n, args.posts, rate, args.settle, scratch, profile, out, after))
                except servers.Unavailable as reason:
                    print(f"  skipped: {reason}", file=sys.stderr)
                    results.append({"server": name, "readers": n, "skipped": f"skipped: {reason}"})
                    server.stop()
                write_report(out, results, spike)  # after every run: a long sweep cut short keeps its figures

    write_report(out, results, spike)
    print(table(results))
    if spike:
        print("\nRead spike (wrk -t2 -c64, warm; Dateline, %d workers)" % spike["workers"])
        for name in ("story_page", "catch_up"):
            e = spike[name]
            print(f"  {e['path']:45} {e.get('requests_per_second') or 0:>9,.0f} req/s  "
                  f"conditional: {e.get('conditional_requests_per_second') or '-'} req/s "
                  f"({e.get('conditional_status', 'no validator')})  {e['headers']}")
    for r in results:
        if "profile" in r and "self_percent" in r["profile"]:
            print(f"\npy-spy, {r['server']} worker at N={r['readers']:,} ({r['profile']['samples']} samples), self %:")
            for frame, pct in r["profile"]["self_percent"][:12]:
                print(f"  {pct:5.1f}%  {frame}")
    if not args.no_plot:
        problem = plot(results, out / "fanout.png")
        print(f"\n{problem}" if problem else f"\nPlot: {out / 'fanout.png'}")
    print(f"Results: {out / 'results.json'}")
    failed = [r for r in results if "error" in r or r.get("missing")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
