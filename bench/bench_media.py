"""Media end to end with the real gateway and the real WhatsApp client, measured in one run.

    python bench/bench_media.py            # 3 rounds of each file, 3 x 500 texts before and after
    python bench/bench_media.py --quick    # 1 round of each file, 1 x 200 texts (about 10 s)

``wadesk --headless`` (WADESK_SEND_INTERVAL=0) runs as a child process, paired by its QR code
to the fake WhatsApp server of ``tests/fakewa``, which runs in this process: the real neonize
client logs in, uploads to the fake media host and sends messages that a fake peer decrypts.
The fake's test CA lives in a temporary folder; the gateway starts with ``SSL_CERT_FILE``
naming it and no proxy variables. Everything is on loopback.

* **text, the baseline**: POST /send of text, one request after the other on one keep-alive
  connection (from a separate process, so that the fake server's work in this one does not
  slow the client): the 202s per second, their p50 and p99, and the drain rate, messages the
  peer decrypted per second from the first POST to the last message decrypted;
* **a 5 MB image** (a JPEG of noise) and **a 50 MB document** (a PDF header and random
  bytes), each a multipart POST /send: seconds from starting the POST to its 202, and to the
  peer's decrypted copy (compared by SHA-256), the median of the rounds; the notes split the
  time at the upload stored by the media host and the message decrypted by the peer;
* **peak RSS growth of the gateway** while the 50 MB document is sent: VmRSS from
  ``/proc/<pid>/status`` every 20 ms (and VmHWM, reset before each send when the kernel
  allows) from just before the POST until the peer has the file, minus VmRSS just before;
  printed with its ratio to the file size (target: under 3x), split by phase (receiving
  the POST, until the upload is stored, until the peer has it) and as a timeline; and the
  highest RSS over the document rounds sent one after the other, above the RSS before them;
* **text again**, after the media, next to the baseline (target: within 0.8x of it).

Text rounds are repeated (3 before and 3 after, 1 with --quick): the rates are the best
round's (other load on the machine only ever slows a round down), the latencies the median
of the rounds'. The first round after the media also pays for the gateway giving back the
memory of the uploads (its RSS falls by about 100 MB then): with --quick it is the only one.
The gateway's CPU time per text (all its threads, from /proc) is printed next to the fake's
(this process), which is less sensitive to the other load on the machine than the rates.

Two costs of the fake grow with what it was sent, in this process, and would be charged to
the gateway (both share the machine's cores); the bench replaces them in the fake as loaded
here (``--stock-fake`` keeps the fake as it is):

* its media host's request reader appends each received chunk to a ``bytes`` buffer, which
  is quadratic in the body: about 45 s to take in a 50 MB upload here. The bench's reader
  parses the same way into a ``bytearray``;
* the client sends prekey messages until a contact answers (none does here), and the fake
  contact sets up a new Signal session for each one and walks the sending chain from its
  start: the n-th message costs n steps, for the peer and for the account's own phone (which
  gets a copy of every message), so every round would be slower than the one before. The
  bench keeps the session a prekey message with a known base key set up, as libsignal does.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
import queue
import random
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakewa.harness import FakeWhatsApp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TESTS = REPO / "tests"
TOKEN = "bench-token-" + secrets.token_hex(12)
PEER = "+1 555 000 2222"
PEER_PHONE = "15550002222"
IMAGE_SIZE = (2400, 1800)  # a JPEG of noise at quality 95: about 5 MB
DOCUMENT_BYTES = 50 * 1000 * 1000
SAMPLE_EVERY = 0.02
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
OUR_SETTINGS = ("WADESK_", "WEBHOOK_", "LOG_", "PORT", "HOST")
TARGETS = {"rss_ratio": 3.0, "text_ratio": 0.8}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- a minimal keep-alive HTTP/1.1 client --------------------------------------------------------


class RawClient:
    def __init__(self, port: int, timeout: float = 60) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *parts: bytes | memoryview) -> None:
        for part in parts:
            self.sock.sendall(part)

    def response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        found = re.search(rb"(?i)content-length:\s*(\d+)", head)
        length = int(found.group(1)) if found else 0
        while len(rest) < length:
            self.buf = rest
            self._fill()
            rest = self.buf
        self.buf = rest[length:]
        return int(head[9:12]), rest[:length]

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self.send(raw)
        return self.response()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()


def post_json(path: str, body: dict[str, Any], token: str = TOKEN) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def multipart(fields: dict[str, str], filename: str, size: int) -> tuple[bytes, bytes]:
    """A multipart POST /send around a file of ``size`` bytes: (request up to the file, the rest)."""
    boundary = "bench-" + secrets.token_hex(16)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"POST /send HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n"
    ).encode()
    return request + head, tail


def _text_client(port: int, token: str, count: int, tag: str, out: Any) -> None:
    """POST ``count`` texts one after the other on one connection; put each (start, end)."""
    client = RawClient(port)
    times: list[tuple[float, float]] = []
    for i in range(count):
        raw = post_json("/send", {"to": PEER, "text": f"{tag} {i}"}, token)
        began = time.monotonic()
        status, body = client.request(raw)
        times.append((began, time.monotonic()))
        if status != 202:
            out.put(f"/send answered {status}: {body[:200]!r}")
            client.close()
            return
    client.close()
    out.put(times)


# ---- the gateway process ------------------------------------------------------------------------


class Gateway:
    """``python -m wadesk --headless`` in a child process, paired to the fake WhatsApp."""

    def __init__(self, fake: FakeWhatsApp, workdir: Path) -> None:
        self.port = free_port()
        self.data = workdir / "data"
        self.log = workdir / "wadesk.log"
        env = {
            k: v
            for k, v in fake.child_env().items()
            if not k.startswith(OUR_SETTINGS) and k.upper() not in PROXY_VARS
        }
        env.pop("PYTHONWARNINGS", None)
        env.update(
            WADESK_DATA_DIR=str(self.data),
            WADESK_API_TOKEN=TOKEN,
            WADESK_SEND_INTERVAL="0",
            WADESK_PROXY=fake.proxy_url,
            PORT=str(self.port),
            HOST="127.0.0.1",
            PYTHONPATH=os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p),
        )
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wadesk", "--headless"],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=self.data.parent,
            )
        self.wait(lambda: self.call(get("/health"))[0] == 200, 30, "GET /health to answer 200")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def call(self, raw: bytes) -> tuple[int, bytes]:
        client = RawClient(self.port, timeout=10)
        try:
            return client.request(raw)
        finally:
            client.close()

    def status(self) -> dict[str, Any]:
        code, body = self.call(get("/status"))
        if code != 200:
            raise RuntimeError(f"GET /status: {code} {body[:200]!r}")
        return json.loads(body)  # type: ignore[no-any-return]

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None:
                self.alive()
            try:
                result = check()
            except OSError:
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout:g} s")
            time.sleep(0.05)

    def pair(self, fake: FakeWhatsApp) -> None:
        def qr() -> str | None:
            code, body = self.call(get("/qr?format=text"))
            text = body.decode().strip()
            return text if code == 200 and fake.is_own_qr(text) else None

        fake.scan(self.wait(qr, 30, "QR code from GET /qr?format=text"))
        self.wait(lambda: self.status()["state"] == "connected", 30, "connected state in /status")

    def wait_drained(self, timeout: float = 120) -> None:
        self.wait(lambda: self.status()["outbox_depth"] == 0, timeout, "empty outbox")

    def proc_status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` field in bytes (VmRSS, VmHWM, RssAnon...)."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(rf"{field}:\s+(\d+) kB", text)
        return int(found.group(1)) * 1024 if found else 0

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux clear_refs 5); whether it worked."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
            raise RuntimeError(f"wadesk exited with {code}:\n{self.tail()}")

    def tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


# ---- watching ------------------------------------------------------------------------------------


class EventClock:
    """Stamps every event of the fake server with ``time.monotonic()`` as it is recorded."""

    def __init__(self, fake: FakeWhatsApp) -> None:
        self.server = fake.server
        self.times: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cond = self.server.cond
        with cond:
            while not self._stop:
                now = time.monotonic()
                new = len(self.server.events) - len(self.times)
                if new:
                    self.times.extend([now] * new)
                    cond.notify_all()
                cond.wait(0.5)

    def mark(self) -> int:
        with self.server.cond:
            return len(self.server.events)

    def wait(
        self,
        pred: Callable[[str, Any], bool],
        since: int,
        timeout: float,
        what: str,
        alive: Callable[[], None] = lambda: None,
    ) -> tuple[int, float]:
        """(index, time) of the first event from ``since`` on for which ``pred`` holds;
        ``alive`` is called while waiting (to raise if the client is gone)."""
        deadline = time.monotonic() + timeout
        cond = self.server.cond
        with cond:
            i = since
            while True:
                while i < len(self.times):
                    if pred(*self.server.events[i]):
                        return i, self.times[i]
                    i += 1
                alive()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout:g} s:\n{self.server.describe_events()}")
                cond.wait(min(left, 0.2))

    def close(self) -> None:
        with self.server.cond:
            self._stop = True
            self.server.cond.notify_all()
        self._thread.join(5)


class RssSampler:
    """VmRSS of a process every SAMPLE_EVERY seconds, as (monotonic time, bytes)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.samples.append((time.monotonic(), self.gateway.proc_status("VmRSS")))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._done.wait(SAMPLE_EVERY):
            self.samples.append((time.monotonic(), self.gateway.proc_status("VmRSS")))

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0)


def steady_fake() -> None:
    """The two replacements in the fake described in the module docstring."""
    from fakewa import media, signal_lite

    class LinearReader(media._HTTPReader):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__(sock)
            self.buf = bytearray()  # type: ignore[assignment]

        def _fill(self) -> bool:
            chunk = self.sock.recv(1 << 20)
            self.buf += chunk
            return bool(chunk)

        def _exact(self, n: int) -> bytes:
            while len(self.buf) < n:
                if not self._fill():
                    raise ConnectionError(f"eof after {len(self.buf)} of {n} body bytes")
            out = bytes(self.buf[:n])
            del self.buf[:n]
            return out

    media._HTTPReader = LinearReader  # type: ignore[misc]

    respond = signal_lite.Session.respond.__func__  # type: ignore[attr-defined]
    known: dict[tuple[bytes, bytes, bytes], signal_lite.Session] = {}
    lock = threading.Lock()

    def respond_once(cls: type, identity: Any, reg_id: int, pkmsg: dict[int, Any], *keys: Any) -> Any:
        key = (bytes(identity.pub), bytes(pkmsg[3][-32:]), bytes(pkmsg[2][-32:]))
        with lock:
            if key not in known:
                known[key] = respond(cls, identity, reg_id, pkmsg, *keys)
            return known[key]

    signal_lite.Session.respond = classmethod(respond_once)  # type: ignore[method-assign,assignment]


# ---- the files -----------------------------------------------------------------------------------


def noise_jpeg(seed: int) -> bytes:
    from PIL import Image

    width, height = IMAGE_SIZE
    image = Image.frombytes("RGB", IMAGE_SIZE, random.Random(seed).randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def with_comment(jpeg: bytes) -> bytes:
    """The same picture with a random COM segment after APP0: new bytes, still a valid JPEG."""
    at = 4 + int.from_bytes(jpeg[4:6], "big") if jpeg[2:4] == b"\xff\xe0" else 2
    note = secrets.token_bytes(16)
    return jpeg[:at] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + jpeg[at:]


def random_pdf(size: int) -> bytes:
    head, tail = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"\n%%EOF\n"
    return head + os.urandom(size - len(head) - len(tail)) + tail


# ---- the measurements ----------------------------------------------------------------------------


def text_round(gateway: Gateway, fake: FakeWhatsApp, clock: EventClock, count: int) -> dict[str, float]:
    """``count`` texts, one connection; 202 rate and latency, then the drain rate to the peer."""
    from fakewa.media import media_of
    from fakewa.phone import message_text

    gateway.wait_drained()
    tag = "bench-" + secrets.token_hex(4)
    user = fake.peer(PEER_PHONE).user
    since = clock.mark()
    cpu_gateway, cpu_fake = gateway.cpu_seconds(), time.process_time()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    worker = ctx.Process(target=_text_client, args=(gateway.port, TOKEN, count, tag, out))
    worker.start()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                got = out.get(timeout=0.5)
                break
            except queue.Empty:
                if not worker.is_alive():
                    raise RuntimeError(f"the text client exited with {worker.exitcode}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{count} POST /send did not finish within 180 s") from None
    finally:
        worker.join(10)
        if worker.is_alive():
            worker.terminate()
            worker.join(5)
    if isinstance(got, str):
        raise RuntimeError(got)
    seen = [0]

    def drained(kind: str, data: Any) -> bool:
        if kind != "decrypted":
            return False
        jid, _, msg = data
        if user.is_addressed_by(jid) and media_of(msg) is None and message_text(msg).startswith(tag + " "):
            seen[0] += 1
        return seen[0] >= count

    _, last = clock.wait(drained, since, 180, f"{count} texts decrypted by the peer", gateway.alive)
    cpu_gateway, cpu_fake = gateway.cpu_seconds() - cpu_gateway, time.process_time() - cpu_fake
    latencies = sorted((end - began) * 1000 for began, end in got)
    first, last_202 = got[0][0], got[-1][1]
    return {
        "per_s": count / (last_202 - first),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "max_ms": latencies[-1],
        "drain_per_s": count / (last - first),
        "drain_tail_s": last - last_202,
        "gateway_cpu_ms": cpu_gateway / count * 1000,
        "fake_cpu_ms": cpu_fake / count * 1000,
    }


def steps(samples: list[tuple[float, int]], began: float, base: int) -> list[tuple[float, int]]:
    """The RSS timeline as (seconds since the POST, MB above the start), where it moved 5 MB."""
    out: list[tuple[float, int]] = []
    last = None
    for t, rss in samples:
        mb = round((rss - base) / 1e6)
        if last is None or abs(mb - last) >= 5:
            out.append((round(t - began, 2), mb))
            last = mb
    return out


def media_round(
    gateway: Gateway, fake: FakeWhatsApp, clock: EventClock, data: bytes, kind: str, filename: str
) -> dict[str, Any]:
    """One multipart POST /send of ``data``; times to the 202, the upload, the message, the copy."""
    from fakewa.media import media_of

    gateway.wait_drained()
    user = fake.peer(PEER_PHONE).user
    head, tail = multipart({"to": PEER}, filename, len(data))
    client = RawClient(gateway.port, timeout=180)
    peak_reset = gateway.reset_peak()
    since = clock.mark()
    view = memoryview(data)
    try:
        with RssSampler(gateway) as rss:
            rss_before = rss.samples[0][1]
            began = time.monotonic()
            client.send(head)
            for at in range(0, len(data), 1 << 20):
                client.send(view[at : at + (1 << 20)])
            client.send(tail)
            status, body = client.response()
            accepted = time.monotonic()
            if status != 202:
                raise RuntimeError(f"POST /send of {filename}: {status} {body[:300]!r}")
            _, uploaded = clock.wait(
                lambda k, d: k == "media-upload" and d.get("status") == 200,
                since,
                300,
                "upload",
                gateway.alive,
            )
            _, announced = clock.wait(
                lambda k, d: k == "decrypted" and user.is_addressed_by(d[0]) and media_of(d[2]) is not None,
                since,
                300,
                "media message decrypted by the peer",
                gateway.alive,
            )
            got = fake.wait_media_from_client(PEER_PHONE, timeout=300, kind=kind)
            copied = time.monotonic()
        peak_hwm = gateway.proc_status("VmHWM") if peak_reset else 0
    finally:
        client.close()
    if hashlib.sha256(got.plaintext).digest() != hashlib.sha256(data).digest():
        raise RuntimeError(f"the peer's copy of {filename} differs from what was sent")
    fake.media.delete(got.blob.direct_path)  # the fake keeps blobs in memory
    peak = rss.peak()
    return {
        "size": len(data),
        "to_202_s": accepted - began,
        "to_upload_s": uploaded - began,
        "to_message_s": announced - began,
        "to_peer_s": copied - began,
        "rss_before": rss_before,
        "rss_growth": max(peak, peak_hwm) - rss_before,
        "rss_growth_sampled": peak - rss_before,
        "rss_growth_hwm": peak_hwm - rss_before if peak_hwm else None,
        "rss_growth_receive": rss.peak(began, accepted) - rss_before,
        "rss_growth_upload": rss.peak(accepted, uploaded) - rss_before,
        "rss_growth_send": rss.peak(uploaded, copied) - rss_before,
        "rss_peak": max(peak, peak_hwm),
        "rss_after": rss.samples[-1][1],
        "samples": len(rss.samples),
        "rss_steps": steps(rss.samples, began, rss_before),
    }


# ---- the run -------------------------------------------------------------------------------------


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of each file, fewer texts")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--stock-fake", action="store_true", help="keep the fake's reader and sessions as they are"
    )
    args = parser.parse_args()
    rounds, texts, text_rounds = (1, 200, 1) if args.quick else (3, 500, 3)
    signal.signal(signal.SIGTERM, _raise_exit)
    sys.path.insert(0, str(TESTS))
    from fakewa.harness import FakeWhatsApp, library_tokens
    from fakewa.keys import SignKeyPair, TestPKI

    logging.getLogger("fakewa").setLevel(logging.WARNING)
    if not args.stock_fake:
        steady_fake()

    print(f"wadesk media benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    workdir = Path(tempfile.mkdtemp(prefix="wadesk-bench-media-"))
    fake: FakeWhatsApp | None = None
    gateway: Gateway | None = None
    clock: EventClock | None = None
    results: dict[str, Any] = {}
    began = time.monotonic()
    try:
        pki_dir = workdir / "pki"
        pki_dir.mkdir()
        fake = FakeWhatsApp(TestPKI(str(pki_dir)), SignKeyPair(), library_tokens())
        clock = EventClock(fake)
        gateway = Gateway(fake, workdir)
        gateway.start()
        gateway.pair(fake)
        results["rss_idle_connected"] = gateway.proc_status("VmRSS")

        text_round(gateway, fake, clock, 20)  # prekeys, sessions, first-use costs
        results["text_before"] = [text_round(gateway, fake, clock, texts) for _ in range(text_rounds)]
        results["rss_before_media"] = gateway.proc_status("VmRSS")

        jpeg = noise_jpeg(1)
        images = [
            media_round(gateway, fake, clock, with_comment(jpeg), "image", "noise.jpg") for _ in range(rounds)
        ]
        documents = []
        for _ in range(rounds):
            document = random_pdf(DOCUMENT_BYTES)
            documents.append(media_round(gateway, fake, clock, document, "document", "random.pdf"))
            del document
        results["image"], results["document"] = images, documents

        time.sleep(1.0)
        results["rss_after_media"] = gateway.proc_status("VmRSS")
        results["text_after"] = [text_round(gateway, fake, clock, texts) for _ in range(text_rounds)]
        results["rss_end"] = gateway.proc_status("VmRSS")
    except BaseException:
        if gateway is not None:
            print(f"---- wadesk log (tail) ----\n{gateway.tail()}", file=sys.stderr)
        raise
    finally:
        if gateway is not None:
            gateway.stop()
        if clock is not None:
            clock.close()
        if fake is not None:
            fake.close()
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - began

    r = results
    mb = 1e6

    def text_summary(rounds_: list[dict[str, float]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: statistics.median(t[k] for t in rounds_) for k in rounds_[0]}
        out["per_s"] = max(t["per_s"] for t in rounds_)
        out["drain_per_s"] = max(t["drain_per_s"] for t in rounds_)
        out["rounds_per_s"] = [round(t["per_s"]) for t in rounds_]
        out["rounds_drain_per_s"] = [round(t["drain_per_s"]) for t in rounds_]
        return out

    before, after = text_summary(r["text_before"]), text_summary(r["text_after"])

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    def each(rows: list[dict[str, Any]], key: str) -> str:
        return "[" + ", ".join(f"{row[key]:.2f}" for row in rows) + "]"

    worst = max(r["document"], key=lambda row: row["rss_growth"])
    rss_ratio = worst["rss_growth"] / worst["size"]
    text_ratio = after["per_s"] / before["per_s"]
    drain_ratio = after["drain_per_s"] / before["drain_per_s"]
    cpu_ratio = after["gateway_cpu_ms"] / before["gateway_cpu_ms"]
    r.update(rss_ratio=rss_ratio, text_ratio=text_ratio, drain_ratio=drain_ratio, cpu_ratio=cpu_ratio)

    def ok(good: bool) -> str:
        return "ok" if good else "MISSED"

    def text_note(t: dict[str, Any]) -> str:
        return (
            f"p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms, max {t['max_ms']:.1f} ms; "
            f"rounds {t['rounds_per_s']} /s"
        )

    def drain_note(t: dict[str, Any]) -> str:
        return (
            f"last decrypted {t['drain_tail_s'] * 1000:.0f} ms after the last 202; "
            f"rounds {t['rounds_drain_per_s']} /s"
        )

    def media_note(rows: list[dict[str, Any]]) -> str:
        return (
            f"upload stored {med(rows, 'to_upload_s'):.2f} s, message decrypted "
            f"{med(rows, 'to_message_s'):.2f} s; rounds {each(rows, 'to_peer_s')}"
        )

    image_size, doc_size = r["image"][0]["size"] / mb, DOCUMENT_BYTES / mb
    hwm = worst["rss_growth_hwm"]
    image_growth = max(row["rss_growth"] for row in r["image"])
    doc_peak = max(row["rss_peak"] for row in r["document"])
    rows = [
        (f"text POST /send, before ({texts})", f"{before['per_s']:.0f} /s", "baseline", "",
         text_note(before)),
        (f"text POST /send, after ({texts})", f"{after['per_s']:.0f} /s",
         f">= {TARGETS['text_ratio']} x before", ok(text_ratio >= TARGETS["text_ratio"]),
         f"x{text_ratio:.2f}; {text_note(after)}; the first round after the media "
         f"{r['text_after'][0]['per_s']:.0f} /s, p99 {r['text_after'][0]['p99_ms']:.2f} ms"),
        ("text drain to the peer, before", f"{before['drain_per_s']:.0f} /s", "baseline", "",
         drain_note(before)),
        ("text drain to the peer, after", f"{after['drain_per_s']:.0f} /s",
         f">= {TARGETS['text_ratio']} x before", ok(drain_ratio >= TARGETS["text_ratio"]),
         f"x{drain_ratio:.2f}; {drain_note(after)}"),
        ("gateway CPU per text, before", f"{before['gateway_cpu_ms']:.2f} ms", "baseline", "",
         f"202 and send, all threads; the fake (this process) {before['fake_cpu_ms']:.2f} ms"),
        ("gateway CPU per text, after", f"{after['gateway_cpu_ms']:.2f} ms",
         f"<= {1 / TARGETS['text_ratio']:.2f} x before", ok(cpu_ratio <= 1 / TARGETS["text_ratio"]),
         f"x{cpu_ratio:.2f}; the fake {after['fake_cpu_ms']:.2f} ms"),
        (f"{image_size:.1f} MB image: POST to 202", f"{med(r['image'], 'to_202_s'):.2f} s", "", "",
         f"rounds {each(r['image'], 'to_202_s')}"),
        (f"{image_size:.1f} MB image: to the peer's copy", f"{med(r['image'], 'to_peer_s'):.2f} s", "", "",
         media_note(r["image"])),
        (f"{doc_size:.0f} MB document: POST to 202", f"{med(r['document'], 'to_202_s'):.2f} s", "", "",
         f"rounds {each(r['document'], 'to_202_s')}"),
        (f"{doc_size:.0f} MB document: to the peer's copy", f"{med(r['document'], 'to_peer_s'):.2f} s",
         "", "", media_note(r["document"])),
        (f"peak RSS growth, {doc_size:.0f} MB send", f"{worst['rss_growth'] / mb:.0f} MB",
         f"< {TARGETS['rss_ratio']:.0f} x file", ok(rss_ratio < TARGETS["rss_ratio"]),
         f"x{rss_ratio:.2f} the file; receiving the POST +{worst['rss_growth_receive'] / mb:.0f}, "
         f"to the upload +{worst['rss_growth_upload'] / mb:.0f}, to the peer "
         f"+{worst['rss_growth_send'] / mb:.0f} MB (sampled); VmHWM "
         + (f"+{hwm / mb:.0f} MB" if hwm is not None else "not resettable")
         + "; rounds [" + ", ".join(f"{row['rss_growth'] / mb:.0f}" for row in r["document"])
         + "] MB from [" + ", ".join(f"{row['rss_before'] / mb:.0f}" for row in r["document"]) + "] MB"),
        (f"peak RSS, {rounds} x {doc_size:.0f} MB back to back", f"{doc_peak / mb:.0f} MB", "", "",
         f"+{(doc_peak - r['rss_before_media']) / mb:.0f} MB over the RSS before the media "
         f"(x{(doc_peak - r['rss_before_media']) / DOCUMENT_BYTES:.2f} the file): freed Go heap is "
         "given back to the system later"),
        (f"peak RSS growth, {image_size:.1f} MB send", f"{image_growth / mb:.0f} MB", "", "",
         f"x{image_growth / r['image'][0]['size']:.2f} the file"),
        ("gateway RSS", f"{r['rss_before_media'] / mb:.0f} MB", "", "",
         f"connected and idle {r['rss_idle_connected'] / mb:.0f} MB; before the media "
         f"{r['rss_before_media'] / mb:.0f}, after it {r['rss_after_media'] / mb:.0f}, at the end "
         f"{r['rss_end'] / mb:.0f} MB"),
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print()
    for name, value, target, verdict, note in rows:
        print(f"{name:<{width}}  {value:>9}  {target:<17} {verdict:<6}  {note}")
    timeline = ", ".join(f"{t:.2f} s +{m}" for t, m in worst["rss_steps"][1:])
    print(
        f"\nRSS above the start during the {doc_size:.0f} MB send that grew most (s after the POST began, "
        f"MB): {timeline}; 202 at {worst['to_202_s']:.2f} s, upload stored at {worst['to_upload_s']:.2f} s"
    )
    fake_kind = "as it is (--stock-fake)" if args.stock_fake else "reader and sessions replaced"
    print(
        f"{rounds} round(s) of each file, {text_rounds} x {texts} texts before and after; "
        f"the fake {fake_kind}; {r['elapsed_s']:.0f} s in all"
    )
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
