"""``wadesk --headless`` as a process: what it imports, where its secrets come from, how it
refuses bad settings and how it stops. WhatsApp is unreachable here (the proxy port has
nobody listening): the real neonize client keeps retrying, which these tests do not need."""

from __future__ import annotations

import base64
import re
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from headless_harness import TOKEN, Headless, Receiver, free_port, wait_until
from standardwebhooks import Webhook

from wadesk.api.webhooks import verify

pytestmark = pytest.mark.e2e

OFFLINE = {"WADESK_PROXY": "http://127.0.0.1:9"}  # nobody listens on the discard port


def imported_modules(importtime_output: str) -> list[str]:
    """Module names from ``python -X importtime`` lines, in the order their imports finished."""
    found = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|(\s*)(\S+)$", importtime_output, re.M)
    return [name for _, name in found]


def test_headless_never_imports_qt_and_loads_neonize_after_the_listener(
    headless: Callable[..., Headless],
) -> None:
    # -X importtime reports every import of the whole process, from any thread, to stderr:
    # no hook inside the product is needed to see what it loaded.
    gw = headless(**OFFLINE).start(extra_args=("-X", "importtime"))
    wait_until(lambda: gw.status()["state"] == "reconnecting", 30, "the session to try WhatsApp")
    assert gw.stop() == 0
    modules = imported_modules(gw.logs())
    roots = {m.split(".")[0] for m in modules}
    assert {"wadesk", "flask", "waitress", "neonize"} <= roots, "the import report is incomplete"
    assert not roots & {"PySide6", "shiboken6", "PyQt5", "PyQt6", "wadesk.ui"}
    assert not any(m.startswith("wadesk.ui") for m in modules)
    # the HTTP server was listening before the neonize library started loading
    assert modules.index("waitress.server") < modules.index("neonize")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("", "the file is empty"),
        ("\n  \n", "the file is empty"),
        ("short", "at least 16 characters"),
        ("dir", "cannot read it"),
    ],
)
def test_a_bad_token_file_stops_with_one_line_and_exit_2(
    headless: Callable[..., Headless], tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "token"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    gw = headless(WADESK_API_TOKEN="", WADESK_API_TOKEN_FILE=str(path), **OFFLINE).start(wait=False)
    assert gw.proc is not None and gw.proc.wait(15) == 2
    lines = gw.logs().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("wadesk: invalid WADESK_API_TOKEN_FILE") and problem in lines[0]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("whsec_not~base64~0123456789abcdefghijklmnop", "must be whsec_ followed by the key in base64"),
        ("a-plain-passphrase-of-old", "must be whsec_"),
        ("whsec_" + base64.b64encode(b"k" * 16).decode(), "key of 24 to 64 bytes, not 16"),
        (" ".join(["whsec_" + base64.b64encode(b"k" * 32).decode()] * 3), "holds 3 secrets; at most 2"),
    ],
)
def test_a_bad_webhook_secret_stops_with_one_line_and_exit_2(
    headless: Callable[..., Headless], value: str, problem: str
) -> None:
    gw = headless(WEBHOOK_URL="http://127.0.0.1:9/hook", WEBHOOK_SECRET=value, **OFFLINE).start(wait=False)
    assert gw.proc is not None and gw.proc.wait(15) == 2
    lines = gw.logs().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("wadesk: invalid WEBHOOK_SECRET: ") and problem in lines[0]
    assert value.split()[0].removeprefix("whsec_") not in lines[0]


def test_token_from_a_file(headless: Callable[..., Headless], tmp_path: Path) -> None:
    secret = "from-a-docker-secret-0123456789"
    path = tmp_path / "token"
    path.write_text(secret + "\n")
    gw = headless(WADESK_API_TOKEN="", WADESK_API_TOKEN_FILE=str(path), **OFFLINE)
    gw.token = secret
    gw.start()
    assert gw.get("/status").status_code == 200
    assert gw.get("/status", token=TOKEN).status_code == 401
    assert gw.stop() == 0
    assert secret not in gw.logs()
    assert f"read from {path}" in gw.logs()
    # one JSON access-log line per request
    access = [r for r in gw.log_records() if r["logger"] == "wadesk.http" and r.get("route") == "/status"]
    assert [(r["method"], r["status"]) for r in access] == [("GET", 200), ("GET", 401)]
    assert all(r["level"] == "INFO" and r["duration_ms"] >= 0 for r in access)


def test_generated_token_and_webhook_secret_are_kept_private(
    headless: Callable[..., Headless], receiver: Receiver
) -> None:
    receiver.start()
    gw = headless(WADESK_API_TOKEN="", WEBHOOK_URL=receiver.url, WEBHOOK_EVENTS="session.status", **OFFLINE)
    gw.start()
    token_file = gw.data_dir / "api-token"
    secret_file = gw.data_dir / "webhook-secret"
    for path in (token_file, secret_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    secret = secret_file.read_text().strip()
    assert len(token) >= 40
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    gw.token = token
    assert gw.get("/status").status_code == 200
    # state changes happen without WhatsApp; their webhooks are signed with the kept secret
    hooks = receiver.wait_for(lambda ds: len(ds) >= 2, 30, "two session.status events")
    for d in hooks:  # a receiver verifies them with the kept secret as it is written
        Webhook(secret).verify(d.body, d.headers)
        assert verify(secret, d.body, d.headers)
    assert [(d.json["payload"]["state"], d.json["payload"]["attempt"]) for d in hooks[:2]] == [
        ("reconnecting", 1),
        ("reconnecting", 2),
    ]
    assert gw.stop() == 0
    logs = gw.logs()
    assert token not in logs and secret not in logs
    messages = [r["message"] for r in gw.log_records()]
    assert [m for m in messages if str(token_file) in m] == [
        f"API token: generated a new one, kept in {token_file} (readable by this user only)"
    ]
    assert len([m for m in messages if str(secret_file) in m]) == 1
    # a restart reads the same token
    again = headless(WADESK_API_TOKEN="", **OFFLINE)
    again.token = token
    again.start()
    assert again.get("/status").status_code == 200
    assert again.stop() == 0
    assert f"read from {token_file}" in again.logs()


def test_sigint_ends_open_event_streams_and_exits_0(headless: Callable[..., Headless]) -> None:
    gw = headless(**OFFLINE).start()
    ended = threading.Event()
    first_lines: list[str] = []

    def watch() -> None:
        with gw.get("/events", stream=True, timeout=30) as response:
            for line in response.iter_lines(decode_unicode=True):
                first_lines.append(line)
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    wait_until(
        lambda: any(line.startswith("event: session.status") for line in first_lines), 10, "the first event"
    )
    started = time.monotonic()
    gw.signal(signal.SIGINT)
    assert gw.proc is not None and gw.proc.wait(10) == 0
    assert time.monotonic() - started < 10
    assert ended.wait(5)
    assert "shutting down (SIGINT)" in gw.logs()


def test_while_whatsapp_is_unreachable_each_endpoint_says_so(headless: Callable[..., Headless]) -> None:
    gw = headless(LOG_FORMAT="text", **OFFLINE).start()
    status = wait_until(
        lambda: (s := gw.status())["state"] == "reconnecting" and s, 30, "the session to try WhatsApp"
    )
    assert status["attempt"] >= 1 and status["next_try_at"] >= status["since"]
    assert "connection was refused" in status["reason"] and status["reason"] in status["description"]
    assert status["outbox_depth"] == 0 and status["webhook_backlog"] == 0 and status["uptime"] > 0
    assert gw.get("/health", token="").json() == {"status": "ok", "state": "reconnecting"}
    ready = gw.get("/ready")
    assert ready.status_code == 503 and ready.json()["state"] == "reconnecting"
    qr = gw.get("/qr")
    assert (qr.status_code, qr.json()["error"], qr.headers["Retry-After"]) == (503, "no_qr", "5")
    pair = gw.post("/pair-code", json={"phone": "+1 555 000 1111"})
    assert pair.status_code == 503 and pair.json()["state"] == "reconnecting"
    logout = gw.post("/logout")
    assert logout.status_code == 409 and logout.json()["error"] == "not_connected"
    # HEAD /events is answered without holding one of the few event streams
    for _ in range(10):
        assert gw.request("HEAD", "/events").status_code == 200
    with gw.get("/events", stream=True) as events:
        assert events.status_code == 200
    # a request cannot write a line of its own into the text log
    assert gw.get("/x%0A2026-01-01 00:00:00 ERROR   wadesk.api: forged").status_code == 404
    assert gw.stop() == 0
    assert not [line for line in gw.logs().splitlines() if line.startswith("2026-01-01 00:00:00 ERROR")]
    assert "GET /x\\n2026-01-01 00:00:00 ERROR   wadesk.api: forged 404 " in gw.logs()


def test_a_port_in_use_is_reported(headless: Callable[..., Headless]) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        gw = headless(PORT=str(port), **OFFLINE).start(wait=False)
        assert gw.proc is not None and gw.proc.wait(15) == 1
    assert f"cannot listen on 127.0.0.1 port {port}" in gw.logs()


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_stop_gracefully_like_sigterm(headless: Callable[..., Headless], sig: int) -> None:
    gw = headless(**OFFLINE).start()
    queued = gw.send("+1 555 000 2222", "before the signal")
    gw.signal(sig)
    assert gw.proc is not None and gw.proc.wait(10) == 0
    name = signal.Signals(sig).name
    messages = [r["message"] for r in gw.log_records()]
    assert f"shutting down ({name})" in messages
    assert any(m.startswith("stopped after ") for m in messages)
    # nothing accepted was lost: the message is still queued after a restart
    again = headless(**OFFLINE).start()
    assert again.message(queued)["status"] == "queued"
    assert again.stop() == 0


def test_sigusr1_logs_the_state_in_one_line_and_keeps_running(headless: Callable[..., Headless]) -> None:
    gw = headless(**OFFLINE).start()
    wait_until(lambda: gw.status()["state"] == "reconnecting", 30, "the session to try WhatsApp")
    gw.send("+1 555 000 2222", "waiting in the outbox")

    def reports() -> list[dict]:
        return [r for r in gw.log_records() if r["message"].startswith("state: ")]

    for count in (1, 2):  # it keeps working, and the process keeps running
        gw.signal(signal.SIGUSR1)
        report = wait_until(lambda n=count: len(reports()) >= n and reports()[-1], 10, "the state line")
        assert report["state"] == "reconnecting" and report["outbox_depth"] == 1
        assert report["message"].startswith("state: reconnecting")
        assert "outbox depth 1;" in report["message"]
        assert gw.running()
        assert gw.get("/health", token="").status_code == 200
    assert len(reports()) == 2
    assert gw.stop() == 0
    assert "shutting down (SIGTERM)" in gw.logs()


def test_probes_and_arguments_over_http(headless: Callable[..., Headless]) -> None:
    gw = headless(**OFFLINE).start()
    # /ready is a probe like /health: no token, JSON with the state
    ready = gw.get("/ready", token="")
    assert ready.status_code in (200, 503) and ready.headers["Content-Type"] == "application/json"
    assert ready.json()["ready"] is False and ready.json()["state"] in (
        "starting",
        "connecting",
        "reconnecting",
    )
    assert gw.get("/status", token="").status_code == 401
    # a limit longer than int() accepts is a 400 naming it, never a 500
    long_limit = gw.get("/messages?limit=" + "9" * 5000)
    assert (long_limit.status_code, long_limit.json()["field"]) == (400, "limit")
    # digits of other scripts are not digits: refused, nothing queued
    for to in (
        "\u0661\u0662\u0660\u0663\u0666\u0663\u0660\u0662\u0665\u0662\u0664\u0666@g.us",
        "+\uff14\uff19 151 23456789",
    ):
        refused = gw.post("/send", json={"to": to, "text": "x"})
        assert (refused.status_code, refused.json()["field"]) == (400, "to"), refused.text
    assert gw.status()["outbox_depth"] == 0
    assert gw.stop() == 0
