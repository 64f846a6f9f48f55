"""``wadesk`` as a process: one instance per data folder, and a clean exit within 5 s."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QDir

from wadesk.config import Config
from wadesk.core import open_session
from wadesk.core.datadir import DataDir
from wadesk.core.events import Status
from wadesk.ui.single import SingleInstance, server_name

from .conftest import OFFSCREEN_NOISE

START_TIMEOUT = 60.0


# ---- in-process --------------------------------------------------------------------------


def test_a_second_start_raises_the_first(qtbot: Any, tmp_path: Path) -> None:
    name = server_name(tmp_path / "a")
    first = SingleInstance(name)
    try:
        assert not first.notify_running(200)  # nobody there yet
        assert first.listen()
        second = SingleInstance(name)
        with qtbot.waitSignal(first.raiseRequested, timeout=5000):
            assert second.notify_running()
        other = SingleInstance(server_name(tmp_path / "b"))  # another data folder: another instance
        assert not other.notify_running(200)
    finally:
        first.close()
    assert not SingleInstance(name).notify_running(200)


def test_a_request_is_read_as_it_arrives_and_a_silent_client_is_let_go(qtbot: Any, tmp_path: Path) -> None:
    """The first instance reads from its event loop: a request written in pieces still counts,
    and a client that connects and says nothing is closed, without holding up the window."""
    name = server_name(tmp_path)
    first = SingleInstance(name)
    assert first.listen()
    path = first._server.fullServerName()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        silent.connect(path)
        slow.connect(path)
        slow.sendall(b"ra")
        qtbot.wait(100)  # the window keeps handling events while the rest is on its way
        with qtbot.waitSignal(first.raiseRequested, timeout=5000):
            slow.sendall(b"ise\n")
        silent.setblocking(False)

        def closed_by_the_first() -> bool:  # after its idle time
            try:
                return silent.recv(16) == b""
            except BlockingIOError:
                return False

        qtbot.waitUntil(closed_by_the_first, timeout=10_000)
    finally:
        silent.close()
        slow.close()
        first.close()


def test_a_stale_socket_is_taken_over(tmp_path: Path) -> None:
    name = server_name(tmp_path)
    path = os.path.join(QDir.tempPath(), name)
    # what a crashed instance leaves behind: a socket file nobody listens on
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(path)
    leftover.close()
    assert os.path.exists(path)
    assert not SingleInstance(name).notify_running(200)
    successor = SingleInstance(name)
    try:
        assert successor.listen()
        assert SingleInstance(name).notify_running()
    finally:
        successor.close()


def test_server_name_depends_on_the_data_folder(tmp_path: Path) -> None:
    assert server_name(tmp_path / "a") == server_name(tmp_path / "a" / ".." / "a")
    assert server_name(tmp_path / "a") != server_name(tmp_path / "b")
    assert len(server_name(tmp_path)) < 40  # short enough for a Unix socket path


# ---- real processes ------------------------------------------------------------------------


class App:
    """``python -m wadesk`` in a child process, its log read line by line."""

    def __init__(self, env: dict[str, str], data_dir: Path, proxy: str) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        args = [sys.executable, "-m", "wadesk", "--data-dir", str(data_dir), "--proxy", proxy]
        args += ["--send-interval", "0", "--log-level", "INFO"]
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def qt_warnings(self) -> list[str]:
        """Every Qt warning (or worse) the process printed, once it has ended (e.g. a widget or
        timer used from a thread other than the GUI thread)."""
        assert self.proc.poll() is not None
        self._reader.join(10)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        found = []
        for line in self.lines:
            kind, _, message = line.partition(": ")
            if kind in ("qt-warning", "qt-critical", "qt-fatal") and not any(
                re.match(noise, message) for noise in OFFSCREEN_NOISE
            ):
                found.append(line)
        return found

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_line(self, needle: str, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if needle in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self._queue.empty():
                    break
                continue
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r}; output so far:\n" + "\n".join(self.lines[-40:]))

    def terminate_and_time(self) -> tuple[float, int]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return time.monotonic() - started, code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def app_env(fake_wa: Any, tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return fake_wa.child_env(
        QT_QPA_PLATFORM="offscreen",
        QT_MESSAGE_PATTERN="qt-%{type}: %{message}",  # Qt's own messages, recognisable in the output
        XDG_RUNTIME_DIR=str(runtime),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )


@pytest.fixture
def apps() -> Iterator[list[App]]:
    started: list[App] = []
    yield started
    for app in started:
        app.kill()


@pytest.mark.e2e
def test_second_start_raises_the_window_and_sigterm_ends_within_5s(
    fake_wa: Any, app_env: dict[str, str], tmp_path: Path, apps: list[App]
) -> None:
    data_dir = tmp_path / "data"
    first = App(app_env, data_dir, fake_wa.proxy_url)
    apps.append(first)
    first.wait_line("window shown")
    first.wait_line("session waiting for the QR code to be scanned")  # neonize's QR loop is running

    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "wadesk", "--data-dir", str(data_dir), "--proxy", fake_wa.proxy_url],
        env=app_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    assert time.monotonic() - started < 10
    first.wait_line("wadesk was started again: bringing the window to the front", timeout=10)

    elapsed, code = first.terminate_and_time()
    assert code == 0, "\n".join(first.lines[-20:])
    assert elapsed < 5.0
    assert first.wait_line("window closed; session stopped")
    assert first.qt_warnings() == []


@pytest.mark.e2e
def test_connected_app_ends_within_5s(
    fake_wa: Any, app_env: dict[str, str], tmp_path: Path, apps: list[App]
) -> None:
    # pair the data folder first (the core, in this process), as a previous run would have
    data = DataDir(tmp_path / "data").prepare()
    session = open_session(Config(data_dir=data.path, proxy=fake_wa.proxy_url, send_interval=0), data)
    session.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while session.state.qr is None and time.monotonic() < deadline:
            time.sleep(0.05)
        fake_wa.scan(session.state.qr)
        while session.state.status is not Status.CONNECTED and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.state.status is Status.CONNECTED
    finally:
        assert session.stop()
        session.store.close()

    app = App(app_env, data.path, fake_wa.proxy_url)
    apps.append(app)
    app.wait_line("session connected as +15550001111")
    fake_wa.wait_connected()
    elapsed, code = app.terminate_and_time()
    assert code == 0
    assert elapsed < 5.0
    assert not os.path.exists(f"/proc/{app.proc.pid}")
    assert app.qt_warnings() == []


@pytest.mark.e2e
@pytest.mark.parametrize("stop_signal", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_stop_the_window_cleanly_and_sigusr1_logs_the_state(
    stop_signal: signal.Signals, fake_wa: Any, app_env: dict[str, str], tmp_path: Path, apps: list[App]
) -> None:
    app = App(app_env, tmp_path / "data", fake_wa.proxy_url)
    apps.append(app)
    app.wait_line("window shown")
    app.wait_line("session waiting for the QR code to be scanned")
    app.proc.send_signal(signal.SIGUSR1)
    app.wait_line(f"signal {int(signal.SIGUSR1)}: session", timeout=10)
    assert app.proc.poll() is None  # still running
    app.proc.send_signal(stop_signal)
    assert app.proc.wait(10) == 0
    assert app.wait_line("window closed; session stopped")
    assert app.qt_warnings() == []
