"""One notification to N subscribers, through a push service on loopback: Dateline's sender
against pywebpush's usual synchronous loop, side by side, in the same run.

    python benchmarks/push_fanout.py                 # 100,000 subscribers
    python benchmarks/push_fanout.py --quick         # 5,000 subscribers, under a minute
    python benchmarks/push_fanout.py --tls --rtt-ms 40 --pywebpush 200    # a push service 40 ms away
    python benchmarks/push_fanout.py --site-followers 0.5    # half of them follow the whole site

Dateline runs as an operator would run it (`dateline serve`, one process a core, SQLite),
and the notification is posted through the API with "notify". The push service runs in a
process of its own; it checks the VAPID token and decrypts one message in 100 (the tests
check every one). pywebpush is timed on a sample of the same subscribers (its loop is slow
enough that 100,000 would take minutes), and its time for N is extrapolated from its rate.
Needs `pip install pywebpush` for the comparison (skipped without it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "push"))  # the test push service

from push_service import Browser, PushService  # noqa: E402

from dateline.accounts import users as accounts  # noqa: E402
from dateline.stories import story as stories  # noqa: E402
from dateline.db import Database  # noqa: E402
from dateline.push import subscriptions  # noqa: E402
from dateline.schema import push_subscriptions  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(group: int) -> float:
    """User + system CPU of every live process in a process group (a server and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_service(port: int, ready: "multiprocessing.synchronize.Event", shared: dict[str, str]) -> None:
    """The push service, in its own process: knows every subscription by its token."""
    tls = bool(shared["certificates"])
    service = PushService(verify_every=100, tls=tls, certificate_dir=shared["certificates"] or None,
                          delay=float(shared["delay"]), max_streams=1000, strict_http2=False)
    service.origin = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    keys = Browser.from_pem(shared["pem"], shared["auth"])
    service.vapid_public_key = shared["vapid"]
    service.accept_any = keys  # every endpoint is a browser with these keys
    service.ready = ready  # set once it listens
    service.serve_forever(port)


def setup(folder: Path, n: int, origin: str, browser: Browser,
          site_share: float = 0.0) -> tuple[str, str, str, list[str]]:
    """A database as `dateline init` makes it, an editor, a live story and `n` browsers to
    notify: followers of the story, and `site_share` of them followers of the whole site, of
    whom one in ten follows the story too (a second subscription, and one message all the
    same)."""
    url = f"sqlite:///{folder / 'bench.db'}"
    db = Database(url)
    db.migrate()
    with db.write() as conn:
        subscriptions.ensure_key(conn)
        editor = accounts.create_user(conn, "eve", "correct horse battery", accounts.Role.editor, "Eve")
        story = stories.create_story(conn, headline="Count night in Dravonne", status="live")
        token = accounts.create_token(conn, editor, "bench")
    endpoints = [f"{origin}/push/{i:08d}" for i in range(n)]
    now = datetime.now(timezone.utc)
    keys = {"p256dh": browser.public(), "auth": browser.auth_b64(), "created_at": now}
    rows, site_wide = [], 0
    for i, endpoint in enumerate(endpoints):
        follows_site = int((i + 1) * site_share) > int(i * site_share)  # spread evenly: the share exactly
        rows.append({"endpoint": endpoint, "story_id": None if follows_site else story.id, **keys})
        if follows_site:
            if site_wide % 10 == 0:
                rows.append({"endpoint": endpoint, "story_id": story.id, **keys})
            site_wide += 1
    with db.write() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(push_subscriptions.insert(), rows[start:start + 5000])
    db.dispose()
    return url, token, story.slug, endpoints


def dateline_run(url: str, token: str, slug: str, n: int, workers: int, cafile: str, service_pid: int) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "DATELINE_DATABASE_URL": url, "DATELINE_LOG_LEVEL": "warning",
           "DATELINE_PUSH_TEST_ENDPOINTS": "1", "DATELINE_PUSH_CONCURRENCY": "64"}
    if cafile:
        env["SSL_CERT_FILE"] = cafile  # trust the push service's own certificate
    server = subprocess.Popen([sys.executable, "-m", "dateline", "serve", "--port", str(port), "--workers", str(workers)],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/v1/stories", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        cpu_before, service_before = cpu_seconds(server.pid), process_cpu_seconds(service_pid)
        started = time.perf_counter()
        created = api.post(f"/api/v1/stories/{slug}/entries", timeout=600,
                           json={"kind": "text", "body": "The electoral commission has declared the result.", "notify": True})
        created.raise_for_status()
        posted = time.perf_counter() - started  # the post's transaction counts its recipients
        while True:
            note = api.get(f"/api/v1/stories/{slug}/notifications").json()["notifications"][0]
            if note["finished_at"]:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        service_cpu = process_cpu_seconds(service_pid) - service_before
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    if note["sent"] != n:
        raise SystemExit(f"Dateline sent {note['sent']} of {n} ({note['failed']} failed: {note['last_error']})")
    return {"seconds": elapsed, "posted_ms": posted * 1e3, "rate": n / elapsed, "cpu_us": cpu / n * 1e6, "service_us": service_cpu / n * 1e6,
            "service_share": service_cpu / elapsed}


def pywebpush_run(endpoints: list[str], browser: Browser, vapid_pem: str, sample: int, cafile: str) -> dict[str, float] | None:
    try:
        import requests
        from py_vapid import Vapid
        from pywebpush import webpush
    except ImportError:
        print("pywebpush is not installed: pip install pywebpush (comparison skipped)")
        return None
    payload = json.dumps({"title": "Count night in Dravonne", "body": "The electoral commission has declared the result.",
                          "url": "/stories/count-night/entries/1"})
    keys = {"p256dh": browser.public(), "auth": browser.auth_b64()}
    vapid = Vapid.from_pem(vapid_pem.encode())
    session = requests.Session()  # kept-alive connections: pywebpush at its best
    if cafile:
        session.verify = cafile
        session.trust_env = False  # REQUESTS_CA_BUNDLE would win over `verify`
    started, cpu_before = time.perf_counter(), time.process_time()
    for endpoint in endpoints[:sample]:
        webpush({"endpoint": endpoint, "keys": keys}, payload, vapid_private_key=vapid,
                vapid_claims={"sub": "mailto:webmaster@localhost"}, ttl=21600, requests_session=session)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rate": sample / elapsed, "cpu_us": (time.process_time() - cpu_before) / sample * 1e6}


def httpx_run(endpoints: list[str], browser: Browser, key: Any, sample: int, cafile: str) -> dict[str, float]:
    """httpx's AsyncClient with `http2=True`, the same encryption and VAPID as Dateline's, all
    of the sample sent at once (httpx multiplexes them on its HTTP/2 connection)."""
    import asyncio
    import ssl

    from dateline.push import webpush

    payload = json.dumps({"title": "Count night in Dravonne", "body": "The electoral commission has declared the result.",
                          "url": "/stories/count-night/entries/1"}).encode()
    authorization = webpush.vapid_authorization(endpoints[0], key, "mailto:desk@example.org")
    p256dh, auth = webpush.unb64u(browser.public()), browser.auth

    async def main() -> None:
        verify = ssl.create_default_context(cafile=cafile) if cafile else True
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        # Over plain HTTP there is no HTTP/2: at most one request per connection at a time, so
        # the sample waits its turn here (httpx's own pool queue costs it more the longer it is).
        in_flight = asyncio.Semaphore(100 if not cafile else sample)
        async with httpx.AsyncClient(http2=True, verify=verify, limits=limits, timeout=60) as client:
            async def one(endpoint: str) -> None:
                body = webpush.encrypt(payload, p256dh, auth)
                async with in_flight:
                    response = await client.post(endpoint, content=body, headers={
                        "TTL": "21600", "Content-Encoding": "aes128gcm", "Authorization": authorization})
                response.raise_for_status()
            await asyncio.gather(*(one(endpoint) for endpoint in endpoints[:sample]))

    started, cpu_before = time.perf_counter(), time.process_time()
    asyncio.run(main())
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rate": sample / elapsed, "cpu_us": (time.process_time() - cpu_before) / sample * 1e6}


def in_delayed_network(rtt_ms: float) -> str:
    """Run this script again in a network namespace of its own whose loopback delays every
    packet by half the round trip (`tc qdisc … netem`), so the push service is `rtt_ms`
    away, TLS handshakes and all. Needs root (or CAP_NET_ADMIN); touches nothing outside.

    Where the kernel has no netem (a machine without the sch_netem module), the push service
    instead answers each request `rtt_ms` late: the same wait per request, which is what
    caps a sender's rate, but handshakes and TCP's own pacing are not delayed. Returns which."""
    if os.environ.get("DATELINE_BENCH_DELAYED") == str(rtt_ms):
        return "netem"
    probe = "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("tc") and shutil.which("ip")) or \
            subprocess.run(["unshare", "--net", "sh", "-c", probe], capture_output=True).returncode:
        print(f"netem is not available here: the push service answers each request {rtt_ms:g} ms late instead")
        return "answer delay"
    script = (f"ip link set lo up && tc qdisc add dev lo root netem delay {rtt_ms / 2:g}ms limit 1000000 && "
              f"exec {sys.executable} {' '.join(map(repr, sys.argv))}")
    env = {**os.environ, "DATELINE_BENCH_DELAYED": str(rtt_ms)}
    raise SystemExit(subprocess.run(["unshare", "--net", "sh", "-c", script], env=env).returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="5,000 subscribers, samples of 500 for pywebpush and httpx: under a minute")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--pywebpush", type=int, default=3000, help="subscribers in pywebpush's timed sample; 0: none")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tls", action="store_true",
                        help="https with HTTP/2 (as real push services), instead of plain HTTP/1.1")
    parser.add_argument("--httpx", type=int, default=5000, help="subscribers in httpx's (http2=True) timed sample; 0: none")
    parser.add_argument("--site-followers", type=float, default=0.0, metavar="SHARE",
                        help="the share of the browsers that follow the whole site, not the story (0 to 1)")
    parser.add_argument("--rtt-ms", type=float, default=0.0,
                        help="the push service this many ms away (a network namespace with netem delay; root)")
    args = parser.parse_args()
    if not 0 <= args.site_followers <= 1:
        parser.error("--site-followers is a share: between 0 and 1")
    for name, quick in (("subscribers", 5_000), ("pywebpush", 500), ("httpx", 500)):
        if args.quick and getattr(args, name) == parser.get_default(name):  # what is given stays
            setattr(args, name, quick)
    n = args.subscribers
    delay_kind = in_delayed_network(args.rtt_ms) if args.rtt_ms else ""

    folder = Path(tempfile.mkdtemp(prefix="dateline-push-bench-"))
    browser = Browser.new()
    port = free_port()
    origin = f"{'https' if args.tls else 'http'}://127.0.0.1:{port}"
    cafile = str(folder / "cert.pem") if args.tls else ""
    try:
        print(f"Setting up {n:,} subscribers…", flush=True)
        url, token, slug, endpoints = setup(folder, n, origin, browser, args.site_followers)
        db = Database(url)
        with db.read() as conn:
            key, vapid = subscriptions.current_key(conn)  # type: ignore[misc]
        db.dispose()
        ready = multiprocessing.Event()
        shared = {"pem": browser.pem(), "auth": browser.auth_b64(), "vapid": vapid,
                  "certificates": str(folder) if args.tls else "",
                  "delay": str(args.rtt_ms / 1000 if delay_kind == "answer delay" else 0)}
        service = multiprocessing.Process(target=run_service, args=(port, ready, shared), daemon=True)
        service.start()
        ready.wait(10)
        time.sleep(0.3)

        ours = dateline_run(url, token, slug, n, args.workers, cafile, service.pid)
        from cryptography.hazmat.primitives import serialization
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        theirs = pywebpush_run(endpoints, browser, pem, min(args.pywebpush, n), cafile) if args.pywebpush else None
        plain = httpx_run(endpoints, browser, key, min(args.httpx, n), cafile) if args.httpx else None
        service.terminate()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    cores = os.cpu_count()
    wire = "https, HTTP/2 (pywebpush: HTTP/1.1)" if args.tls else "plain HTTP/1.1"
    away = f"{args.rtt_ms:g} ms away ({delay_kind})" if args.rtt_ms else "on loopback"
    followers = f", {args.site_followers:.0%} of them site-wide" if args.site_followers else ""
    print(f"\nOne notification to {n:,} subscribers{followers}, push service {away} ({wire}), "
          f"{cores} cores shared by all")
    print(f"{'':34} {'to reach all':>14} {'per second':>12} {'CPU per message':>16}")
    print(f"{'Dateline (' + str(args.workers) + ' processes)':34} {ours['seconds']:>12.1f} s {ours['rate']:>12,.0f} "
          f"{ours['cpu_us']:>13.0f} µs")
    print(f"{'  the post itself (with its outbox)':34} {ours['posted_ms'] / 1000:>12.2f} s")
    print(f"{'  the test push service meanwhile':34} {'':>14} {'':>12} {ours['service_us']:>13.0f} µs"
          f"   ({ours['service_share']:.0%} of a core)")
    if theirs:
        print(f"{'pywebpush loop (requests)':34} {n / theirs['rate']:>12.1f} s {theirs['rate']:>12,.0f} "
              f"{theirs['cpu_us']:>13.0f} µs   (timed on {min(args.pywebpush, n):,}, extrapolated)")
    if plain:
        print(f"{'httpx AsyncClient, http2=True':34} {n / plain['rate']:>12.1f} s {plain['rate']:>12,.0f} "
              f"{plain['cpu_us']:>13.0f} µs   (timed on {min(args.httpx, n):,}, extrapolated)")
    if theirs:
        print(f"\nDateline is {ours['rate'] / theirs['rate']:.1f}× pywebpush's loop"
              + (f", {ours['rate'] / plain['rate']:.1f}× httpx." if plain else "."))


if __name__ == "__main__":
    main()
