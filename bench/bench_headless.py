"""Benchmarks of ``wadesk --headless``, measured in one run on this machine.

    python bench/bench_headless.py            # about a minute
    python bench/bench_headless.py --quick    # fewer rounds

* cold start: from starting the process to the first 200 from GET /health (median of runs),
  next to the same for a bare Flask + waitress app;
* idle RSS: after the session has loaded neonize and tried WhatsApp, then sat idle;
* GET /health requests per second, against the bare Flask + waitress app started the same
  way (a child process of this Python, same waitress thread count), rounds alternating;
* durable sends accepted per second: POST /send answered 202 (each committed to SQLite with
  synchronous=FULL before its answer), one connection and several at once; afterwards the
  outbox depth is checked against the number of 202s;
* QR PNG render time: wadesk.qr.png for a fresh WhatsApp-sized code each time.

WhatsApp is unreachable during the run (the proxy points at a closed port), so the real
neonize client is loaded and retrying, and nothing drains the outbox. Load comes from other
processes of this machine over loopback keep-alive connections (a minimal HTTP/1.1 client,
so that the load generator costs little next to the server).
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN = "bench-token-" + secrets.token_hex(12)
THREADS = 16  # wadesk.api.server.THREADS
TARGETS = {
    "cold_start_s": 1.5,
    "idle_rss_mb": 90.0,
    "health_ratio": 0.9,
    "sends_per_s": 500.0,
    "qr_png_ms": 10.0,
}


# ---- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.log = workdir / f"{kind}-{self.port}.log"
        self.data = workdir / f"data-{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WADESK_", "WEBHOOK_", "LOG_"))}
        env.update(
            WADESK_DATA_DIR=str(self.data),
            WADESK_API_TOKEN=TOKEN,
            WADESK_PROXY=f"http://127.0.0.1:{free_port()}",  # WhatsApp unreachable
            PORT=str(self.port),
            HOST="127.0.0.1",
        )
        if kind == "wadesk":
            self.argv = [sys.executable, "-m", "wadesk", "--headless"]
        else:
            self.argv = [sys.executable, str(HERE / "headless_bare_app.py"), str(self.port), str(THREADS)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start; return seconds until the first 200 from GET /health."""
        with open(self.log, "ab") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log, cwd=REPO)
        request = b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        deadline = started + 30
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(request)
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.002)
        raise RuntimeError(f"{self.kind} did not answer /health within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)

    def rss_mb(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]

    def get_json(self, path: str) -> dict[str, Any]:
        client = RawClient(self.port)
        try:
            status, body = client.request(get(path))
        finally:
            client.close()
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)  # type: ignore[no-any-return]


# ---- a minimal keep-alive HTTP/1.1 client --------------------------------------------------------


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()


def post_json(path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(rest) < length:
            self.buf = rest
            self._fill()
            rest = self.buf
        self.buf = rest[length:]
        return int(head[9:12]), rest[:length]

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


# ---- load from other processes ------------------------------------------------------------------


def _health_worker(port: int, seconds: float, start: Any, out: Any) -> None:
    client = RawClient(port)
    request = get("/health")
    start.wait()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        status, _ = client.request(request)
        if status != 200:
            raise RuntimeError(f"/health answered {status}")
        count += 1
    out.put(count)
    client.close()


def _send_worker(port: int, count: int, tag: str, connections: int, start: Any, out: Any) -> None:
    results: list[int] = []

    def run(index: int) -> None:
        client = RawClient(port)
        accepted = 0
        for i in range(index, count, connections):
            status, body = client.request(post_json("/send", {"to": "+1 555 000 2222", "text": f"{tag} {i}"}))
            if status != 202:
                raise RuntimeError(f"/send answered {status}: {body[:200]!r}")
            accepted += 1
        results.append(accepted)
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    start.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sum(results))


def run_clients(
    target: Callable[..., None], args_for: Callable[[int], tuple[Any, ...]], procs: int
) -> tuple[int, float]:
    """Start ``procs`` client processes, release them together; (total count, wall seconds)."""
    ctx = mp.get_context("fork")
    start = ctx.Event()
    out = ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args_for(i), start, out)) for i in range(procs)]
    for w in workers:
        w.start()
    time.sleep(0.2)  # let every client connect before the clock starts
    began = time.perf_counter()
    start.set()
    total = sum(out.get(timeout=300) for _ in workers)
    elapsed = time.perf_counter() - began
    for w in workers:
        w.join(10)
        if w.exitcode != 0:
            raise RuntimeError(f"a load process failed ({w.exitcode})")
    return total, elapsed


def health_rps(port: int, seconds: float, procs: int) -> float:
    total, _ = run_clients(_health_worker, lambda i: (port, seconds), procs)
    return total / seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health_cpu_us(server: Server, requests: int = 4000) -> float:
    """Server CPU time per GET /health, one request at a time (less sensitive to other load)."""
    assert server.proc is not None
    client = RawClient(server.port)
    request = get("/health")
    for _ in range(200):
        client.request(request)
    before = cpu_seconds(server.proc.pid)
    for _ in range(requests):
        client.request(request)
    used = cpu_seconds(server.proc.pid) - before
    client.close()
    return used / requests * 1e6


def sends_per_second(port: int, count: int, procs: int, connections: int) -> tuple[float, int]:
    tag = secrets.token_hex(4)
    total, elapsed = run_clients(
        _send_worker, lambda i: (port, count // procs, f"{tag}-{i}", connections), procs
    )
    return total / elapsed, total


# ---- QR -------------------------------------------------------------------------------------------


def qr_render_ms(rounds: int) -> tuple[float, float, float]:
    sys.path.insert(0, str(REPO))
    from wadesk import qr

    def code() -> str:  # shaped like whatsmeow's: ref, noise key, identity key, adv secret, platform
        parts = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (18, 32, 32, 32)]
        return "2@" + ",".join(parts) + ",1"

    qr.png(code())  # imports and first-use costs are not what a new code costs
    times = []
    for _ in range(rounds):
        c = code()
        began = time.perf_counter()
        png = qr.png(c)
        times.append((time.perf_counter() - began) * 1000)
        assert png.startswith(b"\x89PNG")
    times.sort()
    # GET /qr serves a code that was encoded when it arrived (for the log): only the PNG is new
    known = code()
    qr.text_art(known)
    served = []
    for _ in range(rounds):
        began = time.perf_counter()
        qr.png(known)
        served.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), times[int(len(times) * 0.95) - 1], statistics.median(served)


# ---- the run ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    starts, rounds, seconds = (3, 3, 1.5) if args.quick else (7, 8, 2.0)
    results: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="wadesk-bench-"))
    print(f"wadesk headless benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    try:
        # cold start
        for kind in ("wadesk", "bare"):
            times = []
            for _ in range(starts):
                server = Server(kind, workdir)
                times.append(server.start())
                server.stop()
            results[f"cold_start_{kind}_s"] = statistics.median(times)
            results[f"cold_start_{kind}_all_s"] = [round(t, 3) for t in times]
        results["cold_start_s"] = results["cold_start_wadesk_s"]

        ours, bare = Server("wadesk", workdir), Server("bare", workdir)
        ours.start()
        bare.start()
        try:
            # idle RSS, once the session loaded neonize and tried to connect
            deadline = time.monotonic() + 30
            while ours.get_json("/status")["state"] == "starting" and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(5)
            results["idle_rss_mb"] = ours.rss_mb()
            results["idle_rss_bare_mb"] = bare.rss_mb()

            # /health throughput: paired rounds, alternating which goes first; the median ratio
            mine, theirs, ratios = [], [], []
            for i in range(rounds):
                pair = [(ours, mine), (bare, theirs)]
                for server, into in pair if i % 2 == 0 else pair[::-1]:
                    into.append(health_rps(server.port, seconds, 2))
                ratios.append(mine[-1] / theirs[-1])
            results["health_rps"] = statistics.median(mine)
            results["health_bare_rps"] = statistics.median(theirs)
            results["health_ratio"] = statistics.median(ratios)
            results["health_ratios"] = [round(r, 2) for r in ratios]
            cpu_ours = statistics.median(health_cpu_us(ours) for _ in range(3))
            cpu_bare = statistics.median(health_cpu_us(bare) for _ in range(3))
            results["health_cpu_us"] = cpu_ours
            results["health_cpu_bare_us"] = cpu_bare

            # durable sends
            before = ours.get_json("/status")["outbox_depth"]
            seq, n_seq = sends_per_second(ours.port, 1000, 1, 1)
            conc, n_conc = sends_per_second(ours.port, 2000, 4, 2)
            after = ours.get_json("/status")["outbox_depth"]
            results["sends_sequential_per_s"] = seq
            results["sends_concurrent_per_s"] = conc
            results["sends_per_s"] = min(seq, conc)
            results["sends_accepted"] = n_seq + n_conc
            results["sends_in_outbox"] = after - before
            results["rss_after_load_mb"] = ours.rss_mb()
        finally:
            ours.stop()
            bare.stop()

        median_ms, p95_ms, served_ms = qr_render_ms(200)
        results["qr_png_ms"] = median_ms
        results["qr_png_p95_ms"] = p95_ms
        results["qr_png_served_ms"] = served_ms
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def verdict(key: str, higher_is_better: bool) -> str:
        ok = results[key] >= TARGETS[key] if higher_is_better else results[key] <= TARGETS[key]
        return "ok" if ok else "MISSED"

    r = results
    notes = {
        "start": f"bare Flask+waitress {r['cold_start_bare_s']:.2f} s "
        f"(x{r['cold_start_s'] / r['cold_start_bare_s']:.2f}); runs {r['cold_start_wadesk_all_s']}",
        "rss": f"bare {r['idle_rss_bare_mb']:.1f} MB; after the load {r['rss_after_load_mb']:.1f} MB",
        "health": f"bare {r['health_bare_rps']:.0f} req/s; ratio {r['health_ratio']:.2f} "
        f"(rounds {r['health_ratios']}); server CPU per request {r['health_cpu_us']:.0f} us, bare "
        f"{r['health_cpu_bare_us']:.0f} us (x{r['health_cpu_bare_us'] / r['health_cpu_us']:.2f})",
        "sends": f"1 connection {r['sends_sequential_per_s']:.0f}/s, 8 connections "
        f"{r['sends_concurrent_per_s']:.0f}/s; {r['sends_in_outbox']} of {r['sends_accepted']} 202s "
        "in the outbox",
        "qr": f"a fresh code, encoding included; p95 {r['qr_png_p95_ms']:.2f} ms; GET /qr's PNG of a code "
        f"already encoded {r['qr_png_served_ms']:.2f} ms",
    }
    t = TARGETS
    rows = [
        ("cold start to first /health 200", f"{r['cold_start_s']:.2f} s", f"<= {t['cold_start_s']} s",
         verdict("cold_start_s", False), notes["start"]),
        ("idle RSS", f"{r['idle_rss_mb']:.1f} MB", f"<= {t['idle_rss_mb']:.0f} MB",
         verdict("idle_rss_mb", False), notes["rss"]),
        ("GET /health", f"{r['health_rps']:.0f} req/s", f">= {t['health_ratio']} x bare",
         verdict("health_ratio", True), notes["health"]),
        ("durable sends accepted", f"{r['sends_per_s']:.0f} /s", f">= {t['sends_per_s']:.0f} /s",
         verdict("sends_per_s", True), notes["sends"]),
        ("QR PNG render", f"{r['qr_png_ms']:.2f} ms", f"< {t['qr_png_ms']:.0f} ms",
         verdict("qr_png_ms", False), notes["qr"]),
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print()
    for name, value, target, ok, note in rows:
        print(f"{name:<{width}}  {value:>12}  {target:<14} {ok:<6}  {note}")
    if r["sends_in_outbox"] != r["sends_accepted"]:
        print("ERROR: not every 202 is in the outbox")
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
