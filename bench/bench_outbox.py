"""The outbox at any size, measured in one run on this machine.

    python bench/bench_outbox.py            # 1,000,000 history rows, 10,000 queued (a few minutes)
    python bench/bench_outbox.py --quick    # 100,000 history rows, 2,000 queued

Two stores, side by side:

* **empty**: only the queued messages;
* **big**: the same queue behind a history of sent and received messages (most in the
  same chats as the queue, as after months of use).

For each it prints

* the claim cost: ``Store.claim_next`` + ``mark_sent`` per message, alone (median and p99);
* the drain rate: a real :class:`wadesk.core.session.Session` on a driver that answers at
  once (send interval 0), from CONNECTED to an empty outbox, in messages per second;
* ``POST /send`` latency while that drain runs: the real Flask app under waitress on
  loopback, one client sending as fast as it is answered (p50, p99, max);

and the big store's numbers as a ratio of the empty one's (target: within 2x).
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wadesk.core import driver as drv
from wadesk.core.events import Status
from wadesk.core.session import Session
from wadesk.core.store import Store

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 (a throwaway token for loopback)
CHATS = 50


def chat(i: int) -> str:
    return f"1555{i % CHATS:07d}@s.whatsapp.net"


def fill(path: Path, history: int, queued: int) -> None:
    """History first (sent and received), then the queue, spread over CHATS chats."""
    store = Store(path)
    now = time.time()
    batch = 20_000
    with store.transaction() as db:
        for start in range(0, history, batch):
            rows = []
            for i in range(start, min(history, start + batch)):
                out = i % 3 != 0
                rows.append(
                    (
                        f"msg_h{i:09d}",
                        "out" if out else "in",
                        chat(i),
                        f"history message {i}",
                        "read" if out else "received",
                        f"WA{i:012d}",
                        now - history + i,
                        now - history + i,
                    )
                )
            db.executemany(
                "INSERT INTO messages (id, direction, chat, text, status, wa_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    store.close()
    store = Store(path)
    for i in range(queued):
        store.enqueue(chat(i), f"queued message {i}")
    store.close()


def claim_cost(path: Path, rounds: int) -> list[float]:
    store = Store(path)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        record = store.claim_next()
        assert record is not None
        store.mark_sent(record.id, secrets.token_hex(8), time.time())
        times.append(time.perf_counter() - started)
    store.close()
    return times


class InstantDriver:
    def __init__(self, post) -> None:  # type: ignore[no-untyped-def]
        self.id = secrets.token_hex(4)
        self.post = post
        self.sent = 0

    def start(self) -> None:
        self.post(
            drv.Connected(self.id, jid="15550001111@s.whatsapp.net", phone="15550001111", push_name="B")
        )

    def stop(self, timeout: float = 3.0) -> bool:
        return True

    def send_text(self, jid: str, text: str) -> drv.SendResult:
        self.sent += 1
        return drv.SendResult(wa_id=secrets.token_hex(8), timestamp=time.time())


def drain(path: Path, expected: int) -> tuple[float, list[float]]:
    """(messages per second, /send latencies in seconds during the drain)."""
    from waitress.server import create_server

    from wadesk.api.app import create_app

    store = Store(path)
    drivers: list[InstantDriver] = []

    def factory(post):  # type: ignore[no-untyped-def]
        drivers.append(InstantDriver(post))
        return drivers[-1]

    session = Session(store, path.with_name("whatsapp.db"), send_interval=0, driver_factory=factory)
    app = create_app(session, token=TOKEN)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    port = server.effective_port
    latencies: list[float] = []
    stop = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"to": "+1 555 999 0000", "text": "during the drain"})
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        while not stop.is_set():
            started = time.perf_counter()
            conn.request("POST", "/send", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 202, response.status
            latencies.append(time.perf_counter() - started)
        conn.close()

    started = time.perf_counter()
    session.start()
    while session.state.status is not Status.CONNECTED:
        time.sleep(0.001)
    sender = threading.Thread(target=client)
    sender.start()
    while drivers[-1].sent < expected:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    sender.join()
    session.stop()
    server.close()
    store.close()
    return expected / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    history, queued = (100_000, 2_000) if args.quick else (1_000_000, 10_000)
    rounds = min(1000, queued // 2)
    work = Path(tempfile.mkdtemp(prefix="wadesk-bench-outbox-"))
    results = {}
    try:
        for name, rows in (("empty", 0), ("big", history)):
            folder = work / name
            folder.mkdir()
            t0 = time.perf_counter()
            fill(folder / "wadesk.db", rows, queued)
            took = time.perf_counter() - t0
            print(f"{name}: {rows:,} history rows + {queued:,} queued, filled in {took:.1f} s")
            snapshot = folder / "snapshot.db"
            shutil.copy(folder / "wadesk.db", snapshot)
            costs = claim_cost(folder / "wadesk.db", rounds)
            for suffix in ("", "-wal", "-shm"):
                (folder / f"wadesk.db{suffix}").unlink(missing_ok=True)
            shutil.copy(snapshot, folder / "wadesk.db")
            rate, latencies = drain(folder / "wadesk.db", queued)
            results[name] = {
                "claim_median_us": statistics.median(costs) * 1e6,
                "claim_p99_us": pct(costs, 0.99) * 1e6,
                "drain_per_s": rate,
                "send_p50_ms": pct(latencies, 0.5) * 1e3,
                "send_p99_ms": pct(latencies, 0.99) * 1e3,
                "send_max_ms": max(latencies) * 1e3,
                "sends": len(latencies),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    empty, big = results["empty"], results["big"]
    print()
    print(f"{'':28} {'empty store':>14} {f'{history:,} history':>16} {'ratio':>7}")
    for key, label, worse_is_higher in (
        ("claim_median_us", "claim + mark_sent, median µs", True),
        ("claim_p99_us", "claim + mark_sent, p99 µs", True),
        ("drain_per_s", "drain, messages/s", False),
        ("send_p50_ms", "POST /send while draining, p50 ms", True),
        ("send_p99_ms", "POST /send while draining, p99 ms", True),
        ("send_max_ms", "POST /send while draining, max ms", True),
    ):
        ratio = big[key] / empty[key] if worse_is_higher else empty[key] / big[key]
        print(f"{label:34} {empty[key]:>8.1f} {big[key]:>16.1f} {ratio:>6.2f}x")
    print(f"(/send answered during the drains: {empty['sends']:,} and {big['sends']:,}; ratio > 1 is worse)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
