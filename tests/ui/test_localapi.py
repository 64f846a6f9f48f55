"""The local API of the desktop app: where its token lives, and the server beside the window."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from keyring.backends import fail, null

from wadesk.config import Config
from wadesk.core.datadir import API_TOKEN_FILE, DataDir
from wadesk.core.events import SessionState, Status
from wadesk.ui.localapi import (
    KEYRING_SERVICE,
    LocalApiServer,
    TokenStore,
    backend_is_secure,
    secure_backend,
)
from wadesk.ui.window import MainWindow

from .conftest import MemoryKeyring
from .fakes import FakeSession


def plaintext_backend() -> Any:
    """Looks like keyrings.alt's PlaintextKeyring (not installed here): a file in disguise."""
    cls = type("PlaintextKeyring", (), {"priority": 0.5, "__module__": "keyrings.alt.file"})
    return cls()


def encrypted_file_backend() -> Any:
    cls = type("EncryptedKeyring", (), {"priority": 0.6, "__module__": "keyrings.alt.file"})
    return cls()


class BrokenKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("the collection is locked")


# ---- which keyrings count as secure -----------------------------------------------------------


def test_placeholders_and_files_are_not_secure() -> None:
    assert not backend_is_secure(fail.Keyring())
    assert not backend_is_secure(null.Keyring())
    assert not backend_is_secure(plaintext_backend())
    assert not backend_is_secure(encrypted_file_backend())
    assert backend_is_secure(MemoryKeyring())


def test_no_secure_keyring_in_the_test_environment() -> None:
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.null.Keyring"
    assert secure_backend() is None


# ---- where the token comes from -------------------------------------------------------------


def test_token_in_a_secure_keyring(data: DataDir) -> None:
    keyring = MemoryKeyring()
    store = TokenStore(Config(data_dir=data.path), data, backend=keyring)
    info = store.get()
    assert info.in_keyring and info.created
    assert info.warning == ""
    assert "Memory test keyring" in info.where
    [((service, user), value)] = keyring.passwords.items()
    assert (service, value) == (KEYRING_SERVICE, info.value)
    assert str(data.path.resolve()) in user
    assert not data.file(API_TOKEN_FILE).exists()  # never also on disk
    again = TokenStore(Config(data_dir=data.path), data, backend=keyring).get()
    assert again.value == info.value and not again.created


def test_without_a_secure_keyring_the_token_stays_in_a_private_file(data: DataDir) -> None:
    info = TokenStore(Config(data_dir=data.path), data, backend=None).get()
    path = data.file(API_TOKEN_FILE)
    assert not info.in_keyring
    assert info.path == path
    assert path.read_text().strip() == info.value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "No secure keyring is available" in info.warning
    assert str(path) in info.warning
    assert len(info.value) >= 32


def test_a_keyring_that_refuses_falls_back_to_the_file(data: DataDir) -> None:
    info = TokenStore(Config(data_dir=data.path), data, backend=BrokenKeyring()).get()
    assert not info.in_keyring
    assert data.file(API_TOKEN_FILE).read_text().strip() == info.value
    assert info.warning


def test_environment_and_token_file_win(data: DataDir, tmp_path: Any) -> None:
    env = TokenStore(Config(data_dir=data.path, api_token="x" * 20), data, backend=MemoryKeyring()).get()
    assert env.value == "x" * 20 and env.warning == ""
    secret = tmp_path / "token"
    secret.write_text("from-a-docker-secret-0123\n")
    from_file = TokenStore(
        Config(data_dir=data.path, api_token_file=secret), data, backend=MemoryKeyring()
    ).get()
    assert from_file.value == "from-a-docker-secret-0123"
    assert from_file.where == str(secret)


# ---- the server -------------------------------------------------------------------------------


def call(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (http on loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_serves_the_api_on_loopback_and_stops(fake_session: FakeSession) -> None:
    token = "t" * 32
    server = LocalApiServer(fake_session, token, port=free_port())
    server.start()
    try:
        assert server.running
        assert call(f"{server.url}/health")[0] == 200
        assert call(f"{server.url}/status")[0] == 401
        assert call(f"{server.url}/status", "wrong-token-0123456789")[0] == 401
        status, body = call(f"{server.url}/status", token)
        assert status == 200 and body["state"] == "starting"
        assert fake_session.subscribers == 1  # the API's event feed
    finally:
        server.stop()
    assert not server.running
    assert fake_session.subscribers == 0
    with pytest.raises(OSError):
        call(f"{server.url}/health")


def test_port_in_use_is_an_error(fake_session: FakeSession) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            LocalApiServer(fake_session, "t" * 32, port=port).start()
    assert fake_session.subscribers == 0


def test_window_runs_the_api_while_open(
    qtbot: Any, make_window: Callable[..., MainWindow], fake_session: FakeSession, data: DataDir
) -> None:
    keyring = MemoryKeyring()
    port = free_port()
    window = make_window(fake_session, keyring=keyring)
    fake_session.set_state(SessionState(Status.STARTING))
    dialog = window.show_api_settings()
    qtbot.waitUntil(lambda: dialog.token is not None)
    assert dialog.storage.text().startswith("Kept in the system keyring (Memory test keyring)")
    dialog.enabled.setChecked(True)
    dialog.port.setValue(port)
    dialog.accept()
    qtbot.waitUntil(lambda: window.api is not None, timeout=10_000)
    assert window.api_label.text() == f"Local API: http://127.0.0.1:{port}"
    token = next(iter(keyring.passwords.values()))
    status, body = call(
        f"http://127.0.0.1:{port}/send", token, {"to": "+15550002222", "text": "from a script"}
    )
    assert status == 202, body
    # the window's chat list shows what came in through the API
    qtbot.waitUntil(
        lambda: any(c.last_text == "from a script" for c in window.chat_model.chats()), timeout=5000
    )
    [chat] = window.chat_model.chats()
    assert chat.jid == "15550002222@s.whatsapp.net" and chat.last_direction == "out"
    window.shutdown()
    assert window.wait_stopped(5)
    assert window.api is None
    with pytest.raises(OSError):
        call(f"http://127.0.0.1:{port}/health")
    assert window.api_enabled  # the setting stays for the next start


def test_port_in_use_is_shown(
    qtbot: Any, make_window: Callable[..., MainWindow], fake_session: FakeSession
) -> None:
    window = make_window(fake_session)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        window.settings.setValue("local_api/enabled", "true")
        window.settings.setValue("local_api/port", taken.getsockname()[1])
        window.apply_api_setting()
        qtbot.waitUntil(lambda: window.api_label.text() == "Local API: not running", timeout=10_000)
        assert "could not start" in window.statusBar().currentMessage()


class SlowTokenStore(TokenStore):
    """The keyring takes its time (an unlock prompt): get() waits until ``release`` is set."""

    def __init__(self, config: Config, data: DataDir) -> None:
        super().__init__(config, data, backend=MemoryKeyring())
        self.release = threading.Event()

    def get(self) -> Any:
        assert self.release.wait(10)
        return super().get()


@pytest.fixture
def slow_keyring_window(
    make_window: Callable[..., MainWindow], fake_session: FakeSession, data: DataDir
) -> tuple[MainWindow, SlowTokenStore, int]:
    """A window whose keyring answers only when the test says so, the local API on a free port."""
    window = make_window(fake_session)
    window.token_store = slow = SlowTokenStore(Config(data_dir=data.path), data)
    port = free_port()
    window.settings.setValue("local_api/port", port)
    window.settings.setValue("local_api/enabled", "true")
    return window, slow, port


def test_turning_the_api_off_while_it_starts_leaves_it_off(
    qtbot: Any, slow_keyring_window: tuple[MainWindow, SlowTokenStore, int]
) -> None:
    window, slow, port = slow_keyring_window
    window.apply_api_setting()  # waits for the keyring ...
    window.settings.setValue("local_api/enabled", "false")
    window.apply_api_setting()  # ... while the person turns it off again
    slow.release.set()
    qtbot.waitUntil(lambda: window.jobs.busy == 0, timeout=10_000)
    assert window.api is None
    assert window.api_label.text() == ""
    with pytest.raises(OSError):
        call(f"http://127.0.0.1:{port}/health")
    # and on again, then a new port: one server at a time, on the newest port
    other = free_port()
    window.settings.setValue("local_api/enabled", "true")
    window.apply_api_setting()
    window.settings.setValue("local_api/port", other)
    window.apply_api_setting()
    qtbot.waitUntil(lambda: window.jobs.busy == 0, timeout=10_000)
    assert window.api is not None and window.api.port == other
    assert call(f"http://127.0.0.1:{other}/health")[0] == 200
    with pytest.raises(OSError):
        call(f"http://127.0.0.1:{port}/health")


def test_an_api_starting_at_quit_is_stopped_too(
    slow_keyring_window: tuple[MainWindow, SlowTokenStore, int], fake_session: FakeSession
) -> None:
    window, slow, port = slow_keyring_window
    window.apply_api_setting()
    window.shutdown()  # quit while the keyring is still being asked
    slow.release.set()
    assert window.wait_stopped(5)
    assert fake_session.stopped
    with pytest.raises(OSError):
        call(f"http://127.0.0.1:{port}/health")


# ---- the same HTTP server as the gateway ---------------------------------------------------

TOKEN = "t" * 32


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send ``raw`` on a new connection; everything answered until the server closes it, and
    how long that took."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        if raw:
            sock.sendall(raw)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data, time.monotonic() - started


def parsed(answer: bytes) -> tuple[bytes, str, Any]:
    """Status line, Content-Type and JSON body of a raw HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.decode().partition(":") for line in lines)}
    return status, headers.get("content-type", ""), json.loads(body)


@pytest.fixture
def gateway_port(data: DataDir, tmp_path: Path) -> Iterator[int]:
    """``wadesk --headless``'s Gateway in this process, on its own fake session; yields its port."""
    from wadesk.api.server import Gateway

    session = FakeSession(tmp_path / "gateway.db")
    gateway = Gateway(Config(data_dir=data.path, port=free_port()), data, token=TOKEN, session=session)
    gateway.bind()
    thread = threading.Thread(target=gateway.serve, name="gateway-under-test", daemon=True)
    thread.start()
    try:
        yield gateway.addresses[0][1]
    finally:
        gateway.request_stop("test over")
        thread.join(10)
        session.store.close()
    assert not thread.is_alive()


TOO_LARGE = (  # declares a body over 1 MiB: refused before it is read
    b"POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (1024 * 1024 + 1)
)
UNKNOWN_ROUTE = (
    b"GET /no-such-thing HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
    b"Connection: close\r\n\r\n"
)


def test_refusals_are_the_same_json_as_the_gateways(fake_session: FakeSession, gateway_port: int) -> None:
    server = LocalApiServer(fake_session, TOKEN, port=free_port())
    server.start()
    try:
        for raw, status, error in ((TOO_LARGE, 413, "payload_too_large"), (UNKNOWN_ROUTE, 404, "not_found")):
            local = parsed(exchange(server.port, raw)[0])
            gateway = parsed(exchange(gateway_port, raw)[0])
            assert local == gateway
            line, content_type, body = local
            assert line.startswith(b"HTTP/1.1 %d " % status)
            assert content_type == "application/json"
            assert body["error"] == error and body["message"]
    finally:
        server.stop()
    assert fake_session.calls == []  # nothing reached the session


def test_an_idle_connection_is_closed_at_the_first_request_deadline(
    fake_session: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wadesk.api import http

    monkeypatch.setattr(http, "FIRST_REQUEST_TIMEOUT", 1.0)
    monkeypatch.setattr(http, "MAINTENANCE_INTERVAL", 0.1)
    server = LocalApiServer(fake_session, TOKEN, port=free_port())
    server.start()
    try:
        data, took = exchange(server.port, b"")  # connects and never sends a request
        assert data == b""
        assert 0.9 <= took < 2.5
        assert call(f"{server.url}/health")[0] == 200  # and it still serves
    finally:
        server.stop()


def test_stopping_lets_a_request_in_flight_finish(fake_session: FakeSession) -> None:
    server = LocalApiServer(fake_session, TOKEN, port=free_port())
    server.start()
    fake_session.block.clear()  # send() waits
    answers: list[tuple[int, str, Any]] = []

    def send() -> None:
        request = urllib.request.Request(  # noqa: S310 (http on loopback)
            f"{server.url}/send",
            data=json.dumps({"to": "+15550002222", "text": "hi"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            answers.append((response.status, response.headers["Connection"], json.loads(response.read())))

    client = threading.Thread(target=send)
    client.start()
    deadline = time.monotonic() + 10
    while not fake_session.send_threads:  # the request is in the session now
        assert time.monotonic() < deadline, "the request never reached the session"
        time.sleep(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    while True:  # new connections are refused at once ...
        assert time.monotonic() < deadline, "still accepting connections"
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):  # reset: the listener closed mid-connect
            break
        time.sleep(0.01)
    fake_session.block.set()  # ... while the request in flight still gets its answer
    client.join(10)
    stopper.join(10)
    [(status, connection, body)] = answers
    assert (status, connection) == (202, "close")
    assert fake_session.message(body["id"]).text == "hi"
    assert not server.running
    assert fake_session.subscribers == 0


def test_the_local_api_listens_on_loopback_only(fake_session: FakeSession) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        LocalApiServer(fake_session, TOKEN, host="0.0.0.0", port=free_port())
