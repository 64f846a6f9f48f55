"""A browser dashboard in real headless Chromium (Debian's ``chromium``).

A page served from another origin than the gateway's asks, with fetch() and the token, for
a ticket (a CORS preflight first: the Authorization header is not a simple one), opens an
EventSource on ``/events?ticket=…`` and reports each event it receives to the page's own
server. The gateway runs in process on a fake driver, behind its real HTTP server. A page
from an origin not in the allow-list is refused by the browser: its fetch fails, and so does
an EventSource opened with a valid ticket.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from headless_harness import AUTH, PEER_PHONE, TOKEN, serving, start_session

from wadesk.api.app import create_app
from wadesk.core.session import Session

pytestmark = pytest.mark.e2e

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>starting</title></head><body><script>
const GATEWAY = %(gateway)s, TOKEN = %(token)s, GIVEN_TICKET = %(ticket)s;
function report(kind, data) {
  document.title = kind;
  return fetch("/report", {method: "POST", body: JSON.stringify({kind: kind, data: data})});
}
function listen(ticket) {
  const source = new EventSource(GATEWAY + "/events?ticket=" + encodeURIComponent(ticket));
  for (const name of ["session.status", "message.status"]) {
    source.addEventListener(name, (e) => report(name, {id: e.lastEventId, envelope: JSON.parse(e.data)}));
  }
  source.onerror = () => { report("error", {readyState: source.readyState}); source.close(); };
}
async function main() {
  if (GIVEN_TICKET) { listen(GIVEN_TICKET); return; }
  let response;
  try {
    response = await fetch(GATEWAY + "/events/ticket",
                           {method: "POST", headers: {"Authorization": "Bearer " + TOKEN}});
  } catch (e) {
    await report("fetch-failed", {name: e.name});
    return;
  }
  const body = await response.json();
  await report("ticket", {status: response.status, cacheControl: response.headers.get("Cache-Control"),
                          expiresIn: body.expires_in});
  listen(body.ticket);
}
main();
</script></body></html>
"""


def chromium() -> str:
    for name in (os.environ.get("WADESK_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium; or set WADESK_TEST_CHROMIUM)")


@dataclass
class PageServer:
    """Serves one page at / and records what it reports at /report."""

    html: str = ""
    reports: list[dict[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    def start(self) -> PageServer:
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.html.encode() if self.path == "/" else b""
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with page.cond:
                    page.reports.append(json.loads(data))
                    page.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.reports:
                    if r["kind"] == kind:
                        return r["data"]  # type: ignore[no-any-return]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the page reported no {kind!r}; it reported {self.reports}")
                self.cond.wait(left)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Gateway:
    url: str
    session: Session


@pytest.fixture
def pages() -> Iterator[tuple[PageServer, PageServer]]:
    allowed, other = PageServer().start(), PageServer().start()
    yield allowed, other
    allowed.stop()
    other.stop()


@pytest.fixture
def gateway(session: Session, pages: tuple[PageServer, PageServer]) -> Iterator[Gateway]:
    start_session(session)
    app = create_app(session, token=TOKEN, sse_heartbeat=1, cors_origins=(pages[0].origin,))
    with serving(app) as url:
        yield Gateway(url, session)
    app.extensions["wadesk"].close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """``browser(url)`` opens the page in headless Chromium; every one is ended at the end."""
    binary = chromium()
    opened: list[subprocess.Popen[bytes]] = []

    def open_page(url: str) -> subprocess.Popen[bytes]:
        profile = tmp_path / f"profile-{len(opened)}"
        log = (tmp_path / f"chromium-{len(opened)}.log").open("wb")
        args = [binary, "--headless", "--disable-gpu", "--no-first-run", "--disable-extensions"]
        args += ["--disable-background-networking", f"--user-data-dir={profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        proc = subprocess.Popen([*args, url], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        opened.append(proc)
        return proc

    yield open_page
    for proc in opened:
        proc.kill()
        proc.wait(10)


def page(gateway: Gateway, ticket: str | None = None) -> str:
    return PAGE % {
        "gateway": json.dumps(gateway.url),
        "token": json.dumps(TOKEN),
        "ticket": json.dumps(ticket),
    }


def test_a_page_from_an_allowed_origin_follows_the_events_with_a_ticket(
    gateway: Gateway, pages: tuple[PageServer, PageServer], browser: Any
) -> None:
    allowed, _ = pages
    allowed.html = page(gateway)
    browser(allowed.origin + "/")
    ticket = allowed.wait_for("ticket")
    assert ticket == {"status": 201, "cacheControl": "no-store", "expiresIn": 60}
    state = allowed.wait_for("session.status")
    assert state["envelope"]["event"] == "session.status"
    assert state["envelope"]["payload"]["state"] == "connected"
    # a live event after the stream opened
    sent = requests.post(
        gateway.url + "/send", json={"to": PEER_PHONE, "text": "hi"}, headers=AUTH, timeout=10
    )
    assert sent.status_code == 202, sent.text
    status = allowed.wait_for("message.status")
    assert status["envelope"]["payload"]["id"] == sent.json()["id"]
    assert status["id"] == status["envelope"]["id"]  # the SSE id is the event id


def test_a_page_from_another_origin_is_refused(
    gateway: Gateway, pages: tuple[PageServer, PageServer], browser: Any
) -> None:
    _, other = pages
    other.html = page(gateway)
    browser(other.origin + "/")
    assert other.wait_for("fetch-failed") == {"name": "TypeError"}
    # even with a valid ticket, the browser does not let the page read the stream
    ticket = requests.post(gateway.url + "/events/ticket", headers=AUTH, timeout=10).json()["ticket"]
    other.reports.clear()
    other.html = page(gateway, ticket)
    browser(other.origin + "/")
    assert other.wait_for("error") == {"readyState": 2}  # EventSource.CLOSED
    assert not [r for r in other.reports if r["kind"] in ("session.status", "message.status")]
