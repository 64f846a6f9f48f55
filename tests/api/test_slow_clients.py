"""Slow, idle and vanishing clients cannot take the HTTP API down.

In process: the API's HTTP server (:class:`wadesk.api.http.HttpServer`) with short deadlines,
against raw sockets, for each deadline on its own. As a process: ``wadesk --headless`` with its real limits,
1,000 idle and 100 trickling connections, and event-stream clients that close or reset.
Every socket here goes to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from headless_harness import TOKEN, Headless

from wadesk.api import http as http_mod
from wadesk.api import server as server_mod

OFFLINE = {"WADESK_PROXY": "http://127.0.0.1:9"}  # nobody listens on the discard port


# ---- raw sockets ----------------------------------------------------------------------------


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"still open after {timeout:g} s; got {data!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, time.monotonic()
        if not chunk:
            return data, time.monotonic()
        data += chunk


def read_response(sock: socket.socket) -> bytes:
    """One whole answer with a Content-Length."""
    data = b""
    for _ in range(100):
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(body) >= length:
                return data
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    raise AssertionError(f"no complete answer: {data!r}")


def still_open(sock: socket.socket) -> bool:
    """True while the server has neither closed the connection nor sent anything on it."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # with a timeout, recv() would first wait for something to read
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False  # an answer, or the end of the stream


def json_answer(data: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def raise_open_file_limit(need: int) -> None:
    """This process holds many sockets at once: raise its soft limit (up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


# ---- the HTTP server in process, with short deadlines --------------------------------------

SHORT = {
    "FIRST_REQUEST_TIMEOUT": 1.0,
    "KEEPALIVE_TIMEOUT": 2.5,
    "HEAD_TIMEOUT": 1.5,
    "REQUEST_TIMEOUT": 3.0,
    "MAINTENANCE_INTERVAL": 0.1,
}


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    data = b'{"ok":true,"got":%d}' % len(body)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


@pytest.fixture
def short_server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[int]:
    """The API's HTTP server on a free port with the deadlines of SHORT; yields the port.
    Its connection limit is 100, or the test's parameter."""
    for name, value in SHORT.items():
        monkeypatch.setattr(http_mod, name, value)
    server = http_mod.HttpServer(
        hello, host="127.0.0.1", port=0, threads=2, connection_limit=getattr(request, "param", 100)
    )
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server.addresses[0][1]
    finally:
        server.request_stop()
        thread.join(5)
        assert not thread.is_alive()
        server.close()


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(short_server: int) -> None:
    sock = connect(short_server)
    opened = time.monotonic()
    with sock:
        data, closed = read_until_closed(sock, 5)
    assert data == b""
    assert SHORT["FIRST_REQUEST_TIMEOUT"] - 0.1 <= closed - opened < SHORT["FIRST_REQUEST_TIMEOUT"] + 1.5


def test_a_trickled_head_gets_a_json_408_at_its_deadline(short_server: int) -> None:
    with connect(short_server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for _ in range(30):  # a byte every 0.2 s would finish the head after 6 s
            try:
                sock.sendall(b"X")
            except OSError:
                break
            if not still_open(sock):
                break
            time.sleep(0.2)
        data, closed = read_until_closed(sock, 5)
    status, body = json_answer(data)
    assert (status, body["error"]) == (408, "request_timeout")
    assert "head" in body["message"]
    assert SHORT["HEAD_TIMEOUT"] - 0.1 <= closed - started < SHORT["HEAD_TIMEOUT"] + 1.5


def test_a_trickled_body_gets_a_json_408_at_the_request_deadline(short_server: int) -> None:
    with connect(short_server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        started = time.monotonic()
        for _ in range(60):  # 100 bytes at 5 a second would take 20 s
            if not still_open(sock):
                break
            try:
                sock.sendall(b"y")
            except OSError:
                break
            time.sleep(0.2)
        data, closed = read_until_closed(sock, 5)
    status, body = json_answer(data)
    assert (status, body["error"]) == (408, "request_timeout")
    assert SHORT["REQUEST_TIMEOUT"] - 0.1 <= closed - started < SHORT["REQUEST_TIMEOUT"] + 1.5


def test_blank_lines_do_not_keep_a_connection_open(short_server: int) -> None:
    # a blank line before a request is allowed and completes nothing: it must not count as a request
    with connect(short_server) as sock:
        opened = time.monotonic()
        for _ in range(50):
            if not still_open(sock):
                break
            try:
                sock.sendall(b"\r\n\r\n")
            except OSError:
                break
            time.sleep(0.2)
        _, closed = read_until_closed(sock, 5)
    assert closed - opened < SHORT["FIRST_REQUEST_TIMEOUT"] + SHORT["HEAD_TIMEOUT"] + 1.5


def test_keep_alive_connections_idle_for_their_own_timeout(short_server: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(short_server) as sock:
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        time.sleep(SHORT["FIRST_REQUEST_TIMEOUT"] + 0.5)  # longer than a new connection may idle
        assert still_open(sock)
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        data, closed = read_until_closed(sock, 5)
    assert data == b""
    assert SHORT["KEEPALIVE_TIMEOUT"] - 0.1 <= closed - answered < SHORT["KEEPALIVE_TIMEOUT"] + 1.5


def test_a_client_that_half_closes_after_its_request_gets_the_answer(short_server: int) -> None:
    with connect(short_server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        data, _ = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b'{"ok":true,"got":3}')


@pytest.mark.parametrize("short_server", [20], indirect=True)
def test_when_nearly_every_connection_is_taken_idle_ones_are_closed_sooner(
    short_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_mod, "FIRST_REQUEST_TIMEOUT", 4.0)
    monkeypatch.setattr(http_mod, "BUSY_IDLE_TIMEOUT", 0.5)
    idle = [connect(short_server) for _ in range(30)]  # more than the limit: some wait to be accepted
    try:
        started = time.monotonic()
        with connect(short_server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data, _ = read_until_closed(sock, 10)
        assert data.startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - started < 3.0  # not after rounds of 4 s idle timeouts
    finally:
        for sock in idle:
            sock.close()


def test_an_apps_connection_header_closes_the_connection_instead_of_failing_the_answer() -> None:
    # PEP 3333 keeps hop-by-hop headers from apps (waitress answers 500); the server honours it
    def closing(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2"), ("Connection", "close")])
        return [b"ok"]

    server = http_mod.HttpServer(closing, host="127.0.0.1", port=0, threads=1, connection_limit=10)
    server.bind()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        with connect(server.addresses[0][1]) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # asks for keep-alive
            data, _ = read_until_closed(sock, 5)
    finally:
        server.request_stop()
        thread.join(5)
        server.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"ok"
    assert head.lower().count(b"\r\nconnection:") == 1 and b"Connection: close" in head


# ---- the real gateway -----------------------------------------------------------------------

IDLE = 1000
TRICKLING = 100


@pytest.mark.e2e
def test_health_answers_while_1000_idle_and_100_trickling_connections_are_open(
    headless: Callable[..., Headless],
) -> None:
    raise_open_file_limit(IDLE + TRICKLING + 500)
    gw = headless(**OFFLINE).start()
    sel = selectors.DefaultSelector()  # epoll: select() cannot watch descriptors above 1023
    idle: list[socket.socket] = []
    trickling: list[socket.socket] = []
    try:
        keep_alive = requests.Session()  # made a request first, so it may idle for longer
        keep_alive.trust_env = False
        assert keep_alive.get(gw.base + "/health", timeout=5).status_code == 200

        opened = time.monotonic()
        for _ in range(IDLE):
            idle.append(connect(gw.port))
        for _ in range(TRICKLING):
            sock = connect(gw.port)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            trickling.append(sock)
        trickle_started = time.monotonic()

        # /health answers on new connections while all of them are open
        for _ in range(5):
            probe = requests.get(gw.base + "/health", timeout=2)
            assert probe.status_code == 200 and probe.json()["status"] == "ok"
            time.sleep(0.1)
        assert all(still_open(s) for s in idle), "idle connections were closed before the probes ended"
        assert all(still_open(s) for s in trickling)

        # then the idle ones are closed at their deadline, the trickling ones answered 408
        for sock in idle + trickling:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        received: dict[socket.socket, bytes] = dict.fromkeys(trickling, b"")
        closed_at: dict[socket.socket, float] = {}
        limit = time.monotonic() + http_mod.HEAD_TIMEOUT + 10
        next_byte = time.monotonic()
        while len(closed_at) < IDLE + TRICKLING and time.monotonic() < limit:
            if time.monotonic() >= next_byte:  # a byte a second to every trickling connection
                next_byte += 1.0
                for sock in trickling:
                    if sock not in closed_at:
                        with contextlib.suppress(OSError):
                            sock.send(b"x")
            for key, _ in sel.select(timeout=0.2):
                sock = key.fileobj  # type: ignore[assignment]
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[sock] = received.get(sock, b"") + chunk
                    continue
                closed_at[sock] = time.monotonic()
                sel.unregister(sock)
        assert len(closed_at) == IDLE + TRICKLING, f"{IDLE + TRICKLING - len(closed_at)} still open"

        idle_closed = [closed_at[s] - opened for s in idle]
        assert not any(received.get(s) for s in idle), "an idle connection got an answer"
        assert min(idle_closed) >= http_mod.FIRST_REQUEST_TIMEOUT - 0.5
        assert max(idle_closed) < http_mod.FIRST_REQUEST_TIMEOUT + 5
        for sock in trickling:
            status, body = json_answer(received[sock])
            assert (status, body["error"]) == (408, "request_timeout"), received[sock]
            assert closed_at[sock] - trickle_started >= http_mod.HEAD_TIMEOUT - 0.5
            assert closed_at[sock] - trickle_started < http_mod.HEAD_TIMEOUT + 5

        # a keep-alive connection is not idle-closed as early as a new one
        assert keep_alive.get(gw.base + "/health", timeout=2).status_code == 200
        keep_alive.close()
        assert gw.get("/health", token="", timeout=2).status_code == 200
    finally:
        sel.close()
        for sock in idle + trickling:
            sock.close()
    assert gw.stop() == 0
    assert "connection limit" not in gw.logs()
    refused = [r for r in gw.log_records() if r.get("logger") == "wadesk.http" and r.get("status") == 408]
    assert len(refused) == TRICKLING


def open_stream(port: int, *, timeout: float = 5.0) -> tuple[socket.socket, int]:
    """GET /events on a new connection; returns it and the status, once the stream has
    started (for 200) or the whole error answer (for 503) has arrived.

    Only incoming messages are asked for, and none come: the stream writes nothing after its
    start, so only the server's look at the connection can notice that the client left (an
    event written to a closed connection would fail and end the stream too)."""
    sock = connect(port, timeout)
    sock.sendall(
        b"GET /events?events=message.received HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.startswith(b"HTTP/1.1 200 ") and b": connected" in data:
            return sock, 200
        if data.startswith(b"HTTP/1.1 503 ") and b"}" in data:
            return sock, 503
    sock.close()
    raise AssertionError(f"GET /events gave no complete first answer: {data!r}")


def wait_for_stream(port: int, within: float) -> float:
    """Seconds until GET /events is answered 200 (asking again after each 503)."""
    started = time.monotonic()
    for _ in range(1000):
        sock, status = open_stream(port)
        sock.close()
        if status == 200:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"no event stream slot within {within:g} s"
        time.sleep(0.05)
    raise AssertionError("no event stream slot")


@pytest.mark.e2e
def test_event_stream_slots_come_back_within_2_s_of_a_close_or_reset(
    headless: Callable[..., Headless],
) -> None:
    gw = headless(**OFFLINE).start()
    streams = [open_stream(gw.port) for _ in range(server_mod.MAX_STREAMS)]
    try:
        assert [status for _, status in streams] == [200] * server_mod.MAX_STREAMS
        extra, status = open_stream(gw.port)
        extra.close()
        assert status == 503  # every slot is taken
        for i, (sock, _) in enumerate(streams):
            if i % 2:
                reset(sock)
            else:
                sock.close()
        assert wait_for_stream(gw.port, within=2.0) < 2.0

        # quick reconnects, closing or resetting right after the first event, lock nobody out
        for i in range(150):
            sock, _ = open_stream(gw.port)
            if i % 2:
                reset(sock)
            else:
                sock.close()
        started = time.monotonic()
        held: list[socket.socket] = []
        for _ in range(1000):  # every slot is free again within 2 s
            sock, status = open_stream(gw.port)
            if status == 200:
                held.append(sock)
                if len(held) == server_mod.MAX_STREAMS:
                    break
            else:
                sock.close()
                assert time.monotonic() - started < 2.0, f"only {len(held)} stream slots free after 2 s"
                time.sleep(0.05)
        assert len(held) == server_mod.MAX_STREAMS
        for sock in held:
            sock.close()
    finally:
        for sock, _ in streams:
            sock.close()
    assert gw.stop() == 0
