"""Helpers for the headless gateway tests: a fake neonize driver for in-process sessions,
the ``wadesk --headless`` process as a user starts it (and pairs it), and a local webhook receiver."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
import zxingcpp
from fake_driver import FakeDriverFactory
from PIL import Image
from polling import GatewayHTTP, free_port, wait_until

from wadesk.core.events import Status
from wadesk.core.session import Session
from wadesk.core.store import Store

if TYPE_CHECKING:
    from fakewa.harness import FakeWhatsApp

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACCOUNT_PHONE = "15550001111"
PEER_PHONE = "15550002222"
SECRET = "whsec_" + base64.b64encode(b"webhook-key-for-the-e2e-tests-32").decode()


# ---- an in-process session on a fake driver ---------------------------------------------


class FakeWorld(FakeDriverFactory):
    """The shared fake driver factory; its drivers connect by themselves unless told otherwise."""

    def __init__(self, mode: str = "connected") -> None:
        super().__init__(mode)


def make_session(folder: Path, world: FakeWorld, session_class: type[Session] = Session) -> Session:
    folder.mkdir(parents=True, exist_ok=True)
    return session_class(
        Store(folder / "wadesk.db"), folder / "whatsapp.db", send_interval=0, driver_factory=world.factory
    )


def start_session(session: Session, status: Status = Status.CONNECTED) -> Session:
    session.start()
    wait_until(lambda: session.state.status is status, 10, f"session {status.value}")
    return session


@contextlib.contextmanager
def serving(app: Any, threads: int = 4) -> Iterator[str]:
    """``app`` behind the API's real HTTP server on a free port; yields its base URL."""
    from wadesk.api.http import HttpServer

    server = HttpServer(app, host="127.0.0.1", port=0, threads=threads)
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.addresses[0][1]}"
    finally:
        server.request_stop()
        thread.join(5)
        server.close()


# ---- the wadesk --headless process ----------------------------------------------------------

_OUR_SETTINGS = ("WADESK_", "WEBHOOK_", "LOG_", "PORT", "HOST")


def clean_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` without any wadesk setting inherited from the developer's shell."""
    return {k: v for k, v in base.items() if not k.startswith(_OUR_SETTINGS) or k.startswith("WADESK_TEST_")}


class Headless(GatewayHTTP):
    """``python -m wadesk --headless`` in a child process, talked to over real HTTP."""

    def __init__(self, env: dict[str, str], data_dir: Path, token: str | None, log_path: Path) -> None:
        self.env = env
        self.data_dir = data_dir
        self.token = token
        self.log_path = log_path
        self.port = int(env["PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()
        self.http.trust_env = False

    def start(self, *, wait: bool = True, extra_args: tuple[str, ...] = ()) -> Headless:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, *extra_args, "-m", "wadesk", "--headless"],
                env=self.env,
                stdout=log_file,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                cwd=self.data_dir.parent,
            )
        if wait:
            self.wait_healthy()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            if not self.running():
                raise AssertionError(
                    f"wadesk exited with {self.proc.returncode if self.proc else None}:\n{self.logs()}"
                )
            try:
                return self.http.get(self.base + "/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, "GET /health to answer 200")

    def status(self) -> dict[str, Any]:
        response = self.get("/status")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_state(self, state: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status())["state"] == state and s, timeout, f"/status to say {state}"
        )

    def send(self, to: str, text: str, **kwargs: Any) -> str:
        response = self.post("/send", json={"to": to, "text": text}, **kwargs)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def message(self, message_id: str) -> dict[str, Any]:
        response = self.get(f"/messages/{message_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def close(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)
        self.http.close()


def decode_qr_png(png: bytes) -> str:
    # QR codes only: zxing-cpp sometimes also "finds" an ITF or Codabar barcode inside a QR code
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1, f"expected one QR code in the PNG, found {len(results)}"
    return str(results[0].text)


def fetch_qr_png(gw: Headless) -> bytes:
    response = wait_until(
        lambda: (r := gw.get("/qr")).status_code == 200 and r, 30, "GET /qr to return the PNG"
    )
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    return response.content


def pair(gw: Headless, fake_wa: FakeWhatsApp) -> str:
    """Scan the QR code the gateway serves, as a person with a phone would; returns its text."""
    code = decode_qr_png(fetch_qr_png(gw))
    fake_wa.scan(code)
    gw.wait_state("connected")
    return code


# ---- a webhook receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """A local HTTP server that records webhook POSTs; it can be stopped and started again
    on the same port, and told which statuses to answer with."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []  # answered in turn before falling back to 200
        self.cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body, status))
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def accepted(self) -> list[Delivery]:
        with self.cond:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def payloads(self, event: str) -> list[dict[str, Any]]:
        """The payloads of the accepted deliveries of one event kind, in order."""
        return [d.json["payload"] for d in self.accepted() if d.json["event"] == event]

    def wait_for(self, check: Callable[[list[Delivery]], bool], timeout: float, what: str) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                accepted = [d for d in self.deliveries if 200 <= d.status < 300]
                if check(accepted):
                    return accepted
                left = deadline - time.monotonic()
                if left <= 0:
                    events = [(d.status, d.json.get("event")) for d in self.deliveries]
                    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}; got {events}")
                self.cond.wait(left)


def env_for(base: dict[str, str], data_dir: Path, **settings: str) -> dict[str, str]:
    """``base`` (already free of inherited wadesk settings) plus the test defaults and ``settings``."""
    env = dict(base)
    env.update({"WADESK_DATA_DIR": str(data_dir), "WADESK_SEND_INTERVAL": "0", "HOST": "127.0.0.1"})
    env.setdefault("PORT", str(free_port()))
    env.update(settings)
    env.pop("PYTHONWARNINGS", None)
    os_path = env.get("PYTHONPATH", "")
    if str(REPO) not in os_path.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os_path, str(REPO)) if p)
    return env
